#!/usr/bin/env node
// Self-test of fakefal.js: starts it on an ephemeral port and checks the protocol surface,
// every fault action, the counters, and the control API. Node built-ins only (global fetch).
// Usage: node tests/fakefal/selftest.mjs [--verbose]
// Last line of output: "N passed, M failed"; exit code 1 when anything failed.

import { createHash, createPublicKey, verify as verifySignature } from 'node:crypto';
import http from 'node:http';
import { assert, eq, runTests, sleep, startFakefal, test, VERBOSE, waitExit } from './harness.mjs';

const KEY = 'test:secret';
const VIDEO_BYTES = 5000;

let SRV;   // { child, base, port }

// ---------------------------------------------------------------- HTTP helpers

async function call(method, urlPath, { body, headers = {}, auth = true, raw = false, signal } = {}) {
  const h = { ...headers };
  if (auth) h.authorization = `Key ${KEY}`;
  if (body !== undefined && !raw) h['content-type'] = 'application/json';
  const res = await fetch(`${SRV.base}${urlPath}`, {
    method, headers: h, signal,
    body: body === undefined ? undefined : (raw ? body : JSON.stringify(body)),
  });
  const text = await res.text();
  let json;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: res.status, statusText: res.statusText, headers: res.headers, text, json };
}

const control = async (method, what, body) => (await call(method, `/_fake/${what}`, { body, auth: false })).json;
const stats = () => control('GET', 'stats');
const addFault = (f) => control('POST', 'faults', f);
const T2V = 'fal-ai/kling-video/v3/pro/text-to-video';

async function submit(endpoint, input, opts = {}) {
  const r = await call('POST', `/queue/${endpoint}${opts.query || ''}`, { body: input, headers: opts.headers });
  assert(r.status === 200, `submit ${endpoint}: HTTP ${r.status} ${r.text}`);
  return r.json;
}

const statusOf = (appId, id, q = '?logs=1') => call('GET', `/queue/${appId}/requests/${id}/status${q}`);
const resultOf = (appId, id) => call('GET', `/queue/${appId}/requests/${id}`);

async function waitCompleted(appId, id, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await statusOf(appId, id);
    if (r.json && r.json.status === 'COMPLETED') return r;
    assert(Date.now() < deadline, `request ${id} did not complete in ${timeoutMs} ms`);
    await sleep(25);
  }
}

// Runs a Kling job to completion and returns its result response.
async function runToResult(endpoint, input) {
  const job = await submit(endpoint, input);
  const appId = endpoint.split('/').slice(0, 2).join('/');
  const final = await waitCompleted(appId, job.request_id);
  return { job, final, result: await resultOf(appId, job.request_id) };
}

function expectedVideo(requestId, size) {
  const blocks = [];
  for (let i = 0; i * 32 < size; i++) blocks.push(createHash('sha256').update(`${requestId}:${i}`).digest());
  return Buffer.concat(blocks).subarray(0, size);
}

async function fetchFails(promiseFn) {
  try { await promiseFn(); } catch (e) { return e; }
  return null;
}

// ---------------------------------------------------------------- tests: queue protocol

test('startup line and ephemeral port', async () => {
  assert(/^fakefal listening on http:\/\/127\.0\.0\.1:\d+$/.test(SRV.firstLine), `line: ${SRV.firstLine}`);
  assert(SRV.port > 0, 'port');
});

test('submit answers 200 IN_QUEUE with absolute app-id URLs and x-fal-request-id', async () => {
  const r = await call('POST', `/queue/${T2V}`, { body: { prompt: 'a cat', duration: '5' } });
  eq(r.status, 200, 'status');
  eq(r.statusText, 'OK', 'reason');
  assert(r.headers.get('content-type').includes('application/json'), 'json content type');
  const b = r.json;
  eq(b.status, 'IN_QUEUE', 'status field');
  eq(r.headers.get('x-fal-request-id'), b.request_id, 'x-fal-request-id');
  eq(b.status_url, `${SRV.base}/queue/fal-ai/kling-video/requests/${b.request_id}/status`, 'status_url');
  eq(b.response_url, `${SRV.base}/queue/fal-ai/kling-video/requests/${b.request_id}`, 'response_url');
  eq(b.cancel_url, `${SRV.base}/queue/fal-ai/kling-video/requests/${b.request_id}/cancel`, 'cancel_url');
  assert(Number.isInteger(b.queue_position), 'queue_position');
});

