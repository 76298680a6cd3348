// The official DatoCMS client's upload-request steps, unchanged, against the gateway:
// POST /upload-requests, then the PUT of the raw file to the returned URL.
// Env: GATEWAY_URL, GATEWAY_TOKEN, FILE. Prints {"path": <upload request id>}.
const { buildClient, uploadLocalFileAndReturnPath } = require("@datocms/cma-client-node");

async function main() {
  const client = buildClient({ apiToken: process.env.GATEWAY_TOKEN, baseUrl: `${process.env.GATEWAY_URL}/dato` });
  const path = await uploadLocalFileAndReturnPath(client, process.env.FILE);
  console.log(JSON.stringify({ path }));
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
