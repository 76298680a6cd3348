// Drives tus-js-client (unchanged, Node build) against a tus endpoint for the Python
// tests in tests/tus/ and for bench/tus.py. One JSON plan in argv[2]:
//   {endpoint, token, file, action: "upload" | "abort" | "resume",
//    chunkSize, parallelUploads, metadata, urlStorage (a JSON file for FileUrlStorage),
//    abortAt (fraction of the file), terminate (abort(true)), log (record every request)}
// It prints one JSON line per step: {"step": ..., "value": ...}; exit code 1 on an error.
const fs = require('fs');
const { Upload, FileUrlStorage } = require('tus-js-client');

const plan = JSON.parse(process.argv[2]);

function report(step, value) {
  process.stdout.write(JSON.stringify({ step, value }) + '\n');
}

const exchanges = [];

function options(extra) {
  const chosen = {
    endpoint: plan.endpoint,
    headers: plan.token ? { Authorization: `Bearer ${plan.token}` } : {},
    chunkSize: plan.chunkSize || Infinity,
    parallelUploads: plan.parallelUploads || 1,
    metadata: plan.metadata || {},
    // Fail on the first error instead of retrying it away: the tests want to see it.
    retryDelays: null,
    removeFingerprintOnSuccess: true,
    onBeforeRequest(req) {
      if (plan.log) {
        exchanges.push({ method: req.getMethod(), url: req.getURL(), offset: req.getHeader('Upload-Offset') ?? null,
                         concat: req.getHeader('Upload-Concat') ?? null });
      }
    },
    onAfterResponse(req, res) {
      if (plan.log) {
        exchanges.push({ method: req.getMethod(), url: req.getURL(), status: res.getStatus(),
                         offset: res.getHeader('Upload-Offset') ?? null, mediaId: res.getHeader('Media-Id') ?? null,
                         location: res.getHeader('Location') ?? null });
      }
    },
    ...extra,
  };
  if (plan.urlStorage) {
    chosen.urlStorage = new FileUrlStorage(plan.urlStorage);
  }
  return chosen;
}

function finished(upload, started, last) {
  return {
    url: upload.url,
    seconds: (Date.now() - started) / 1000,
    mediaId: last ? last.getHeader('Media-Id') ?? null : null,
    exchanges,
  };
}

function run(upload) {
  return new Promise((resolve, reject) => {
    upload.options.onSuccess = (payload) => resolve(payload && payload.lastResponse);
    upload.options.onError = (error) => reject(error);
    upload.start();
  });
}

async function upload() {
  const started = Date.now();
  const job = new Upload(fs.createReadStream(plan.file), options({}));
  const last = await run(job);
  report('done', finished(job, started, last));
}

async function abort() {
  const size = fs.statSync(plan.file).size;
  let job;
  const aborted = new Promise((resolve, reject) => {
    let stopping = false;
    job = new Upload(fs.createReadStream(plan.file), options({
      onProgress(sent) {
        if (!stopping && sent >= plan.abortAt * size) {
          stopping = true;
          // abort(true) also sends DELETE (termination); abort() only drops the request.
          job.abort(Boolean(plan.terminate)).then(() => resolve(sent), reject);
        }
      },
      onSuccess: () => reject(new Error('finished before the abort point')),
      onError: reject,
    }));
    job.start();
  });
  const sent = await aborted;
  report('aborted', { url: job.url, sent, size, exchanges });
}

async function resume() {
  const started = Date.now();
  const job = new Upload(fs.createReadStream(plan.file), options({}));
  const previous = await job.findPreviousUploads();
  report('previous', previous.map((found) => found.uploadUrl));
  if (previous.length) {
    job.resumeFromPreviousUpload(previous[0]);
  }
  const last = await run(job);
  report('done', finished(job, started, last));
}

const actions = { upload, abort, resume };

actions[plan.action]().catch((error) => {
  const res = error && error.originalResponse;
  process.stderr.write(`failed: ${error && error.message}` +
                       (res ? ` (status ${res.getStatus()}, body ${res.getBody()})` : '') + '\n');
  report('error', { message: String(error && error.message), status: res ? res.getStatus() : null, exchanges });
  process.exit(1);
});