test('status: 202 IN_QUEUE -> 202 IN_PROGRESS with logs -> 200 COMPLETED with metrics', async () => {
  const job = await submit(T2V, { prompt: 'lifecycle [[queue_ms=150]] [[run_ms=300]]' });
  const q = await statusOf('fal-ai/kling-video', job.request_id);
  eq([q.status, q.json.status], [202, 'IN_QUEUE'], 'queued');
  eq(q.statusText, 'Accepted', 'reason phrase');
  assert(Number.isInteger(q.json.queue_position) && q.json.queue_position >= 0, 'queue_position');
  eq(q.headers.get('x-fal-request-id'), job.request_id, 'request id header');
  await sleep(250);
  const p = await statusOf('fal-ai/kling-video', job.request_id, '?logs=1');
  eq([p.status, p.json.status], [202, 'IN_PROGRESS'], 'in progress');
  assert(Array.isArray(p.json.logs) && p.json.logs.length >= 1, 'logs array with logs=1');
  assert(/^step \d+\/\d+$/.test(p.json.logs[0].message), 'step log line');
  eq(Object.keys(p.json.logs[0]).sort(), ['level', 'message', 'source', 'timestamp'], 'log fields');
  const p0 = await statusOf('fal-ai/kling-video', job.request_id, '?logs=0');
  eq(p0.json.logs, null, 'logs null with logs=0');
  const pf = await statusOf('fal-ai/kling-video', job.request_id, '?logs=false');
  eq(pf.json.logs, null, 'logs null with logs=false');
  const c = await waitCompleted('fal-ai/kling-video', job.request_id);
  eq(c.status, 200, 'completed is 200');
  assert(typeof c.json.metrics.inference_time === 'number', 'metrics.inference_time');
  assert(Array.isArray(c.json.logs) && c.json.logs.length === 4, 'all 4 logs on COMPLETED with logs=1');
  assert(c.json.response_url && c.json.status_url && c.json.cancel_url, 'urls on status');
  const nolog = await statusOf('fal-ai/kling-video', job.request_id, '');
  eq(nolog.json.logs, null, 'logs null without the parameter');
});

test('trailing slashes and logs=true on status and result', async () => {
  const job = await submit(T2V, { prompt: 'slash [[queue_ms=0]] [[run_ms=0]]' });
  await sleep(50);
  const s = await call('GET', `/queue/fal-ai/kling-video/requests/${job.request_id}/status/?logs=true`);
  eq([s.status, s.json.status], [200, 'COMPLETED'], 'status/');
  assert(Array.isArray(s.json.logs), 'logs=true gives logs');
  const r = await call('GET', `/queue/fal-ai/kling-video/requests/${job.request_id}/`);
  eq(r.status, 200, 'result/');
});

test('queue_position is 0-based and non-increasing', async () => {
  const jobs = [];
  for (let i = 0; i < 4; i++) jobs.push(await submit(T2V, { prompt: `pos ${i} [[queue_ms=${150 + i * 100}]] [[run_ms=10]]` }));
  const last = jobs[3].request_id;
  const seen = [];
  for (let i = 0; i < 30; i++) {
    const s = await statusOf('fal-ai/kling-video', last, '?logs=0');
    if (s.json.status !== 'IN_QUEUE') break;
    seen.push(s.json.queue_position);
    await sleep(25);
  }
  assert(seen.length > 2, `too few samples ${seen}`);
  assert(seen[0] >= 3, `first position ${seen[0]} should count the 3 jobs ahead`);
  for (let i = 1; i < seen.length; i++) assert(seen[i] <= seen[i - 1], `position went up: ${seen}`);
  assert(seen[seen.length - 1] < seen[0], `position never went down: ${seen}`);
});

test('result: output JSON, deterministic video of --video-bytes, Range support', async () => {
  const { job, result } = await runToResult(T2V, { prompt: 'video [[queue_ms=0]] [[run_ms=20]]' });
  eq(result.status, 200, 'result status');
  eq(result.headers.get('x-fal-request-id'), job.request_id, 'result request id');
  const v = result.json.video;
  eq(v.url, `${SRV.base}/cdn/videos/${job.request_id}.mp4`, 'video url');
  eq([v.content_type, v.file_name, v.file_size], ['video/mp4', 'output.mp4', VIDEO_BYTES], 'video fields');
  const before = (await stats()).downloads;
  const res = await fetch(v.url);
  const bytes = Buffer.from(await res.arrayBuffer());
  eq([res.status, res.headers.get('content-type'), res.headers.get('content-length')],
    [200, 'video/mp4', String(VIDEO_BYTES)], 'download headers');
  assert(bytes.equals(expectedVideo(job.request_id, VIDEO_BYTES)), 'bytes follow the sha256-counter formula');
  eq((await stats()).downloads, before + 1, 'downloads counter');
  const part = await fetch(v.url, { headers: { range: 'bytes=100-' } });
  const partBytes = Buffer.from(await part.arrayBuffer());
  eq([part.status, part.headers.get('content-range')], [206, `bytes 100-${VIDEO_BYTES - 1}/${VIDEO_BYTES}`], 'range');
  assert(partBytes.equals(bytes.subarray(100)), 'range bytes');
});

test('[[video_bytes=N]] marker and large streamed video', async () => {
  const size = 3 * 1024 * 1024 + 7;
  const { job, result } = await runToResult(T2V, { prompt: `big [[queue_ms=0]] [[run_ms=0]] [[video_bytes=${size}]]` });
  eq(result.json.video.file_size, size, 'file_size');
  const bytes = Buffer.from(await (await fetch(result.json.video.url)).arrayBuffer());
  eq(bytes.length, size, 'downloaded size');
  assert(bytes.subarray(size - 64).equals(expectedVideo(job.request_id, size).subarray(size - 64)), 'tail bytes');
});

