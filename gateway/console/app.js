// The gateway console: sign in with an API token, upload through the chunk API, browse and
// delete media, and (for staff and admins) watch uploads, jobs and backends.
// The token lives in sessionStorage (this tab only) and is sent only in the Authorization header.
"use strict";

const CHUNK = 204800;  // what the official SelfCommunity web client sends
const TOKEN_KEY = "gateway.token";
const CHUNK_URL = "/api/v2/media/upload/chunk/";
const $ = (selector) => document.querySelector(selector);
const sleep = (ms) => new Promise((done) => setTimeout(done, ms));
const timers = { media: null, ops: null };

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  Object.assign(node, props);
  node.append(...children);
  return node;
}

function bytes(n) {
  if (n == null) return "—";
  const units = ["B", "KiB", "MiB", "GiB"];
  let i = 0;
  for (; n >= 1024 && i < units.length - 1; i++) n /= 1024;
  return `${i ? n.toFixed(1) : n} ${units[i]}`;
}

class ApiError extends Error {
  constructor(status, body) {
    super(`${status}: ${(body && body.detail) || "request failed"}`);
    this.status = status;
    this.body = body || {};
  }
}

async function api(path, { method = "GET", body, headers = {} } = {}) {
  const init = { method, credentials: "omit",
                 headers: { Authorization: `Bearer ${sessionStorage.getItem(TOKEN_KEY)}`, ...headers } };
  if (body instanceof FormData) {
    init.body = body;
  } else if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  const reply = await fetch(path, init);
  const data = reply.status === 204 ? null : await reply.json().catch(() => ({}));
  if (!reply.ok) throw new ApiError(reply.status, data);
  return data;
}

// ---- sign in ---------------------------------------------------------------------------------

async function signIn(token) {
  sessionStorage.setItem(TOKEN_KEY, token);
  try {
    await api("/api/v2/media/?limit=1");
  } catch (error) {
    sessionStorage.removeItem(TOKEN_KEY);
    throw error;
  }
  $("#sign-in").hidden = true;
  $("#workspace").hidden = false;
  $("#sign-out").hidden = false;
  $("#whoami").textContent = "signed in";
  refreshMedia();
  refreshOps();
}

function signOut() {
  sessionStorage.removeItem(TOKEN_KEY);
  clearTimeout(timers.media);
  clearTimeout(timers.ops);
  location.reload();
}

// ---- uploads ---------------------------------------------------------------------------------

// A file picked again after a reload is recognised by name, size and modification time.
const resumeKey = (file) => `gateway.upload:${file.name}:${file.size}:${file.lastModified}`;

function transferRow(file) {
  const bar = el("progress", { max: file.size, value: 0 });
  const state = el("span", { className: "state", textContent: "waiting" });
  const row = el("li", {}, el("span", { className: "name", textContent: file.name, title: file.name }), bar, state);
  row.dataset.name = file.name;
  $("#transfers").append(row);
  let note = "";  // e.g. "resumed at 800 KiB", kept next to the percentage
  return {
    progress(offset) {
      bar.value = offset;
      state.textContent = `${Math.floor((100 * offset) / file.size)}%${note}`;
    },
    note(text) { note = ` · ${text}`; },
    done() { row.classList.add("done"); state.textContent = `done${note}`; },
    fail(text) { row.classList.add("failed"); state.textContent = text; },
  };
}

async function resumePoint(key) {
  const uploadId = localStorage.getItem(key);
  if (!uploadId) return { uploadId: null, offset: 0 };
  try {
    const state = await api(`${CHUNK_URL}?upload_id=${encodeURIComponent(uploadId)}`);
    return { uploadId, offset: state.offset };
  } catch (error) {
    if (error.status !== 404 && error.status !== 410) throw error;
    localStorage.removeItem(key);  // expired or unknown: start again
    return { uploadId: null, offset: 0 };
  }
}

// The md5 must cover every byte, so the part the server already holds is hashed locally.
async function hashPrefix(file, md5, end) {
  for (let at = 0; at < end; at += 16 * CHUNK) {
    md5.update(new Uint8Array(await file.slice(at, Math.min(at + 16 * CHUNK, end)).arrayBuffer()));
  }
}

