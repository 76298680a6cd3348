// Runs createMedia, getSpecificMedia, updateMedia and deleteMedia of the official
// client against GATEWAY_URL, printing one JSON line per step for the Python test.
const { http, MediaService } = require('@selfcommunity/api-services');

const base = process.env.GATEWAY_URL;
const token = process.env.GATEWAY_TOKEN;
const site = process.env.SITE_URL;

function report(step, value) {
  process.stdout.write(JSON.stringify({ step, value }) + '\n');
}

async function main() {
  http.setBasePortal(base);
  http.setAuthorizeToken(token);
  const created = await MediaService.createMedia({ type: 'url', url: `${site}/article` });
  report('create', created);
  report('get', await MediaService.getSpecificMedia(created.id));
  report('update', await MediaService.updateMedia(created.id, `${site}/img/chosen.jpg`));
  report('delete', (await MediaService.deleteMedia(created.id)) ?? null);
  try {
    await MediaService.getSpecificMedia(created.id);
    report('get-after-delete', 'still there');
  } catch (error) {
    report('get-after-delete', (error && (error.status || (error.response && error.response.status))) || String(error));
  }
}

main().catch((error) => {
  process.stderr.write(`failed: ${error && error.status ? error.status + ' ' + JSON.stringify(error.data) : error}\n`);
  process.exit(1);
});