test('result before completion is a 400 JSON error; unknown id is 404', async () => {
  const job = await submit(T2V, { prompt: 'early [[queue_ms=300]]' });
  const r = await resultOf('fal-ai/kling-video', job.request_id);
  eq(r.status, 400, 'early result');
  assert(typeof r.json.detail === 'string', 'detail');
  const u = await statusOf('fal-ai/kling-video', '00000000-0000-0000-0000-000000000000');
  eq(u.status, 404, 'unknown status');
  const wrong = await call('GET', `/queue/${T2V}/requests/${job.request_id}/status`);
  eq(wrong.status, 404, 'full endpoint path in status URL is refused');
});

test('cancel: 202 queued, 202 in progress, 400 completed, 404 unknown; 499 result', async () => {
  const before = (await stats()).cancels;
  const queued = await submit(T2V, { prompt: 'cancel me [[queue_ms=2000]]' });
  const c1 = await call('PUT', `/queue/fal-ai/kling-video/requests/${queued.request_id}/cancel`, { headers: { 'content-type': 'application/json' } });
  eq([c1.status, c1.json], [202, { status: 'CANCELLATION_REQUESTED' }], 'cancel queued');
  eq(c1.headers.get('x-fal-request-id'), queued.request_id, 'cancel request id');
  const s = await statusOf('fal-ai/kling-video', queued.request_id);
  eq([s.status, s.json.status, s.json.error_type], [200, 'COMPLETED', 'client_cancelled'], 'cancelled status');
  const r = await resultOf('fal-ai/kling-video', queued.request_id);
  eq([r.status, r.statusText, r.json.error_type], [499, 'Client Closed Request', 'client_cancelled'], 'cancelled result');
  eq(r.headers.get('x-fal-error-type'), 'client_cancelled', 'X-Fal-Error-Type');
  const again = await call('PUT', `/queue/fal-ai/kling-video/requests/${queued.request_id}/cancel`);
  eq([again.status, again.json], [400, { status: 'ALREADY_COMPLETED' }], 'cancel completed');
  const running = await submit(T2V, { prompt: 'cancel running [[queue_ms=0]] [[run_ms=2000]]' });
  await sleep(40);
  eq((await statusOf('fal-ai/kling-video', running.request_id)).json.status, 'IN_PROGRESS', 'running');
  const c2 = await call('PUT', `/queue/fal-ai/kling-video/requests/${running.request_id}/cancel`);
  eq(c2.status, 202, 'cancel in progress');
  eq((await statusOf('fal-ai/kling-video', running.request_id)).json.error_type, 'client_cancelled', 'ended cancelled');
  const unknown = await call('PUT', '/queue/fal-ai/kling-video/requests/nope/cancel');
  eq([unknown.status, unknown.json.status], [404, 'NOT_FOUND'], 'cancel unknown');
  eq((await stats()).cancels, before + 2, 'cancels counter');
  const jobs = await control('GET', 'jobs');
  assert(jobs.find((j) => j.request_id === queued.request_id).cancelled === true, 'jobs[].cancelled');
});

// ---------------------------------------------------------------- tests: Kling validation

async function expect422(endpoint, input, loc, msgPart) {
  const { final, result } = await runToResult(endpoint, input);
  eq([final.json.status, final.json.error_type], ['COMPLETED', 'validation_error'], `${endpoint} status`);
  eq(result.status, 422, `${endpoint} result code`);
  const d = result.json.detail;
  assert(Array.isArray(d), 'detail array');
  const hit = d.find((e) => JSON.stringify(e.loc) === JSON.stringify(loc));
  assert(hit, `no error at ${JSON.stringify(loc)}: ${JSON.stringify(d)}`);
  assert(!msgPart || hit.msg.includes(msgPart), `msg '${hit.msg}' lacks '${msgPart}'`);
  assert(typeof hit.type === 'string', 'type');
}

const fast = '[[queue_ms=0]] [[run_ms=0]]';
test('422: duration must be a string in the endpoint enum', async () => {
  await expect422(T2V, { prompt: `p ${fast}`, duration: 5 }, ['body', 'duration'], 'valid string');
  await expect422(T2V, { prompt: `p ${fast}`, duration: '16' }, ['body', 'duration'], "'15'");
  await expect422('fal-ai/kling-video/v2.5-turbo/pro/text-to-video', { prompt: `p ${fast}`, duration: '7' },
    ['body', 'duration'], "'5' or '10'");
  const ok = await runToResult('fal-ai/kling-video/v2.6/pro/text-to-video', { prompt: `p ${fast}`, duration: '10' });
  eq(ok.result.status, 200, 'v2.6 "10" accepted');
});