async function sendChunk(file, uploadId, start, data) {
  const range = `bytes ${start}-${start + data.length - 1}/${file.size}`;
  for (let attempt = 1; ; attempt++) {
    const form = new FormData();
    if (uploadId) form.append("upload_id", uploadId);
    form.append(file.type.startsWith("image/") ? "image" : "document", new Blob([data]), file.name);
    try {
      return await api(CHUNK_URL, { method: "POST", body: form, headers: { "Content-Range": range } });
    } catch (error) {
      // Network errors, a busy upload (409) and server errors are worth another try.
      const retry = !(error instanceof ApiError) || error.status === 409 || error.status >= 500;
      if (!retry || attempt >= 5) throw error;
      await sleep(400 * 2 ** attempt);
    }
  }
}

async function complete(uploadId, md5, file) {
  const request = (type) => api("/api/v2/media/upload/complete/",
                                { method: "POST", body: { upload_id: uploadId, type, md5 } });
  try {
    return await request(file.type.startsWith("image/") ? "image" : "document");
  } catch (error) {
    if (error.body.code !== "not_an_image") throw error;
    return request("document");  // named like an image but is not one
  }
}

async function sendFile(file, row) {
  if (file.size === 0) throw new Error("empty files cannot be uploaded");
  const key = resumeKey(file);
  let { uploadId, offset } = await resumePoint(key);
  const md5 = new MD5();
  if (offset > 0) {
    row.note(`resumed at ${bytes(offset)}`);
    await hashPrefix(file, md5, offset);
  }
  row.progress(offset);
  while (offset < file.size) {
    const data = new Uint8Array(await file.slice(offset, Math.min(offset + CHUNK, file.size)).arrayBuffer());
    const reply = await sendChunk(file, uploadId, offset, data);
    uploadId = reply.upload_id;
    localStorage.setItem(key, uploadId);
    md5.update(data);
    offset = reply.offset;
    row.progress(offset);
  }
  try {
    const media = await complete(uploadId, md5.hex(), file);
    localStorage.removeItem(key);
    return media;
  } catch (error) {
    if (!error.body || error.body.code !== "md5_mismatch") throw error;
    // The file changed under the same name, size and time: it cannot be resumed, so start over next time.
    localStorage.removeItem(key);
    throw new Error("the file changed while it was sent; pick it again");
  }
}

const PARALLEL = 3;  // files sent at once; the others wait their turn
const waiting = [];
let sending = 0;

async function upload(file, row) {
  try {
    await sendFile(file, row);
    row.done();
  } catch (error) {
    row.fail(error.message);
  }
  refreshMedia();
}

function uploadAll(files) {
  waiting.push(...files.map((file) => [file, transferRow(file)]));
  while (sending < PARALLEL && waiting.length) {
    sending++;
    upload(...waiting.shift()).finally(() => { sending--; uploadAll([]); });
  }
}

// ---- media grid and detail -------------------------------------------------------------------

const bySize = (media) => [...media.thumbnails].sort((a, b) => a.size - b.size);

function card(media) {
  const thumb = el("div", { className: "thumb" });
  const smallest = bySize(media)[0];
  if (smallest) thumb.append(el("img", { src: smallest.f, alt: media.title }));
  else thumb.textContent = media.processing === "pending" ? "processing…" : media.mime_type || media.type;
  const caption = el("div", { className: "caption", textContent: media.title || `#${media.id}` });
  if (media.processing === "pending") caption.classList.add("pending");
  const item = el("li", { title: media.title }, thumb, caption);
  item.dataset.id = media.id;
  item.dataset.processing = media.processing;
  item.addEventListener("click", () => showDetail(media));
  return item;
}

async function refreshMedia() {
  clearTimeout(timers.media);
  let page;
  try {
    page = await api("/api/v2/media/?limit=100");
  } catch (error) {
    timers.media = setTimeout(refreshMedia, 5000);  // a gateway restart or a backend outage: try again
    return;
  }
  $("#grid").replaceChildren(...page.results.map(card));
  $("#empty").hidden = page.results.length > 0;
  // Thumbnails are made in the background: look again while any media is still processing.
  if (page.results.some((media) => media.processing === "pending")) timers.media = setTimeout(refreshMedia, 1500);
}

