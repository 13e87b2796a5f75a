#!/usr/bin/env node
// Conformance test: the UNMODIFIED official client (@fal-ai/client 1.10.1, pinned in
// package.json) against tests/fakefal/fakefal.js. The client is only redirected, as
// docs/fal-protocol.md#client-redirect describes: a fetch wrapper rewrites the three fal hosts to the fake
// (and one test uses proxyUrl {when: "always"} instead). If the client is unhappy, the fake is
// wrong — fix the fake, never the expectation here.
// Usage: node conformance.mjs [--verbose]; last line "N passed, M failed"; exit 1 on failure.

import { createHash, randomBytes } from 'node:crypto';
import { createFalClient, ApiError, ValidationError } from '@fal-ai/client';

import { assert, AssertionError, eq, runTests, sleep, startFakefal, test, VERBOSE } from '../fakefal/harness.mjs';

const KEY = 'test:secret';
const VIDEO_BYTES = 4096;
const T2V = 'fal-ai/kling-video/v3/pro/text-to-video';
const I2V = 'fal-ai/kling-video/v3/pro/image-to-video';
const FAST = '[[queue_ms=50]] [[run_ms=100]]';

const sha256 = (buf) => createHash('sha256').update(buf).digest('hex');

async function rejectionOf(promise) {
  try { await promise; } catch (e) { return e; }
  throw new AssertionError('expected the call to reject, it resolved');
}

// ---------------------------------------------------------------- fake server + clients

let BASE;
const wire = [];   // every URL the client fetched (after rewriting), for assertions