test('422: prompt XOR multi_prompt, shot prompt <= 512, prompt <= 2500', async () => {
  await expect422(T2V, { prompt: `p ${fast}`, multi_prompt: [{ prompt: 'x' }] }, ['body'], 'not both');
  await expect422(T2V, { duration: '5', negative_prompt: fast }, ['body'], 'Either prompt or multi_prompt');
  await expect422('fal-ai/kling-video/o3/standard/text-to-video',
    { multi_prompt: [{ prompt: fast }, { prompt: 'y'.repeat(513) }] },
    ['body', 'multi_prompt', 1, 'prompt'], 'Prompt must not exceed 512 characters.');
  await expect422(T2V, { prompt: `${fast}${'z'.repeat(2500)}` }, ['body', 'prompt'], '2500');
  await expect422('fal-ai/kling-video/v2.6/pro/text-to-video', { duration: '5', negative_prompt: fast }, ['body', 'prompt'], 'Field required');
  const ok = await runToResult('fal-ai/kling-video/o3/pro/reference-to-video', { multi_prompt: [{ prompt: `a ${fast}`, duration: '3' }] });
  eq(ok.result.status, 200, 'multi_prompt alone accepted');
});

test('422: required start image field per endpoint', async () => {
  const img = 'https://example.com/a.png';
  await expect422('fal-ai/kling-video/v3/standard/image-to-video', { prompt: `p ${fast}`, image_url: img },
    ['body', 'start_image_url'], 'Field required');
  await expect422('fal-ai/kling-video/o3/pro/image-to-video', { prompt: `p ${fast}`, start_image_url: img },
    ['body', 'image_url'], 'Field required');
  await expect422('fal-ai/kling-video/v2.5-turbo/pro/image-to-video', { prompt: `p ${fast}` }, ['body', 'image_url'], 'Field required');
  await expect422('fal-ai/kling-video/v2.6/pro/image-to-video', { prompt: `p ${fast}` }, ['body', 'start_image_url'], 'Field required');
  for (const [ep, field] of [['v3/pro/image-to-video', 'start_image_url'], ['o3/standard/image-to-video', 'image_url'],
    ['v2.6/pro/image-to-video', 'start_image_url'], ['v2.5-turbo/pro/image-to-video', 'image_url']]) {
    const ok = await runToResult(`fal-ai/kling-video/${ep}`, { prompt: `p ${fast}`, [field]: img });
    eq(ok.result.status, 200, `${ep} with ${field}`);
  }
});

test('markers [[fail:422]] and [[fail:runner]]', async () => {
  await expect422(T2V, { prompt: `p ${fast} [[fail:422]]` }, ['body', 'prompt']);
  const { final, result } = await runToResult(T2V, { prompt: `p ${fast} [[fail:runner]]` });
  eq([final.json.error, final.json.error_type], ['Runner disconnected', 'runner_disconnected'], 'status error');
  eq([result.status, result.json.error_type], [503, 'runner_disconnected'], 'result 503');
});

test('unknown Kling endpoint is 404 at submit; other app id forms are accepted', async () => {
  const before = (await stats()).jobs_created;
  const r = await call('POST', '/queue/fal-ai/kling-video/v9/pro/text-to-video', { body: { prompt: 'x' } });
  eq(r.status, 404, 'unknown endpoint');
  eq((await stats()).jobs_created, before, 'no job for 404');
  const w = await submit('workflows/acme/my-flow/run', { any: 1 });
  assert(w.status_url.endsWith(`/queue/workflows/acme/my-flow/requests/${w.request_id}/status`), 'workflows app id');
  const cf = await submit('comfy/acme/graph', {});
  assert(cf.response_url.endsWith(`/queue/comfy/acme/graph/requests/${cf.request_id}`), 'comfy app id');
  const other = await submit('fal-ai/fast-sdxl', {});
  eq((await statusOf('fal-ai/fast-sdxl', other.request_id)).status, 202, 'plain owner/alias');
  const jobs = await control('GET', 'jobs');
  eq(jobs.find((j) => j.request_id === w.request_id).app_id, 'workflows/acme/my-flow', 'jobs[].app_id');
});

// ---------------------------------------------------------------- tests: SSE, headers, auth

test('SSE stream: event-stream type, current state at once, closes after COMPLETED', async () => {
  const job = await submit(T2V, { prompt: 'sse [[queue_ms=100]] [[run_ms=200]]' });
  const res = await fetch(`${SRV.base}/queue/fal-ai/kling-video/requests/${job.request_id}/status/stream?logs=1`, {
    headers: { authorization: `Key ${KEY}`, accept: 'application/json, text/event-stream', 'content-type': 'application/json' },
  });
  eq(res.status, 200, 'stream status');
  assert(res.headers.get('content-type').startsWith('text/event-stream'), 'content type');
  eq(res.headers.get('x-fal-request-id'), job.request_id, 'request id');
  const t0 = Date.now();
  let text = '';
  let firstAt = null;
  const decoder = new TextDecoder();
  for await (const chunk of res.body) {
    text += decoder.decode(chunk);
    if (firstAt === null && text.includes('\n\n')) firstAt = Date.now() - t0;
  }
  const events = text.split('\n\n').filter((e) => e.startsWith('data: ')).map((e) => JSON.parse(e.slice(6)));
  assert(firstAt !== null && firstAt < 80, `first event after ${firstAt} ms`);
  eq(events[0].status, 'IN_QUEUE', 'first event');
  eq(events[events.length - 1].status, 'COMPLETED', 'last event');
  assert(events.some((e) => e.status === 'IN_PROGRESS'), 'IN_PROGRESS seen');
  const logs = events.flatMap((e) => e.logs || []).map((l) => l.message);
  eq(logs, ['step 1/4', 'step 2/4', 'step 3/4', 'step 4/4'], 'incremental logs, each once');
  const done = await fetch(`${SRV.base}/queue/fal-ai/kling-video/requests/${job.request_id}/status/stream`, {
    headers: { authorization: `Key ${KEY}` } });
  const doneText = await done.text();
  eq(doneText.split('\n\n').filter(Boolean).length, 1, 'completed job: one event, then close');
});