function showDetail(media) {
  $("#detail-title").textContent = media.title || `#${media.id}`;
  const image = $("#detail-image");
  const largest = bySize(media).pop();
  image.hidden = !largest;
  if (largest) image.src = largest.f;
  const dimensions = media.image_width != null ? `${media.image_width} × ${media.image_height}` : "—";
  const fields = [["Size", bytes(media.size)], ["Type", `${media.mime_type || "—"} (${media.type})`],
                  ["Dimensions", dimensions], ["MD5", media.md5 || "—"], ["Added", media.added_at],
                  ["Processing", media.processing]];
  $("#detail-fields").replaceChildren(...fields.flatMap(([name, value]) =>
    [el("dt", { textContent: name }), el("dd", { textContent: value })]));
  $("#detail-link").href = media.url || "";
  $("#detail").dataset.id = media.id;
  $("#detail").showModal();
}

async function deleteShown() {
  const dialog = $("#detail");
  await api(`/api/v2/media/${encodeURIComponent(dialog.dataset.id)}/`, { method: "DELETE" });
  dialog.close();
  refreshMedia();
}

// ---- ops panel (staff and admins) ------------------------------------------------------------

function fillTable(selector, rows, empty) {
  const columns = document.querySelectorAll(`${selector} thead th`).length;
  $(`${selector} tbody`).replaceChildren(...(rows.length ? rows
    : [el("tr", {}, el("td", { colSpan: columns, className: "none", textContent: empty }))]));
}

function cells(...values) {
  return el("tr", {}, ...values.map((value) => (value instanceof Node ? el("td", {}, value)
                                                                       : el("td", { textContent: value }))));
}

async function drawOps(queue) {
  const [ready, uploads, failed] = await Promise.all([
    fetch("/health/ready").then((reply) => reply.json()),  // 503 still lists every check
    api("/api/admin/uploads?limit=100"),
    api("/api/admin/jobs?state=failed&limit=100"),
  ]);
  $("#readiness").replaceChildren(...Object.entries(ready.checks).map(([name, state]) =>
    el("li", { className: state === "ok" ? "ok" : "bad", textContent: `${name}: ${state}` })));
  $("#queue").replaceChildren(...Object.entries(queue).map(([state, n]) =>
    el("li", { textContent: `${state}: ${n}` })));
  fillTable("#uploads-table", uploads.results.map((u) =>
    cells(u.user || `#${u.user_id}`, u.filename, `${bytes(u.offset)} / ${bytes(u.total)}`, u.expires)),
  "No uploads in progress.");
  fillTable("#failed-table", failed.results.map((job) => {
    const retry = el("button", { type: "button", textContent: "Retry" });
    retry.addEventListener("click", async () => {
      await api(`/api/admin/jobs/${encodeURIComponent(job.id)}/retry`, { method: "POST" }).catch(showOpsError);
      refreshOps();
    });
    return cells(job.id, String(job.attempts), job.error || "", retry);
  }), "No failed jobs.");
}

function showOpsError(error) {
  $("#ops-error").textContent = error ? `Could not load: ${error.message}` : "";
}

async function refreshOps() {
  clearTimeout(timers.ops);
  try {
    const queue = await api("/api/admin/queue");
    $("#ops").hidden = false;
    await drawOps(queue);
    showOpsError(null);
  } catch (error) {
    if (error.status === 403) return;  // not staff: no panel
    showOpsError(error);  // a backend outage: say so, and keep looking
  }
  timers.ops = setTimeout(refreshOps, 5000);
}

// ---- wiring ----------------------------------------------------------------------------------

function wire() {
  $("#sign-in-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    $("#sign-in-error").textContent = "";
    try {
      await signIn($("#token").value.trim());
      $("#token").value = "";
    } catch (error) {
      $("#sign-in-error").textContent = error.status === 401 ? "That token is not valid." : error.message;
    }
  });
  $("#sign-out").addEventListener("click", signOut);
  $("#refresh").addEventListener("click", refreshMedia);
  $("#files").addEventListener("change", (event) => {
    uploadAll([...event.target.files]);
    event.target.value = "";  // picking the same file again (to resume) fires change again
  });
  const drop = $("#drop");
  drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    uploadAll([...event.dataTransfer.files]);
  });
  $("#detail-delete").addEventListener("click", () => deleteShown().catch((error) => alert(error.message)));
  $("#detail-close").addEventListener("click", () => $("#detail").close());
  const saved = sessionStorage.getItem(TOKEN_KEY);
  if (saved) signIn(saved).catch(() => {});
}

wire();
