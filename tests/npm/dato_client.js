// Drives the official @datocms/cma-client-node against the gateway's DatoCMS dialect
// (BASE + "/dato"), printing one JSON line per step for tests/dato/test_official_client.py:
// {"step", "value"} when the step worked, {"step", "error": {status, codes, message}} when it
// threw. A step that needs an earlier one's result is skipped ({"step", "skipped"}) when that
// one failed, so one missing route does not hide what the others do. Last comes "replies":
// every HTTP reply the client saw (through its fetchFn option), for the content-type and
// rate-limit checks.
//
// Env: BASE, DATO_TOKEN, PNG (uploaded with metadata), PNG_V2 and PNG_V3 (new versions of
// it: a new URL, then keep_url), PDF, EXTRA (comma-separated images, for paging), BURST
// (parallel requests that must get past the rate limit).
const crypto = require('node:crypto');
const fs = require('node:fs');
const { ApiError, buildClient, uploadLocalFileAndReturnPath } = require('@datocms/cma-client-node');

const env = process.env;
const baseUrl = `${env.BASE}/dato`;
const replies = [];

async function recordingFetch(url, init) {
  const response = await fetch(url, init);
  const header = (name) => response.headers.get(name);
  replies.push({
    method: (init && init.method) || 'GET', url: String(url), status: response.status,
    content_type: header('content-type'), limit: header('x-ratelimit-limit'),
    remaining: header('x-ratelimit-remaining'), reset: header('x-ratelimit-reset'),
  });
  return response;
}

const options = { baseUrl, fetchFn: recordingFetch, logFn: () => {} };
const client = buildClient({ apiToken: env.DATO_TOKEN, ...options });

function report(line) {
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

function describe(error) {
  if (error instanceof ApiError) {
    return {
      status: error.response.status,
      codes: error.errors.map((e) => e.attributes.code),
      details: error.errors.map((e) => e.attributes.details),
      message: error.message.slice(0, 2000),
    };
  }
  return { status: null, codes: [], message: String((error && error.stack) || error).slice(0, 2000) };
}

async function step(name, run, ...needs) {
  if (needs.some((value) => value === undefined)) {
    report({ step: name, skipped: true });
    return undefined;
  }
  try {
    const value = await run();
    report({ step: name, value: value === undefined ? null : value });
    return value;
  } catch (error) {
    report({ step: name, error: describe(error) });
    return undefined;
  }
}

// A step that must fail: its value is the error the client threw.
async function failing(name, run, ...needs) {
  return step(name, async () => {
    try {
      await run();
    } catch (error) {
      return { thrown: describe(error) };
    }
    throw new Error('expected an error, got a success');
  }, ...needs);
}

const md5 = (path) => crypto.createHash('md5').update(fs.readFileSync(path)).digest('hex');
const ids = (uploads) => uploads.map((upload) => upload.id);
const sized = (uploads) => uploads.map(({ id, size }) => ({ id, size }));

const METADATA = {
  en: { alt: 'A zebra-striped cat', title: 'Cat', custom_data: { source: 'test' }, focal_point: { x: 0.25, y: 0.75 } },
  it: { alt: 'Un gatto zebrato', title: 'Gatto', custom_data: {}, focal_point: null },
};

async function main() {
  const png = await step('create-png', () => client.uploads.createFromLocalFile({
    localPath: env.PNG, author: 'Ada', copyright: '2026 Ada', notes: 'a zebra in the notes',
    tags: ['cat', 'gateway'], default_field_metadata: METADATA,
  }));
  await step('create-png-again', () => client.uploads.createFromLocalFile({
    localPath: env.PNG, skipCreationIfAlreadyExists: true,
  }));
  const pdf = await step('create-pdf', () => client.uploads.createFromLocalFile({ localPath: env.PDF, tags: ['doc'] }));
  const extras = [];
  for (const [index, localPath] of (env.EXTRA || '').split(',').filter(Boolean).entries()) {
    extras.push(await step(`create-extra-${index}`, () => client.uploads.createFromLocalFile({ localPath })));
  }

  await step('list-ids', async () => ids(await client.uploads.list({ filter: { ids: `${png.id},${pdf.id}` } })),
    png, pdf);
  await step('list-type-image', async () => ids(await client.uploads.list({ filter: { fields: { type: { eq: 'image' } } } })));
  await step('list-md5', async () => ids(await client.uploads.list({ filter: { fields: { md5: { eq: md5(env.PNG) } } } })));
  await step('list-query', async () => ids(await client.uploads.list({ filter: { query: 'zebra' } })));
  await step('list-size-asc', async () => sized(await client.uploads.list({ order_by: 'size_ASC' })));
  await step('list-created-desc', async () => ids(await client.uploads.list({ order_by: '_created_at_DESC' })));
  await step('list-page', async () => ids(await client.uploads.list({ order_by: 'size_ASC', page: { offset: 1, limit: 2 } })));
  await step('iterator', async () => {
    const seen = [];
    for await (const upload of client.uploads.listPagedIterator({ order_by: 'size_ASC' }, { perPage: 2 })) {
      seen.push(upload.id);
    }
    return seen;
  });

  await step('update-metadata', () => client.uploads.update(png.id, {
    default_field_metadata: { it: { alt: 'Un gatto nero' } },
  }), png);
  await failing('focal-point-out-of-range', () => client.uploads.update(png.id, {
    default_field_metadata: { en: { focal_point: { x: 1.5, y: 0.5 } } },
  }), png);
  await step('rename', () => client.uploads.update(png.id, { basename: 'renamed-cat' }), png);
  await step('new-version', () => client.uploads.updateFromLocalFile(png.id, { localPath: env.PNG_V2 }), png);
  await step('keep-url', async () => {
    const path = await uploadLocalFileAndReturnPath(client, env.PNG_V3);
    return client.uploads.update(png.id, { path }, { replace_strategy: 'keep_url' });
  }, png);
  await step('find', () => client.uploads.find(png.id), png);
  await step('references', () => client.uploads.references(png.id), png);

  // More requests at once than the limit allows: the client waits X-RateLimit-Reset and retries.
  await step('burst', async () => {
    const found = await Promise.all(Array.from({ length: Number(env.BURST || 0) }, () => client.uploads.find(pdf.id)));
    return ids(found);
  }, pdf);

  const doomed = extras[extras.length - 1];
  await step('destroy', () => client.uploads.destroy(doomed.id), doomed);
  await failing('find-destroyed', () => client.uploads.find(doomed.id), doomed);

  const stranger = buildClient({ apiToken: 'not-a-token', ...options });
  await failing('bad-token-list', () => stranger.uploads.list());
  await failing('bad-token-upload-request', () => stranger.uploadRequest.create({ filename: 'x.png' }));

  await step('final', async () => client.uploads.list({ page: { limit: 500 } }));
  report({ step: 'replies', value: replies });
}

main().catch((error) => {
  process.stderr.write(`failed: ${describe(error).message}\n`);
  process.exit(1);
});