test('SSE keep-alive comments', async () => {
  await control('POST', 'config', { keepalive_ms: 50 });
  try {
    const job = await submit(T2V, { prompt: 'ka [[queue_ms=0]] [[run_ms=300]]' });
    const text = await (await fetch(`${SRV.base}/queue/fal-ai/kling-video/requests/${job.request_id}/status/stream?logs=0`, {
      headers: { authorization: `Key ${KEY}` } })).text();
    assert(/^: /m.test(text), 'a ":" comment line');
    const statuses = text.split('\n\n').filter((e) => e.startsWith('data: ')).map((e) => JSON.parse(e.slice(6)).status);
    // (the job may still be IN_QUEUE for an instant when the stream opens)
    eq(statuses.filter((st) => st !== 'IN_QUEUE'), ['IN_PROGRESS', 'COMPLETED'], 'logs=0: log lines are not events');
  } finally {
    await control('POST', 'config', { keepalive_ms: 15000 });
  }
});

test('x-fal-* request headers and fal_webhook are kept per job', async () => {
  const job = await submit(T2V, { prompt: `h ${fast}` }, {
    headers: { 'x-fal-queue-priority': 'low', 'x-fal-runner-hint': 'lora:a', 'x-fal-request-timeout': '30',
      'x-fal-no-retry': '1', 'x-fal-object-lifecycle-preference': '{"expiration_duration_seconds":3600}',
      'user-agent': 'selftest/1' },
  });
  const j = await control('GET', `jobs/${job.request_id}`);
  eq([j.headers['x-fal-queue-priority'], j.headers['x-fal-runner-hint'], j.headers['x-fal-request-timeout'],
    j.headers['x-fal-no-retry'], j.headers['user-agent']], ['low', 'lora:a', '30', '1', 'selftest/1'], 'headers');
  assert(j.headers['x-fal-object-lifecycle-preference'].includes('3600'), 'lifecycle header');
  assert(!('authorization' in j.headers), 'authorization not kept');
});

test('auth: missing and wrong keys are 401 and counted', async () => {
  const before = await stats();
  const missing = await call('POST', `/queue/${T2V}`, { body: { prompt: 'x' }, auth: false });
  eq([missing.status, missing.statusText, missing.json], [401, 'Unauthorized', { detail: 'No user found for Key ID and Secret' }], 'missing');
  const wrong = await call('GET', '/queue/fal-ai/kling-video/requests/x/status', { auth: false, headers: { authorization: 'Key test:wrong' } });
  eq([wrong.status, wrong.json.detail], [401, 'No user found for Key ID and Secret'], 'wrong');
  assert(wrong.headers.get('x-fal-request-id'), 'request id on 401');
  const initiate = await call('POST', '/rest/storage/upload/initiate?storage_type=fal-cdn-v3', { body: {}, auth: false });
  eq(initiate.status, 401, 'rest host needs auth');
  const after = await stats();
  eq([after.auth_missing - before.auth_missing, after.auth_failed - before.auth_failed], [2, 1], 'counters');
  eq(after.jobs_created, before.jobs_created, 'no job created');
});

test('sync run on /run/<endpoint>', async () => {
  const r = await call('POST', `/run/${T2V}`, { body: { prompt: 'sync [[run_ms=50]]' } });
  eq(r.status, 200, 'run status');
  assert(r.json.video && r.json.video.url, 'output');
  const bad = await call('POST', `/run/${T2V}`, { body: { prompt: 'sync [[run_ms=10]]', duration: 5 } });
  eq(bad.status, 422, 'run 422');
});

test('x-fal-request-timeout: not started in time -> request_timeout, 504 user timeout', async () => {
  const job = await submit(T2V, { prompt: 'late [[queue_ms=2000]]' }, { headers: { 'x-fal-request-timeout': '0.2' } });
  await sleep(300);
  const s = await statusOf('fal-ai/kling-video', job.request_id);
  eq([s.json.status, s.json.error_type], ['COMPLETED', 'request_timeout'], 'status');
  const r = await resultOf('fal-ai/kling-video', job.request_id);
  eq([r.status, r.headers.get('x-fal-request-timeout-type')], [504, 'user'], 'result');
  const bad = await call('POST', `/queue/${T2V}`, { body: { prompt: 'x' }, headers: { 'x-fal-request-timeout': 'abc' } });
  eq([bad.status, bad.json.error_type], [400, 'bad_request'], 'invalid timeout header');
});

