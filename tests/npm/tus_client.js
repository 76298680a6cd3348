// Drives tus-js-client (unchanged, Node build) against a tus endpoint for the Python
// tests in tests/tus/ and for bench/tus.py. One JSON plan in argv[2]:
//   {endpoint, token, file, action: "upload" | "abort" | "resume",
//    chunkSize, parallelUploads, metadata, urlStorage (a JSON file for FileUrlStorage),
//    abortAt (fraction of the file), terminate (abort(true)), log (record every request),
//    clientOptions (more Upload options as they are, e.g. uploadLengthDeferred), buffer (read
//    the file into a Buffer instead of streaming it), trace (each request on stderr as it goes)}
// It prints one JSON line per step: {"step": ..., "value": ...}; exit code 1 on an error.
const fs = require('fs');
const { Transform } = require('stream');
const { Upload, FileUrlStorage, DefaultHttpStack } = require('tus-js-client');

const plan = JSON.parse(process.argv[2]);

function report(step, value) {
  process.stdout.write(JSON.stringify({ step, value }) + '\n');
}

const exchanges = [];

function record(exchange) {
  exchanges.push(exchange);
  if (plan.trace) process.stderr.write(`${JSON.stringify(exchange)}\n`); // as it happens, for a hung run
}

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
        record({ method: req.getMethod(), url: req.getURL(), offset: req.getHeader('Upload-Offset') ?? null,
                         concat: req.getHeader('Upload-Concat') ?? null });
      }
    },
    onAfterResponse(req, res) {
      if (plan.log) {
        record({ method: req.getMethod(), url: req.getURL(), status: res.getStatus(),
                         offset: res.getHeader('Upload-Offset') ?? null, mediaId: res.getHeader('Media-Id') ?? null,
                         location: res.getHeader('Location') ?? null });
      }
    },
    ...(plan.clientOptions || {}),
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
  // With uploadLengthDeferred, tus-js-client 4.3.1 declares a whole chunk's Content-Length
  // for the short last slice of a file stream (and the request hangs); a Buffer is sliced right.
  const input = plan.buffer ? fs.readFileSync(plan.file) : fs.createReadStream(plan.file);
  const job = new Upload(input, options({}));
  const last = await run(job);
  report('done', finished(job, started, last));
}

// The client's own HTTP stack, except that a PATCH body stops flowing once `limit`
// bytes of the file have gone out; then `cut()` runs (once). onProgress is throttled to
// 100 ms, and a whole file in one PATCH crosses loopback faster than that, so it
// cannot place an abort; this places it exactly.
class CuttingStack extends DefaultHttpStack {
  constructor(limit, cut) {
    super();
    this.limit = limit;
    this.cut = cut;
  }

  createRequest(method, url) {
    const request = super.createRequest(method, url);
    const send = request.send.bind(request);
    const { limit, cut } = this;
    request.send = (body) => {
      if (method !== 'PATCH' || !body || typeof body.pipe !== 'function') {
        return send(body);
      }
      let position = Number(request.getHeader('Upload-Offset'));
      const valve = new Transform({
        transform(chunk, encoding, done) {
          const room = limit - position;
          const piece = room < chunk.length ? chunk.subarray(0, Math.max(room, 0)) : chunk;
          position += piece.length;
          if (piece.length) this.push(piece);
          if (position < limit) {
            done();
          } else {
            // Hold the rest (never call done) and give what was pushed time to arrive.
            setTimeout(cut, 300);
          }
        },
      });
      valve.size = body.size; // Content-Length stays the whole chunk's, as the client declared it
      return send(body.pipe(valve));
    };
    return request;
  }
}

async function abort() {
  const size = fs.statSync(plan.file).size;
  const limit = Math.floor(plan.abortAt * size);
  let job;
  let cutting = false;
  const aborted = new Promise((resolve, reject) => {
    const cut = () => {
      if (cutting) return;
      cutting = true;
      // abort(true) also sends DELETE (termination); abort() only drops the request.
      job.abort(Boolean(plan.terminate)).then(() => resolve(limit), reject);
    };
    job = new Upload(fs.createReadStream(plan.file), options({
      httpStack: new CuttingStack(limit, cut),
      onSuccess: () => reject(new Error('finished before the abort point')),
      onError: (error) => (cutting ? null : reject(error)),
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