// The fetch wrapper of docs/fal-protocol.md#client-redirect: same init, only the URL's host part is rewritten.
function rewritingFetch(input, init) {
  let url = typeof input === 'string' ? input : (input instanceof URL ? input.href : input.url);
  url = url.replace(/^https:\/\/queue\.fal\.run\//, `${BASE}/queue/`)
    .replace(/^https:\/\/fal\.run\//, `${BASE}/run/`)
    .replace(/^https:\/\/rest\.fal\.ai\//, `${BASE}/rest/`);
  assert(url.startsWith(BASE), `client tried to reach the outside: ${url}`);
  wire.push({ method: (init && init.method) || 'GET', url });
  return fetch(url, init);
}

const makeClient = (credentials) => createFalClient({ credentials, fetch: rewritingFetch });
let fal;

async function control(method, what, body) {
  const res = await fetch(`${BASE}/_fake/${what}`, {
    method, headers: body ? { 'content-type': 'application/json' } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  return res.json();
}
const stats = () => control('GET', 'stats');
const job = (id) => control('GET', `jobs/${id}`);

// ---------------------------------------------------------------- tests

test('fal.subscribe, polling mode (default 500 ms), with logs and onQueueUpdate', async () => {
  const updates = [];
  let enqueued = null;
  const result = await fal.subscribe(T2V, {
    input: { prompt: 'a cat on a skateboard [[queue_ms=600]] [[run_ms=1200]]', duration: '5' },
    logs: true,
    onEnqueue: (id) => { enqueued = id; },
    onQueueUpdate: (s) => updates.push(s),
  });
  const seen = [...new Set(updates.map((u) => u.status))];
  eq(seen, ['IN_QUEUE', 'IN_PROGRESS', 'COMPLETED'], 'statuses seen by onQueueUpdate');
  const logs = updates.filter((u) => u.status === 'IN_PROGRESS').flatMap((u) => u.logs || []);
  assert(logs.length > 0 && /^step \d+\/\d+$/.test(logs[0].message), 'logs on IN_PROGRESS updates');
  eq(result.requestId, enqueued, 'result.requestId (x-fal-request-id) = onEnqueue id');
  eq(result.data.video.url, `${BASE}/cdn/videos/${enqueued}.mp4`, 'output video url');
  eq(result.data.video.file_size, VIDEO_BYTES, 'file_size');
  const bytes = await (await fetch(result.data.video.url)).arrayBuffer();
  eq(bytes.byteLength, VIDEO_BYTES, 'video downloads with the announced size');
  const polls = wire.filter((w) => w.url.includes(`/requests/${enqueued}/status?logs=1`));
  assert(polls.length >= 3, `polled with logs=1 (${polls.length} polls)`);
  const j = await job(enqueued);
  eq([j.headers['x-fal-queue-priority'], j.headers['user-agent']], ['normal', '@fal-ai/client/1.10.1'], 'client headers seen by the fake');
});

test('fal.subscribe, streaming mode (SSE), accumulated logs', async () => {
  const updates = [];
  const result = await fal.subscribe(T2V, {
    input: { prompt: 'streaming [[queue_ms=300]] [[run_ms=400]]' },
    mode: 'streaming',
    logs: true,
    onQueueUpdate: (s) => updates.push(s),
  });
  const seen = [...new Set(updates.map((u) => u.status))];
  eq(seen, ['IN_QUEUE', 'IN_PROGRESS', 'COMPLETED'], 'statuses from the stream');
  const last = updates[updates.length - 1];
  eq(last.logs.map((l) => l.message), ['step 1/4', 'step 2/4', 'step 3/4', 'step 4/4'], 'accumulated logs, no duplicates');
  assert(result.data.video.url.endsWith(`${result.requestId}.mp4`), 'result after the stream');
  assert(wire.some((w) => w.url.includes(`/requests/${result.requestId}/status/stream?logs=1`)), 'stream URL used');
});

test('queue.submit / status / result with hint, priority, startTimeout', async () => {
  const sub = await fal.queue.submit(T2V, {
    input: { prompt: `queue api ${FAST}` }, priority: 'low', hint: 'lora:a', startTimeout: 30,
    headers: { 'X-Custom-Thing': 'yes' },
  });
  eq(sub.status, 'IN_QUEUE', 'submit status');
  assert(typeof sub.request_id === 'string' && sub.status_url.startsWith(`${BASE}/queue/fal-ai/kling-video/requests/`), 'submit body');
  const st = await fal.queue.status(T2V, { requestId: sub.request_id, logs: true });
  assert(['IN_QUEUE', 'IN_PROGRESS'].includes(st.status), `status ${st.status}`);
  let done = st;
  while (done.status !== 'COMPLETED') { await sleep(50); done = await fal.queue.status(T2V, { requestId: sub.request_id }); }
  eq(done.logs, null, 'logs null when not requested');
  assert(typeof done.metrics.inference_time === 'number', 'metrics');
  const res = await fal.queue.result(T2V, { requestId: sub.request_id });
  eq([res.requestId, res.data.video.content_type], [sub.request_id, 'video/mp4'], 'result');
  const j = await job(sub.request_id);
  eq([j.headers['x-fal-queue-priority'], j.headers['x-fal-runner-hint'], j.headers['x-fal-request-timeout'], j.headers['x-custom-thing']],
    ['low', 'lora:a', '30', undefined], 'x-fal-* headers kept (custom non-fal header not kept)');
});

test('queue.cancel: queued job is cancelled; cancel of a completed job rejects 400', async () => {
  const sub = await fal.queue.submit(T2V, { input: { prompt: 'cancel me [[queue_ms=3000]]' } });
  await fal.queue.cancel(T2V, { requestId: sub.request_id });
  const st = await fal.queue.status(T2V, { requestId: sub.request_id });
  eq([st.status, st.error_type], ['COMPLETED', 'client_cancelled'], 'cancelled ends COMPLETED');
  const resultErr = await rejectionOf(fal.queue.result(T2V, { requestId: sub.request_id }));
  assert(resultErr instanceof ApiError && resultErr.status === 499, `result of cancelled: ${resultErr}`);
  const err = await rejectionOf(fal.queue.cancel(T2V, { requestId: sub.request_id }));
  assert(err instanceof ApiError, `ApiError expected, got ${err}`);
  eq([err.status, err.body, err.message], [400, { status: 'ALREADY_COMPLETED' }, 'Bad Request'], 'already completed');
  eq(err.requestId, sub.request_id, 'ApiError.requestId from x-fal-request-id');
});

test('storage.upload of a small Blob, then GET returns the same bytes', async () => {
  const data = randomBytes(100 * 1024);
  const url = await fal.storage.upload(new Blob([data], { type: 'image/png' }));
  assert(url.startsWith(`${BASE}/cdn/`), `file url ${url}`);
  const res = await fetch(url);
  const got = Buffer.from(await res.arrayBuffer());
  eq(res.headers.get('content-type'), 'image/png', 'served content type');
  eq(sha256(got), sha256(data), 'same bytes');
  const put = wire.filter((w) => w.method === 'PUT' && w.url.startsWith(`${BASE}/upload/`));
  assert(put.length >= 1, 'the PUT went through the configured fetch to the returned upload_url');
});

test('storage.upload of a >90 MiB Blob uses multipart; GET returns the same bytes', async () => {
  const size = 90 * 1024 * 1024 + 123457;
  const data = randomBytes(size);
  const before = await stats();
  const url = await fal.storage.upload(new Blob([data]));
  const after = await stats();
  eq(after.upload_parts - before.upload_parts, 10, '10 MiB parts');
  eq(after.uploads - before.uploads, 1, 'one stored file');
  const got = Buffer.from(await (await fetch(url)).arrayBuffer());
  eq(got.length, size, 'size');
  eq(sha256(got), sha256(data), 'same bytes');
  const listed = (await control('GET', 'uploads')).find((u) => u.url === url);
  eq([listed.multipart, listed.sha256], [true, sha256(data)], 'fake lists it as multipart');
  assert(wire.some((w) => w.url.includes('/rest/storage/upload/initiate-multipart?storage_type=fal-cdn-v3')), 'multipart initiate');
});

test('subscribe with a Blob in the input: uploaded and replaced by its URL', async () => {
  const image = new Blob([randomBytes(2048)], { type: 'image/jpeg' });
  const result = await fal.subscribe(I2V, { input: { start_image_url: image, prompt: `i2v ${FAST}` }, pollInterval: 50 });
  const j = await job(result.requestId);
  assert(j.input.start_image_url.startsWith(`${BASE}/cdn/files/`), `input url ${j.input.start_image_url}`);
  const got = await (await fetch(j.input.start_image_url)).arrayBuffer();
  eq(got.byteLength, 2048, 'uploaded image served');
});

test('422 → ValidationError with fieldErrors (loc/msg)', async () => {
  const err = await rejectionOf(fal.subscribe(T2V, { input: { prompt: `bad ${FAST}`, duration: 5 }, pollInterval: 50 }));
  assert(err instanceof ValidationError, `ValidationError expected, got ${err}`);
  eq(err.status, 422, 'status');
  const fe = err.fieldErrors;
  assert(Array.isArray(fe) && fe.length >= 1, 'fieldErrors array');
  eq(fe[0].loc, ['body', 'duration'], 'loc');
  assert(typeof fe[0].msg === 'string' && fe[0].msg.length > 0, 'msg');
  eq(err.getFieldErrors('duration').length, 1, 'getFieldErrors("duration")');
  const shot = await rejectionOf(fal.subscribe(T2V, {
    input: { multi_prompt: [{ prompt: `${FAST} ${'x'.repeat(520)}` }] }, pollInterval: 50 }));
  eq(shot.fieldErrors[0].loc, ['body', 'multi_prompt', 0, 'prompt'], 'shot loc');
  eq(shot.fieldErrors[0].msg, 'Prompt must not exceed 512 characters.', 'shot msg');
});

test('401 with a wrong key → ApiError, not retried, no job', async () => {
  const before = await stats();
  const bad = makeClient('test:wrong');
  const err = await rejectionOf(bad.queue.submit(T2V, { input: { prompt: 'x' } }));
  assert(err instanceof ApiError, `ApiError expected, got ${err}`);
  eq([err.status, err.body.detail, err.message], [401, 'No user found for Key ID and Secret', 'Unauthorized'], '401');
  const after = await stats();
  eq([after.requests.submit - before.requests.submit, after.auth_failed - before.auth_failed, after.jobs_created - before.jobs_created],
    [1, 1, 0], 'one attempt, counted as auth failure');
});

test('503 then success on submit: the client retries', async () => {
  const before = await stats();
  await control('POST', 'faults', { route: 'submit', action: 'status', code: 503 });
  const sub = await fal.queue.submit(T2V, { input: { prompt: `retry ${FAST}` } });
  eq(sub.status, 'IN_QUEUE', 'submit eventually succeeded');
  const after = await stats();
  eq([after.requests.submit - before.requests.submit, after.jobs_created - before.jobs_created], [2, 1], 'two attempts, one job');
});

test('dropped status connection: the client retries the poll', async () => {
  await control('POST', 'faults', { route: 'status', action: 'drop_before' });
  const result = await fal.subscribe(T2V, { input: { prompt: `drop ${FAST}` }, pollInterval: 50 });
  assert(result.data.video, 'completed despite the dropped poll');
});

test('504 with x-fal-request-timeout-type: user is not retried (isUserTimeout)', async () => {
  const before = await stats();
  await control('POST', 'faults', { route: 'submit', action: 'status', code: 504, timeout_type: 'user', error_type: 'request_timeout' });
  const err = await rejectionOf(fal.queue.submit(T2V, { input: { prompt: 'x' } }));
  assert(err instanceof ApiError && err.isUserTimeout === true, `user timeout expected, got ${err}`);
  eq((await stats()).requests.submit - before.requests.submit, 1, 'single attempt');
});

test('runner failure ([[fail:runner]]) surfaces as ApiError 503 from the result', async () => {
  const err = await rejectionOf(fal.subscribe(T2V, { input: { prompt: `r ${FAST} [[fail:runner]]` }, pollInterval: 50 }));
  // 503 is retryable for result calls, so the client asks 4 times before giving up.
  assert(err instanceof ApiError && err.status === 503, `503 expected, got ${err}`);
  eq(err.body.error_type, 'runner_disconnected', 'error_type');
});

test('fal.run (sync endpoint on the fake)', async () => {
  const res = await fal.run(T2V, { input: { prompt: 'sync [[run_ms=50]]' } });
  assert(res.data.video.url && res.requestId, 'run result with requestId');
});

test('proxyUrl {url, when: "always"}: routed on x-fal-target-url', async () => {
  const proxied = createFalClient({ credentials: KEY, proxyUrl: { url: `${BASE}/proxy`, when: 'always' } });
  const updates = [];
  const res = await proxied.subscribe(T2V, { input: { prompt: `proxy ${FAST}` }, pollInterval: 50, onQueueUpdate: (s) => updates.push(s.status) });
  assert(res.data.video.url, 'result through the proxy');
  eq(updates[updates.length - 1], 'COMPLETED', 'polled through the proxy');
});

// ---------------------------------------------------------------- main

let srv;
runTests({
  setup: async () => {
    // KLINGRUN_CONFORMANCE_TLS: a folder with cert.pem and key.pem (run.sh's second pass, which
    // also hands the certificate to Node as NODE_EXTRA_CA_CERTS): the fake serves HTTPS.
    const tls = process.env.KLINGRUN_CONFORMANCE_TLS;
    // --http2: the fake offers HTTP/2 in the handshake, as fal's hosts do; the client picks.
    const tlsArgs = tls ? ['--tls-cert', `${tls}/cert.pem`, '--tls-key', `${tls}/key.pem`, '--http2'] : [];
    srv = await startFakefal(['--port', '0', '--key', KEY, '--video-bytes', String(VIDEO_BYTES), '--exit-with-parent', ...tlsArgs]);
    BASE = srv.base;
    assert(BASE.startsWith(tls ? 'https://' : 'http://'), `fake at ${BASE}`);
    fal = makeClient(KEY);
  },
  teardown: async () => {
    const s = await stats();
    srv.child.kill('SIGTERM');
    process.stderr.write(`conformance: requests by HTTP version: ${JSON.stringify(s.http_versions)}\n`);
    return s.auth_missing === 0 ? [] : [`the client sent ${s.auth_missing} API calls without Authorization`];
  },
  detail: (e) => (VERBOSE && e.body ? `body: ${JSON.stringify(e.body)}` : ''),
});