test('webhook: signed POST to a loopback URL, verifiable with the JWKS', async () => {
  let received = null;
  let gotIt;
  const got = new Promise((resolve) => { gotIt = resolve; });
  const hook = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      received = { headers: req.headers, body: Buffer.concat(chunks) };
      res.end('ok');
      gotIt();
    });
  });
  await new Promise((resolve) => hook.listen(0, '127.0.0.1', resolve));
  const port = hook.address().port;
  const job = await submit(T2V, { prompt: `wh ${fast}` }, { query: `?fal_webhook=${encodeURIComponent(`http://127.0.0.1:${port}/hook`)}` });
  eq(job.gateway_request_id, job.request_id, 'gateway_request_id with webhook');
  await Promise.race([got, sleep(3000)]);
  hook.close();
  assert(received, 'webhook not received');
  const body = JSON.parse(received.body);
  eq([body.request_id, body.status, !!body.payload.video], [job.request_id, 'OK', true], 'payload');
  const h = received.headers;
  const message = [h['x-fal-webhook-request-id'], h['x-fal-webhook-user-id'], h['x-fal-webhook-timestamp'],
    createHash('sha256').update(received.body).digest('hex')].join('\n');
  const { keys } = await control('GET', 'jwks');
  const key = createPublicKey({ key: { kty: keys[0].kty, crv: keys[0].crv, x: keys[0].x }, format: 'jwk' });
  assert(verifySignature(null, Buffer.from(message), key, Buffer.from(h['x-fal-webhook-signature'], 'hex')), 'signature');
});

// ---------------------------------------------------------------- tests: storage

async function initiate(kind, fileName, contentType) {
  const r = await call('POST', `/rest/storage/upload/${kind}?storage_type=fal-cdn-v3`,
    { body: { content_type: contentType, file_name: fileName }, headers: { 'x-fal-object-lifecycle': '{"expiration_duration_seconds":60}' } });
  eq(r.status, 200, `${kind} status`);
  return r.json;
}

test('storage: initiate + PUT + GET serves the bytes with type and length', async () => {
  const before = await stats();
  const { upload_url: up, file_url: url } = await initiate('initiate', 'a.png', 'image/png');
  assert(up.startsWith(SRV.base) && url.startsWith(`${SRV.base}/cdn/`), 'absolute URLs on the fake');
  const data = Buffer.from('PNGDATA-0123456789'.repeat(100));
  const put = await fetch(up, { method: 'PUT', body: data, headers: { 'content-type': 'image/png' } });
  eq(put.status, 200, 'PUT without auth');
  const get = await fetch(url);
  const got = Buffer.from(await get.arrayBuffer());
  eq([get.status, get.headers.get('content-type'), get.headers.get('content-length')], [200, 'image/png', String(data.length)], 'GET');
  assert(got.equals(data), 'same bytes');
  const after = await stats();
  eq([after.uploads - before.uploads, after.upload_bytes - before.upload_bytes], [1, data.length], 'upload counters');
  const listed = (await control('GET', 'uploads')).find((u) => u.url === url);
  eq([listed.size, listed.sha256, listed.content_type], [data.length, createHash('sha256').update(data).digest('hex'), 'image/png'], 'uploads list');
  const badSig = await fetch(up.replace(/token=[0-9a-f]+/, 'token=bad'), { method: 'PUT', body: 'x' });
  eq(badSig.status, 403, 'bad upload token');
});

test('storage: multipart parts answer {partNumber, etag}; complete assembles', async () => {
  const { upload_url: up, file_url: url } = await initiate('initiate-multipart', 'big.bin', 'application/octet-stream');
  const u = new URL(up);
  const parts = [Buffer.alloc(1000, 1), Buffer.alloc(700, 2)];
  const answers = [];
  for (let i = 0; i < parts.length; i++) {
    const r = await fetch(`${u.origin}${u.pathname}/${i + 1}${u.search}`, { method: 'PUT', body: parts[i] });
    eq(r.status, 200, 'part PUT');
    const j = await r.json();
    eq(j.partNumber, i + 1, 'partNumber');
    eq(r.headers.get('etag'), `"${j.etag}"`, 'ETag header too');
    answers.push(j);
  }
  const done = await fetch(`${u.origin}${u.pathname}/complete${u.search}`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ parts: answers }) });
  eq(done.status, 200, 'complete');
  const got = Buffer.from(await (await fetch(url)).arrayBuffer());
  assert(got.equals(Buffer.concat(parts)), 'assembled bytes');
});

// ---------------------------------------------------------------- tests: fault injection

test('fault status: code, Retry-After, timeout type, error_type, times', async () => {
  await addFault({ route: 'submit', action: 'status', code: 503, retry_after: 2, times: 2 });
  const before = (await stats()).jobs_created;
  const a = await call('POST', `/queue/${T2V}`, { body: { prompt: 'x' } });
  eq([a.status, a.statusText, a.headers.get('retry-after')], [503, 'Service Unavailable', '2'], 'first');
  assert(a.headers.get('content-type').includes('application/json') && typeof a.json.detail === 'string', 'json body');
  assert(a.headers.get('x-fal-request-id'), 'request id');
  eq((await call('POST', `/queue/${T2V}`, { body: { prompt: 'x' } })).status, 503, 'second');
  eq((await call('POST', `/queue/${T2V}`, { body: { prompt: `x ${fast}` } })).status, 200, 'third passes');
  eq((await stats()).jobs_created, before + 1, 'faulted submits create no job');
  await addFault({ route: 'status', action: 'status', code: 504, timeout_type: 'user', error_type: 'request_timeout' });
  const t = await call('GET', '/queue/fal-ai/kling-video/requests/x/status');
  eq([t.status, t.headers.get('x-fal-request-timeout-type'), t.headers.get('x-fal-error-type'), t.json.error_type],
    [504, 'user', 'request_timeout', 'request_timeout'], 'user timeout');
});

test('fault status nginx: HTML body, no x-fal-request-id', async () => {
  await addFault({ route: 'result', action: 'status', code: 502, nginx: true });
  const r = await call('GET', '/queue/fal-ai/kling-video/requests/x');
  eq(r.status, 502, 'code');
  assert(r.headers.get('content-type').startsWith('text/html') && r.text.includes('nginx'), 'nginx page');
  eq(r.headers.get('x-fal-request-id'), null, 'no request id');
});

test('fault drop_before on submit: connection dies, no job', async () => {
  const before = (await stats()).jobs_created;
  await addFault({ route: 'submit', action: 'drop_before' });
  const err = await fetchFails(() => call('POST', `/queue/${T2V}`, { body: { prompt: 'x' } }));
  assert(err, 'fetch should fail');
  eq((await stats()).jobs_created, before, 'no job');
});

test('fault drop_after on submit: connection dies, job exists (ambiguous case)', async () => {
  const before = (await stats()).jobs_created;
  await addFault({ route: 'submit', action: 'drop_after' });
  const err = await fetchFails(() => call('POST', `/queue/${T2V}`, { body: { prompt: `ambiguous ${fast}` } }));
  assert(err, 'fetch should fail');
  eq((await stats()).jobs_created, before + 1, 'job created');
  const jobs = await control('GET', 'jobs');
  assert(jobs[jobs.length - 1].input.prompt.startsWith('ambiguous'), 'the job is the dropped submit');
});

test('fault drop_after on cancel: side effect happens', async () => {
  const job = await submit(T2V, { prompt: 'x [[queue_ms=2000]]' });
  await addFault({ route: 'cancel', action: 'drop_after' });
  assert(await fetchFails(() => call('PUT', `/queue/fal-ai/kling-video/requests/${job.request_id}/cancel`)), 'dropped');
  eq((await control('GET', `jobs/${job.request_id}`)).cancelled, true, 'cancelled anyway');
});

test('fault stall: with ms delays, without ms hangs until the client gives up', async () => {
  await addFault({ route: 'status', action: 'stall', ms: 300 });
  const t0 = Date.now();
  const r = await call('GET', '/queue/fal-ai/kling-video/requests/x/status');
  assert(Date.now() - t0 >= 280, `delayed ${Date.now() - t0} ms`);
  eq(r.status, 404, 'then handled normally');
  await addFault({ route: 'status', action: 'stall' });
  const err = await fetchFails(() => call('GET', '/queue/fal-ai/kling-video/requests/x/status', { signal: AbortSignal.timeout(300) }));
  assert(err && /abort|timeout/i.test(err.name + err.message), `expected a client timeout, got ${err}`);
});

test('fault truncate on cdn: full Content-Length, half the body, then the socket dies', async () => {
  const { result } = await runToResult(T2V, { prompt: `t ${fast}` });
  await addFault({ route: 'cdn', action: 'truncate' });
  const before = (await stats()).downloads;
  const res = await fetch(result.json.video.url);
  eq(res.headers.get('content-length'), String(VIDEO_BYTES), 'announced length');
  let got = 0;
  const err = await fetchFails(async () => { for await (const c of res.body) got += c.length; });
  assert(err, 'body read must fail');
  eq(got, Math.floor(VIDEO_BYTES / 2), 'half the body arrived');
  eq((await stats()).downloads, before, 'not counted as a download');
  const ok = await fetch(result.json.video.url);
  eq((await ok.arrayBuffer()).byteLength, VIDEO_BYTES, 'next download is whole');
});

test('fault on stream: drop_after sends one event then dies; status fault answers 500', async () => {
  const job = await submit(T2V, { prompt: 'x [[queue_ms=500]]' });
  await addFault({ route: 'stream', action: 'drop_after' });
  const res = await fetch(`${SRV.base}/queue/fal-ai/kling-video/requests/${job.request_id}/status/stream`, { headers: { authorization: `Key ${KEY}` } });
  let text = '';
  const err = await fetchFails(async () => { for await (const c of res.body) text += Buffer.from(c).toString(); });
  assert(err, 'stream should break');
  eq(text.split('\n\n').filter(Boolean).length, 1, 'one event before the drop');
  await addFault({ route: 'stream', action: 'status', code: 500 });
  const r = await call('GET', `/queue/fal-ai/kling-video/requests/${job.request_id}/status/stream`);
  eq(r.status, 500, 'stream 500');
});

test('fault route any / upload_put / initiate, path_contains, array form, listing', async () => {
  const added = await addFault([{ route: 'initiate', action: 'status', code: 429 }, { route: 'any', action: 'status', code: 502, path_contains: '/nothing-matches' }]);
  eq(added.added, 2, 'array accepted');
  eq((await call('POST', '/rest/storage/upload/initiate', { body: {} })).status, 429, 'initiate fault');
  const pending = await control('GET', 'faults');
  eq(pending.length, 1, 'one pending fault left');
  await control('DELETE', 'faults');
  eq((await control('GET', 'faults')).length, 0, 'cleared');
  const { upload_url: up } = await initiate('initiate', 'f.bin', 'application/octet-stream');
  await addFault({ route: 'upload_put', action: 'status', code: 500 });
  eq((await fetch(up, { method: 'PUT', body: 'x' })).status, 500, 'upload_put fault');
  await addFault({ route: 'any', action: 'status', code: 418 });
  eq((await call('GET', '/queue/fal-ai/kling-video/requests/x/status')).status, 418, 'any');
  const bad = await call('POST', '/_fake/faults', { body: { route: 'nope', action: 'status', code: 500 }, auth: false });
  eq(bad.status, 400, 'bad fault refused');
});

// ---------------------------------------------------------------- tests: control API

test('stats fields, config, reset', async () => {
  const s = await stats();
  for (const k of ['jobs_created', 'requests_total', 'requests', 'uploads', 'upload_bytes', 'downloads', 'cancels', 'auth_missing', 'auth_failed']) {
    assert(k in s, `stats.${k}`);
  }
  for (const k of ['submit', 'status', 'stream', 'result', 'cancel', 'initiate', 'upload_put', 'cdn', 'other']) {
    assert(Number.isInteger(s.requests[k]), `stats.requests.${k}`);
  }
  const cfg = await control('POST', 'config', { run_ms: 20, queue_ms: 0, video_bytes: 77 });
  eq([cfg.run_ms, cfg.queue_ms, cfg.video_bytes], [20, 0, 77], 'config set');
  const { result } = await runToResult(T2V, { prompt: 'cfg' });
  eq(result.json.video.file_size, 77, 'config applies to new jobs');
  await control('POST', 'config', { run_ms: 300, queue_ms: 100, video_bytes: VIDEO_BYTES });
  const hanging = await submit(T2V, { prompt: 'reset me [[queue_ms=5000]]' });
  await control('POST', 'reset');
  const z = await stats();
  eq([z.jobs_created, z.requests_total, z.uploads, z.pending_faults], [0, 0, 0, 0], 'zeroed');
  eq((await control('GET', 'jobs')).length, 0, 'no jobs');
  eq((await statusOf('fal-ai/kling-video', hanging.request_id)).status, 404, 'job gone');
  eq((await stats()).requests.status, 1, 'counting restarts');
});

test('200 jobs with 50 in flight complete promptly', async () => {
  await control('POST', 'reset');
  const total = 200;
  const concurrency = 50;
  let next = 0;
  const t0 = Date.now();
  const worker = async () => {
    while (next < total) {
      next++;
      const job = await submit(T2V, { prompt: 'load [[queue_ms=50]] [[run_ms=100]]' });
      for (;;) {
        const s = await statusOf('fal-ai/kling-video', job.request_id, '?logs=0');
        if (s.json.status === 'COMPLETED') break;
        await sleep(30);
      }
      const r = await resultOf('fal-ai/kling-video', job.request_id);
      await (await fetch(r.json.video.url)).arrayBuffer();
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const elapsed = Date.now() - t0;
  const s = await stats();
  eq([s.jobs_created, s.downloads], [total, total], 'all done');
  // 4 rounds of >= 150 ms each (~1 s here); the bound leaves room for slow, loaded CI machines.
  assert(elapsed < 15000, `took ${elapsed} ms (a server that serialises jobs would need ~30 s)`);
  if (VERBOSE) console.log(`   200 jobs in ${elapsed} ms, max in progress ${s.max_jobs_in_progress}`);
});

test('--exit-with-parent: exits when stdin closes; SIGTERM exits cleanly', async () => {
  const other = await startFakefal(['--port', '0', '--exit-with-parent']);
  other.child.stdin.end();
  eq(await waitExit(other.child, 3000), 0, 'exit on stdin close');
  const third = await startFakefal(['--port', '0']);
  third.child.kill('SIGTERM');
  eq(await waitExit(third.child, 3000), 0, 'exit on SIGTERM');
});

// ---------------------------------------------------------------- main

runTests({
  setup: async () => {
    SRV = await startFakefal(['--port', '0', '--key', KEY, '--queue-ms', '100', '--run-ms', '300',
      '--video-bytes', String(VIDEO_BYTES), '--exit-with-parent']);
  },
  teardown: async () => {
    SRV.child.kill('SIGTERM');
    const code = await waitExit(SRV.child, 3000);
    return code === 0 ? [] : [`fakefal exit code after SIGTERM: ${code}`];
  },
});
