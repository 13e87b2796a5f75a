#!/usr/bin/env node
'use strict';
// fakefal.js — a loopback fake of fal.ai's queue, storage and CDN, for tests.
//
// Written from docs/fal-protocol.md#emulator and docs/endpoints.md. It must stay
// dependency-free (Node >= 18 built-ins only) so that tests can start it without `npm install`.
// See README.md next to this file for the URL layout, the control API and the prompt markers.
//
// Layout of this file:
//   1. CLI and configuration        6. queue routes (submit, status, stream, result, cancel)
//   2. state, stats, helpers        7. storage (initiate, PUT, multipart) and CDN
//   3. HTTP response helpers        8. control API (/_fake/...)
//   4. Kling input validation       9. request pipeline (routing, faults, auth)
//   5. job lifecycle + webhooks    10. startup and shutdown

const http = require('http');
const http2 = require('http2');
const https = require('https');
const crypto = require('crypto');
const fs = require('fs');
const { URL } = require('url');

// ---------------------------------------------------------------------------------------------
// 1. CLI and configuration
// ---------------------------------------------------------------------------------------------

const USAGE = `usage: node fakefal.js [--port 0] [--port-file FILE] [--queue-ms 100] [--run-ms 300]
                        [--key ID:SECRET] [--video-bytes 65536] [--log FILE] [--exit-with-parent]
                        [--tls-cert CERT.pem --tls-key KEY.pem [--http2]]`;

function die(msg) {
  process.stderr.write(`fakefal: ${msg}\n${USAGE}\n`);
  process.exit(2);
}

function toNonNegInt(text, flag) {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0) die(`${flag} needs a non-negative integer, got '${text}'`);
  return n;
}

function parseArgs(argv) {
  const opts = {
    port: 0, portFile: null, queueMs: 100, runMs: 300, key: null,
    videoBytes: 65536, log: null, exitWithParent: false, tlsCert: null, tlsKey: null, http2: false,
  };
  for (let i = 0; i < argv.length; i++) {
    let flag = argv[i];
    let inline = null;
    const eq = flag.indexOf('=');
    if (flag.startsWith('--') && eq > 0) { inline = flag.slice(eq + 1); flag = flag.slice(0, eq); }
    const value = () => {
      if (inline !== null) return inline;
      if (i + 1 >= argv.length) die(`missing value for ${flag}`);
      return argv[++i];
    };
    switch (flag) {
      case '--port': opts.port = toNonNegInt(value(), flag); break;
      case '--port-file': opts.portFile = value(); break;
      case '--queue-ms': opts.queueMs = toNonNegInt(value(), flag); break;
      case '--run-ms': opts.runMs = toNonNegInt(value(), flag); break;
      case '--key': opts.key = value(); break;
      case '--video-bytes': opts.videoBytes = toNonNegInt(value(), flag); break;
      case '--log': opts.log = value(); break;
      case '--exit-with-parent': opts.exitWithParent = true; break;
      case '--tls-cert': opts.tlsCert = value(); break;
      case '--tls-key': opts.tlsKey = value(); break;
      case '--http2': opts.http2 = true; break;
      case '-h': case '--help': process.stdout.write(USAGE + '\n'); process.exit(0); break;
      default: die(`unknown argument '${argv[i]}'`);
    }
  }
  if (!opts.tlsCert !== !opts.tlsKey) die('--tls-cert and --tls-key go together');
  if (opts.http2 && !opts.tlsCert) die('--http2 needs --tls-cert and --tls-key (HTTP/2 is offered by TLS ALPN)');
  return opts;
}

const OPTS = parseArgs(process.argv.slice(2));

// Runtime knobs; POST /_fake/config changes them (new jobs only).
const config = {
  queue_ms: OPTS.queueMs,
  run_ms: OPTS.runMs,
  video_bytes: OPTS.videoBytes,
  log_lines: 4,             // "step k/n" lines emitted during IN_PROGRESS
  keepalive_ms: 15000,      // SSE ':' comment interval (fal uses 15 s)
  webhook_retries: 3,       // extra attempts after a failed webhook delivery
  webhook_retry_ms: 200,    // delay between webhook attempts (fal: 10 tries over 2 h)
};
const CONFIG_LIMITS = { log_lines: 1000, keepalive_ms: 3600000 };

// setTimeout cannot wait longer than 2^31-1 ms; bigger values (e.g. "hang forever") are clamped.
const MAX_TIMER_MS = 2147483647;
const JSON_BODY_LIMIT = 64 * 1024 * 1024;
const UPLOAD_BODY_LIMIT = 512 * 1024 * 1024;
const CACHED_VIDEO_LIMIT = 1024 * 1024;   // videos up to this size are generated once and kept
const VIDEO_CHUNK = 64 * 1024;            // larger ones are streamed in chunks of this size

let BASE = 'http://127.0.0.1:0';          // set once listening; every absolute URL is built on it

// ---------------------------------------------------------------------------------------------
// 2. State, stats and small helpers
// ---------------------------------------------------------------------------------------------

const ROUTES = ['submit', 'status', 'stream', 'result', 'cancel', 'initiate', 'upload_put',
  'upload_complete', 'cdn', 'run', 'token', 'other'];
const FAULT_ROUTES = new Set([...ROUTES, 'any']);
const FAULT_ACTIONS = new Set(['status', 'drop_before', 'drop_after', 'stall', 'truncate']);

function newStats() {
  const requests = {};
  for (const r of ROUTES) requests[r] = 0;
  return {
    jobs_created: 0, requests_total: 0, requests,
    uploads: 0, upload_bytes: 0, upload_parts: 0,
    downloads: 0, download_bytes: 0, file_downloads: 0,
    cancels: 0, auth_missing: 0, auth_failed: 0, faults_fired: 0,
    webhooks_sent: 0, webhooks_failed: 0,
    open_requests: 0, max_open_requests: 0, max_jobs_in_progress: 0,
    tls_handshakes: 0, tls_resumed: 0,
    http_versions: {},  // requests by the HTTP version they came in ("1.1", "2.0")
  };
}

const state = {
  jobs: new Map(),      // request_id -> job, in creation order
  queued: new Map(),    // request_id -> job still IN_QUEUE; insertion order = queue order
  inProgress: 0,
  files: new Map(),     // file id -> stored upload
  faults: [],
  stats: newStats(),
  videoCache: new Map(),
  sockets: new Set(),
};

const nowMs = () => Date.now();
const uuid = () => crypto.randomUUID();
const randHex = (n) => crypto.randomBytes(n).toString('hex');
const sha256 = typeof crypto.hash === 'function'
  ? (data) => crypto.hash('sha256', data, 'buffer')
  : (data) => crypto.createHash('sha256').update(data).digest();
const codePoints = (s) => [...s].length;   // fal validates with Python len(), i.e. code points
const clampTimer = (ms) => Math.min(Math.max(0, ms), MAX_TIMER_MS);

function isPlainObject(v) {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function parseBoolParam(v) {
  // JS sends logs=1|0, Python logs=true|false, fal.apps logs=1|0.
  return v === '1' || (typeof v === 'string' && v.toLowerCase() === 'true');
}

let logStream = null;
function logLine(text) {
  if (logStream) logStream.write(`${new Date().toISOString()} ${text}\n`);
}

// ---------------------------------------------------------------------------------------------
// 3. HTTP response helpers
// ---------------------------------------------------------------------------------------------

// Node has no phrase for 499; the JS client uses the phrase as its error message.
const EXTRA_REASONS = { 499: 'Client Closed Request' };
const reasonPhrase = (code) => http.STATUS_CODES[code] || EXTRA_REASONS[code] || 'Unknown';

// Over HTTP/2 (--http2) one request is one stream of a shared connection: a drop resets that
// stream (RST_STREAM, INTERNAL_ERROR, not REFUSED_STREAM, which would tell the client that
// nothing was processed) and leaves the other requests on the connection alone.
const isHttp2 = (req) => req.httpVersionMajor === 2;

function destroySocket(ctx) {
  ctx.dropped = true;
  if (isHttp2(ctx.req)) ctx.req.stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
  else ctx.req.socket.destroy();
}

// HTTP/2 has no reason phrase (Node warns when given one) and no connection headers.
function writeHead(ctx, code, headers) {
  if (isHttp2(ctx.req)) ctx.res.writeHead(code, headers);
  else ctx.res.writeHead(code, reasonPhrase(code), headers);
}

// Sends a complete response, honouring drop_after / truncate faults of this request.
function sendBuffer(ctx, code, headers, body) {
  const { res } = ctx;
  if (ctx.fault && ctx.fault.action === 'drop_after') return destroySocket(ctx);
  if (!headers['x-fal-request-id'] && !ctx.noRequestId) headers['x-fal-request-id'] = ctx.falRequestId;
  headers['content-length'] = String(body.length);
  if (res.destroyed || res.headersSent) return;
  writeHead(ctx, code, headers);
  if (ctx.fault && ctx.fault.action === 'truncate') {
    // Full Content-Length announced, half of the body sent, then the connection dies.
    res.write(body.subarray(0, Math.floor(body.length / 2)), () => destroySocket(ctx));
    return;
  }
  res.end(ctx.method === 'HEAD' ? undefined : body);
}

function sendJson(ctx, code, obj, extraHeaders = {}) {
  const headers = { 'content-type': 'application/json', ...extraHeaders };
  sendBuffer(ctx, code, headers, Buffer.from(JSON.stringify(obj)));
}

const detail = (ctx, code, text, extra = {}) => sendJson(ctx, code, { detail: text }, extra);

// An infrastructure error in fal's flat shape, with the matching X-Fal-Error-Type header.
function sendErrorType(ctx, code, text, errorType, extraHeaders = {}) {
  sendJson(ctx, code, { detail: text, error_type: errorType },
    { 'x-fal-error-type': errorType, ...extraHeaders });
}

// ---------------------------------------------------------------------------------------------
// 4. Kling input validation (as fal's pydantic models would answer; independent of klingrun)
// ---------------------------------------------------------------------------------------------

const KLING_APP = 'fal-ai/kling-video';
const V3_DURATIONS = Array.from({ length: 13 }, (_, i) => String(i + 3));   // "3".."15"
const OLD_DURATIONS = ['5', '10'];
const ASPECT_RATIOS = ['16:9', '9:16', '1:1'];
const PROMPT_MAX = 2500;
const SHOT_PROMPT_MAX = 512;

// Endpoint path (after fal-ai/kling-video/) -> schema facts used by the checks below.
function klingEndpoint(family, kind, startField) {
  const modern = family === 'v3' || family === 'o3';
  return {
    family, kind, startField,
    durations: modern ? V3_DURATIONS : OLD_DURATIONS,
    multiPrompt: modern,
    aspectRatio: kind !== 'i2v',
  };
}
const KLING_ENDPOINTS = {};
for (const tier of ['pro', 'standard']) {
  KLING_ENDPOINTS[`v3/${tier}/text-to-video`] = klingEndpoint('v3', 't2v', null);
  KLING_ENDPOINTS[`v3/${tier}/image-to-video`] = klingEndpoint('v3', 'i2v', 'start_image_url');
  KLING_ENDPOINTS[`o3/${tier}/text-to-video`] = klingEndpoint('o3', 't2v', null);
  KLING_ENDPOINTS[`o3/${tier}/image-to-video`] = klingEndpoint('o3', 'i2v', 'image_url');
  KLING_ENDPOINTS[`o3/${tier}/reference-to-video`] = klingEndpoint('o3', 'r2v', null);
}
KLING_ENDPOINTS['v2.6/pro/text-to-video'] = klingEndpoint('v2.6', 't2v', null);
KLING_ENDPOINTS['v2.6/pro/image-to-video'] = klingEndpoint('v2.6', 'i2v', 'start_image_url');
KLING_ENDPOINTS['v2.5-turbo/pro/text-to-video'] = klingEndpoint('v2.5-turbo', 't2v', null);
KLING_ENDPOINTS['v2.5-turbo/pro/image-to-video'] = klingEndpoint('v2.5-turbo', 'i2v', 'image_url');

const has = (input, key) => input[key] !== undefined && input[key] !== null;   // null = absent
const fieldError = (loc, msg, type) => ({ loc: ['body', ...loc], msg, type });
const enumMsg = (values) =>
  `Input should be ${values.slice(0, -1).map((v) => `'${v}'`).join(', ')} or '${values[values.length - 1]}'`;

function checkString(errors, loc, value, { max, min = 1, maxMsg } = {}) {
  if (typeof value !== 'string') {
    errors.push(fieldError(loc, 'Input should be a valid string', 'string_type'));
  } else if (codePoints(value) < min) {
    errors.push(fieldError(loc, `String should have at least ${min} character`, 'string_too_short'));
  } else if (max !== undefined && codePoints(value) > max) {
    errors.push(maxMsg ? fieldError(loc, maxMsg, 'value_error')
      : fieldError(loc, `String should have at most ${max} characters`, 'string_too_long'));
  }
}

function checkEnum(errors, loc, value, values) {
  if (typeof value !== 'string') errors.push(fieldError(loc, 'Input should be a valid string', 'string_type'));
  else if (!values.includes(value)) errors.push(fieldError(loc, enumMsg(values), 'enum'));
}

function checkUrl(errors, loc, value) {
  if (typeof value !== 'string') return errors.push(fieldError(loc, 'Input should be a valid string', 'string_type'));
  if (!/^(https?:\/\/[^\s]+|data:[^,]*,.*)$/s.test(value)) {
    errors.push(fieldError(loc, 'Input should be a valid URL', 'url_parsing'));
  }
}

function checkMultiPrompt(errors, shots, spec) {
  if (!Array.isArray(shots)) return errors.push(fieldError(['multi_prompt'], 'Input should be a valid list', 'list_type'));
  if (shots.length === 0) {
    return errors.push(fieldError(['multi_prompt'],
      'List should have at least 1 item after validation, not 0', 'too_short'));
  }
  shots.forEach((shot, i) => {
    const loc = ['multi_prompt', i];
    if (!isPlainObject(shot)) return errors.push(fieldError(loc, 'Input should be a valid dictionary', 'dict_type'));
    if (!has(shot, 'prompt')) errors.push(fieldError([...loc, 'prompt'], 'Field required', 'missing'));
    else checkString(errors, [...loc, 'prompt'], shot.prompt,
      { max: SHOT_PROMPT_MAX, maxMsg: 'Prompt must not exceed 512 characters.' });
    if (has(shot, 'duration')) checkEnum(errors, [...loc, 'duration'], shot.duration, spec.durations);
  });
}

function checkPrompts(errors, input, spec) {
  const hasPrompt = has(input, 'prompt');
  const hasMulti = spec.multiPrompt && has(input, 'multi_prompt');
  if (spec.multiPrompt && hasPrompt === hasMulti) {
    errors.push(fieldError([], 'Either prompt or multi_prompt must be provided, but not both.', 'value_error'));
  } else if (!spec.multiPrompt && !hasPrompt) {
    errors.push(fieldError(['prompt'], 'Field required', 'missing'));
  }
  if (hasPrompt) checkString(errors, ['prompt'], input.prompt, { max: PROMPT_MAX });
  if (hasMulti) checkMultiPrompt(errors, input.multi_prompt, spec);
  if (has(input, 'negative_prompt')) checkString(errors, ['negative_prompt'], input.negative_prompt, { max: PROMPT_MAX, min: 0 });
}

function checkOptionalFields(errors, input, spec) {
  if (has(input, 'duration')) checkEnum(errors, ['duration'], input.duration, spec.durations);
  if (spec.aspectRatio && has(input, 'aspect_ratio')) checkEnum(errors, ['aspect_ratio'], input.aspect_ratio, ASPECT_RATIOS);
  if (has(input, 'generate_audio') && typeof input.generate_audio !== 'boolean') {
    errors.push(fieldError(['generate_audio'], 'Input should be a valid boolean', 'bool_type'));
  }
  if (has(input, 'cfg_scale')) {
    const v = input.cfg_scale;
    if (typeof v !== 'number') errors.push(fieldError(['cfg_scale'], 'Input should be a valid number', 'float_type'));
    else if (v < 0) errors.push(fieldError(['cfg_scale'], 'Input should be greater than or equal to 0', 'greater_than_equal'));
    else if (v > 1) errors.push(fieldError(['cfg_scale'], 'Input should be less than or equal to 1', 'less_than_equal'));
  }
  for (const f of ['start_image_url', 'image_url', 'end_image_url', 'tail_image_url']) {
    if (has(input, f)) checkUrl(errors, [f], input[f]);
  }
}

// Returns a list of pydantic-style field errors ([] when the input is acceptable).
// Unknown fields are ignored, as pydantic models do by default.
function validateKlingInput(spec, input) {
  if (!isPlainObject(input)) return [fieldError([], 'Input should be a valid dictionary', 'dict_type')];
  const errors = [];
  if (spec.startField && !has(input, spec.startField)) {
    errors.push(fieldError([spec.startField], 'Field required', 'missing'));
  }
  checkPrompts(errors, input, spec);
  checkOptionalFields(errors, input, spec);
  return errors;
}

// ---------------------------------------------------------------------------------------------
// 5. Job lifecycle: IN_QUEUE -> IN_PROGRESS -> COMPLETED (never anything else), plus webhooks
// ---------------------------------------------------------------------------------------------

// error_type -> [typical HTTP code, message] (docs/fal-protocol.md#errors)
const ERROR_TYPES = {
  request_timeout: [504, 'Request timed out'],
  startup_timeout: [504, 'Runner startup timed out'],
  runner_scheduling_failure: [503, 'Runner scheduling failure'],
  runner_connection_timeout: [503, 'Runner connection timed out'],
  runner_disconnected: [503, 'Runner disconnected'],
  runner_connection_refused: [503, 'Runner connection refused'],
  runner_connection_error: [503, 'Runner connection error'],
  runner_incomplete_response: [502, 'Runner returned an incomplete response'],
  runner_server_error: [500, 'Runner server error'],
  internal_error: [500, 'Internal error'],
  client_disconnected: [499, 'Client disconnected'],
  client_cancelled: [499, 'Request cancelled by the client'],
  bad_request: [400, 'Bad request'],
};
const CODE_TO_ERROR_TYPE = { 400: 'bad_request', 499: 'client_disconnected', 500: 'internal_error',
  502: 'runner_incomplete_response', 503: 'runner_disconnected', 504: 'request_timeout' };

// Outcome = what the result call answers once the job is COMPLETED (+ error fields for status).
function infraOutcome(errorType, extraHeaders = {}) {
  const [code, text] = ERROR_TYPES[errorType];
  return {
    code, body: { detail: text, error_type: errorType },
    headers: { 'x-fal-error-type': errorType, ...extraHeaders },
    error: text, error_type: errorType,
  };
}

function validationOutcome(fieldErrors) {
  return {
    code: 422, body: { detail: fieldErrors }, headers: {},
    error: 'Invalid status code: 422', error_type: 'validation_error',
  };
}

function successOutcome(job) {
  const output = {
    video: {
      url: `${BASE}/cdn/videos/${job.request_id}.mp4`,
      content_type: 'video/mp4', file_name: 'output.mp4', file_size: job.video_bytes,
    },
  };
  return { code: 200, body: output, headers: {}, error: null, error_type: null };
}

// Prompt markers: [[queue_ms=N]] [[run_ms=N]] [[video_bytes=N]] [[fail:X]], searched in every
// string of the input (normally the prompt).
function parseMarkers(input) {
  const text = JSON.stringify(input === undefined ? null : input);
  const markers = {};
  for (const m of text.matchAll(/\[\[(queue_ms|run_ms|video_bytes)=(\d+)\]\]/g)) markers[m[1]] = Number(m[2]);
  const fail = /\[\[fail:([a-z_0-9]+)\]\]/.exec(text);
  if (fail) markers.fail = fail[1];
  return markers;
}

// The outcome a [[fail:X]] marker forces: 422, runner, an error_type name, or an HTTP code.
function forcedFailure(name) {
  if (name === '422') {
    return validationOutcome([fieldError(['prompt'], 'Forced validation failure ([[fail:422]] marker)', 'value_error')]);
  }
  if (name === 'runner') return infraOutcome('runner_disconnected');
  if (ERROR_TYPES[name]) return infraOutcome(name);
  if (CODE_TO_ERROR_TYPE[name]) return infraOutcome(CODE_TO_ERROR_TYPE[name]);
  return null;
}

function appUrls(job) {
  const base = `${BASE}/queue/${job.app_id}/requests/${job.request_id}`;
  return { response_url: base, status_url: `${base}/status`, cancel_url: `${base}/cancel` };
}

// Status JSON as the polling endpoint returns it; `logs` is the array to report or null.
function statusBody(job, logs) {
  const common = { request_id: job.request_id, ...appUrls(job) };
  if (job.state === 'IN_QUEUE') return { status: 'IN_QUEUE', queue_position: job.queue_position, ...common };
  if (job.state === 'IN_PROGRESS') return { status: 'IN_PROGRESS', logs, ...common };
  const body = { status: 'COMPLETED', logs, metrics: job.metrics, ...common };
  if (job.outcome.error) { body.error = job.outcome.error; body.error_type = job.outcome.error_type; }
  return body;
}

function notify(job) {
  for (const listener of job.listeners) listener();
}

// Queue positions are "jobs ahead of me still queued": recomputed in one pass whenever the queue
// shrinks, so positions never increase and status reads stay O(1).
function refreshQueuePositions() {
  let pos = 0;
  for (const job of state.queued.values()) {
    const changed = job.queue_position !== pos;
    job.queue_position = pos++;
    if (changed && job.listeners.size) notify(job);
  }
}

function leaveQueue(job) {
  if (state.queued.delete(job.request_id)) refreshQueuePositions();
}

function clearJobTimers(job) {
  for (const t of Object.values(job.timers)) clearTimeout(t);
  job.timers = {};
}

function createJob({ endpoint, appId, spec, input, headers, webhook, mode }) {
  const markers = parseMarkers(input);
  const job = {
    request_id: uuid(), endpoint, app_id: appId, input, headers, webhook, mode,
    state: 'IN_QUEUE', queue_position: state.queued.size,
    created_ms: nowMs(), started_ms: null, completed_ms: null, cancelled: false,
    queue_ms: mode === 'sync' ? 0 : (markers.queue_ms ?? config.queue_ms),
    run_ms: markers.run_ms ?? config.run_ms,
    video_bytes: markers.video_bytes ?? config.video_bytes,
    logs: [], metrics: null, outcome: null, planned: null,
    listeners: new Set(), timers: {}, webhook_attempts: 0, webhook_status: null,
  };
  // Decide now what the runner will end with, so the timers only have to apply it.
  const fieldErrors = spec ? validateKlingInput(spec, input) : [];
  job.planned = fieldErrors.length ? validationOutcome(fieldErrors)
    : (markers.fail ? forcedFailure(markers.fail) : null);
  state.jobs.set(job.request_id, job);
  state.queued.set(job.request_id, job);
  state.stats.jobs_created++;
  job.timers.queue = setTimeout(() => startJob(job), clampTimer(job.queue_ms));
  armStartDeadline(job);
  return job;
}

// x-fal-request-timeout: if the job has not started within N seconds it ends as a user timeout.
function armStartDeadline(job) {
  const seconds = Number(job.headers['x-fal-request-timeout']);
  if (!(seconds > 0)) return;
  job.timers.deadline = setTimeout(() => {
    if (job.state === 'IN_QUEUE') finishJob(job, infraOutcome('request_timeout', { 'x-fal-request-timeout-type': 'user' }));
  }, clampTimer(seconds * 1000));
}

function startJob(job) {
  if (job.state !== 'IN_QUEUE') return;
  leaveQueue(job);
  job.state = 'IN_PROGRESS';
  job.started_ms = nowMs();
  state.inProgress++;
  state.stats.max_jobs_in_progress = Math.max(state.stats.max_jobs_in_progress, state.inProgress);
  scheduleLog(job, 1);
  job.timers.run = setTimeout(() => finishJob(job, job.planned || successOutcome(job)), clampTimer(job.run_ms));
  notify(job);
}

// Emits "step k/n" now and schedules the next line, spreading n lines over run_ms.
function scheduleLog(job, k) {
  const n = config.log_lines;
  if (k > n || job.state !== 'IN_PROGRESS') return;
  job.logs.push({ message: `step ${k}/${n}`, level: 'INFO', source: 'USER', timestamp: new Date().toISOString() });
  notify(job);
  if (k < n) job.timers.log = setTimeout(() => scheduleLog(job, k + 1), clampTimer(job.run_ms / n));
}

function finishJob(job, outcome) {
  if (job.state === 'COMPLETED') return;
  clearJobTimers(job);
  if (job.state === 'IN_QUEUE') leaveQueue(job);
  if (job.state === 'IN_PROGRESS') state.inProgress--;
  job.state = 'COMPLETED';
  job.completed_ms = nowMs();
  job.outcome = outcome;
  job.metrics = job.started_ms === null ? {} : { inference_time: (job.completed_ms - job.started_ms) / 1000 };
  notify(job);
  if (job.webhook) deliverWebhook(job);
}

function cancelJob(job) {
  job.cancelled = true;
  finishJob(job, infraOutcome('client_cancelled'));
}

// --- webhooks: signed with an Ed25519 key of our own, published as JWKS -----------------------

const WEBHOOK_KEYS = crypto.generateKeyPairSync('ed25519');
const WEBHOOK_KID = randHex(8);
const WEBHOOK_USER_ID = 'fakefal-user';

function jwks() {
  const jwk = WEBHOOK_KEYS.publicKey.export({ format: 'jwk' });
  return { keys: [{ ...jwk, kid: WEBHOOK_KID, use: 'sig', alg: 'EdDSA' }] };
}

function webhookPayload(job) {
  const base = { request_id: job.request_id, gateway_request_id: job.request_id };
  if (job.outcome.code === 200) return { ...base, status: 'OK', payload: job.outcome.body };
  return { ...base, status: 'ERROR', error: `Invalid status code: ${job.outcome.code}`, payload: job.outcome.body };
}

function signedWebhookHeaders(job, body) {
  const timestamp = String(Math.floor(nowMs() / 1000));
  const message = [job.request_id, WEBHOOK_USER_ID, timestamp,
    crypto.createHash('sha256').update(body).digest('hex')].join('\n');
  return {
    'content-type': 'application/json',
    'content-length': String(body.length),
    'x-fal-webhook-request-id': job.request_id,
    'x-fal-webhook-user-id': WEBHOOK_USER_ID,
    'x-fal-webhook-timestamp': timestamp,
    'x-fal-webhook-signature': crypto.sign(null, Buffer.from(message), WEBHOOK_KEYS.privateKey).toString('hex'),
  };
}

// Only plain-http loopback targets are allowed: this fake must never talk to the outside.
function deliverWebhook(job) {
  let target;
  try { target = new URL(job.webhook); } catch { target = null; }
  if (!target || target.protocol !== 'http:' || !['127.0.0.1', 'localhost', '[::1]'].includes(target.hostname)) {
    job.webhook_status = 'refused: only http://127.0.0.1 webhooks are delivered';
    return;
  }
  const body = Buffer.from(JSON.stringify(webhookPayload(job)));
  const attempt = () => {
    job.webhook_attempts++;
    const req = http.request(target, { method: 'POST', headers: signedWebhookHeaders(job, body), timeout: 15000 }, (res) => {
      res.resume();
      const ok = res.statusCode >= 200 && res.statusCode < 300;
      job.webhook_status = res.statusCode;
      if (ok) state.stats.webhooks_sent++;
      else retry();
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (e) => { job.webhook_status = `error: ${e.message}`; retry(); });
    req.end(body);
  };
  const retry = () => {
    if (job.webhook_attempts > config.webhook_retries) { state.stats.webhooks_failed++; return; }
    setTimeout(attempt, config.webhook_retry_ms);
  };
  attempt();
}

// ---------------------------------------------------------------------------------------------
// 6. Queue routes
// ---------------------------------------------------------------------------------------------

const NAMESPACES = new Set(['workflows', 'comfy']);

// Number of leading path segments that form the app id (docs/fal-protocol.md#ids).
const appIdLength = (segs) => (NAMESPACES.has(segs[0]) ? 3 : 2);

// Headers kept per job for tests: every x-fal-* plus the user agent.
function keptHeaders(req) {
  const kept = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (name.startsWith('x-fal-') || name === 'user-agent') kept[name] = value;
  }
  return kept;
}

// Parses a JSON request body; answers 422 itself and returns undefined when it is not JSON.
function parseJsonBody(ctx) {
  if (ctx.body.length === 0) return { value: {} };
  try {
    return { value: JSON.parse(ctx.body.toString('utf8')) };
  } catch (e) {
    sendJson(ctx, 422, { detail: [{ loc: ['body'], msg: `Invalid JSON: ${e.message}`, type: 'json_invalid' }] });
    return undefined;
  }
}

// Shared by queue submit and sync run: resolves the endpoint, checks headers, parses the input.
function prepareJob(ctx, segs, mode) {
  const appLen = appIdLength(segs);
  if (segs.length < appLen) {
    detail(ctx, 404, `Invalid app id '${segs.join('/')}'. Must be in the format <appOwner>/<appId>`);
    return null;
  }
  const endpoint = segs.join('/');
  const appId = segs.slice(0, appLen).join('/');
  let spec = null;
  if (appId === KLING_APP) {
    spec = KLING_ENDPOINTS[segs.slice(appLen).join('/')];
    if (!spec) { detail(ctx, 404, `Application endpoint '${endpoint}' not found`); return null; }
  }
  const timeout = ctx.req.headers['x-fal-request-timeout'];
  if (timeout !== undefined && !(Number(timeout) > 0.1)) {
    sendErrorType(ctx, 400, `Invalid x-fal-request-timeout '${timeout}': must be a number of seconds > 0.1`, 'bad_request');
    return null;
  }
  const parsed = parseJsonBody(ctx);
  if (!parsed) return null;
  const webhook = ctx.url.searchParams.get('fal_webhook');
  return { endpoint, appId, spec, input: parsed.value, headers: keptHeaders(ctx.req), webhook, mode };
}

function handleSubmit(ctx, { segs }) {
  const params = prepareJob(ctx, segs, 'queue');
  if (!params) return;
  const job = createJob(params);
  ctx.falRequestId = job.request_id;
  const body = { status: 'IN_QUEUE', request_id: job.request_id, ...appUrls(job), queue_position: job.queue_position };
  if (job.webhook) body.gateway_request_id = job.request_id;
  sendJson(ctx, 200, body);
}

// Sync run (https://fal.run/<endpoint>): no queue; answers with the result once the run ends.
function handleRun(ctx, { segs }) {
  const params = prepareJob(ctx, segs, 'sync');
  if (!params) return;
  const job = createJob(params);
  ctx.falRequestId = job.request_id;
  const onChange = () => {
    if (job.state !== 'COMPLETED') return;
    job.listeners.delete(onChange);
    sendOutcome(ctx, job);
  };
  job.listeners.add(onChange);
  ctx.res.on('close', () => job.listeners.delete(onChange));
}

function sendOutcome(ctx, job) {
  sendJson(ctx, job.outcome.code, job.outcome.body, { ...job.outcome.headers });
}

// Finds the job of a status/result/cancel/stream call; answers 404 itself when there is none.
function lookupJob(ctx, appId, requestId, notFoundBody) {
  const job = state.jobs.get(requestId);
  if (job && job.app_id === appId) {
    ctx.falRequestId = job.request_id;
    return job;
  }
  let why = `Request '${requestId}' not found`;
  if (job) why += ` for app '${appId}' (it belongs to '${job.app_id}'; status/result/cancel URLs use the app id, not the endpoint path)`;
  sendJson(ctx, 404, { ...notFoundBody, detail: why });
  return null;
}

function handleStatus(ctx, { appId, requestId }) {
  const job = lookupJob(ctx, appId, requestId, {});
  if (!job) return;
  const logs = parseBoolParam(ctx.url.searchParams.get('logs')) ? job.logs.slice() : null;
  sendJson(ctx, job.state === 'COMPLETED' ? 200 : 202, statusBody(job, logs));
}

function handleResult(ctx, { appId, requestId }) {
  const job = lookupJob(ctx, appId, requestId, {});
  if (!job) return;
  if (job.state !== 'COMPLETED') return detail(ctx, 400, 'Request is still in progress');
  sendOutcome(ctx, job);
}

function handleCancel(ctx, { appId, requestId }) {
  const job = lookupJob(ctx, appId, requestId, { status: 'NOT_FOUND' });
  if (!job) return;
  if (job.state === 'COMPLETED') return sendJson(ctx, 400, { status: 'ALREADY_COMPLETED' });
  cancelJob(job);
  state.stats.cancels++;
  sendJson(ctx, 202, { status: 'CANCELLATION_REQUESTED' });
}

// SSE: the current state at once, one event per change, keep-alive comments, and the body is
// closed right after the COMPLETED event. With logs on, each event carries only the log lines
// that are new since the previous event (the JS client accumulates them).
function handleStream(ctx, { appId, requestId }) {
  const job = lookupJob(ctx, appId, requestId, {});
  if (!job) return;
  const { req, res } = ctx;
  if (res.destroyed || req.socket.destroyed) return;   // client left while a stall fault held us
  const withLogs = parseBoolParam(ctx.url.searchParams.get('logs'));
  let lastSignature = null;
  let logsSent = 0;
  writeHead(ctx, 200, {
    'content-type': 'text/event-stream', 'cache-control': 'no-cache',
    ...(isHttp2(req) ? {} : { connection: 'keep-alive' }), 'x-fal-request-id': job.request_id,
  });
  const keepAlive = setInterval(() => res.write(': keep-alive\n\n'), config.keepalive_ms);
  const cleanup = () => { clearInterval(keepAlive); job.listeners.delete(push); };
  function push() {
    const signature = `${job.state}|${job.queue_position}|${withLogs ? job.logs.length : ''}`;
    if (signature === lastSignature) return;
    lastSignature = signature;
    const logs = withLogs ? job.logs.slice(logsSent) : null;
    logsSent = job.logs.length;
    res.write(`data: ${JSON.stringify(statusBody(job, logs))}\n\n`);
    if (ctx.fault && (ctx.fault.action === 'drop_after' || ctx.fault.action === 'truncate')) {
      cleanup();
      res.write('', () => destroySocket(ctx));   // one event reached the client, then the line dies
    } else if (job.state === 'COMPLETED') {
      cleanup();
      res.end();
    }
  }
  job.listeners.add(push);
  req.on('close', cleanup);
  res.on('close', cleanup);
  push();
}

// ---------------------------------------------------------------------------------------------
// 7. Storage (rest host initiate, signed PUT, multipart) and the CDN
// ---------------------------------------------------------------------------------------------

function safeFileName(name) {
  const base = String(name || 'upload.bin').split(/[\\/]/).pop();
  return base.length ? base : 'upload.bin';
}

function handleInitiate(ctx, { multipart }) {
  const parsed = parseJsonBody(ctx);
  if (!parsed) return;
  const input = isPlainObject(parsed.value) ? parsed.value : {};
  const file = {
    id: randHex(12), token: randHex(16), multipart,
    file_name: safeFileName(input.file_name),
    content_type: typeof input.content_type === 'string' ? input.content_type : 'application/octet-stream',
    lifecycle: ctx.req.headers['x-fal-object-lifecycle'] || null,
    storage_type: ctx.url.searchParams.get('storage_type'),
    parts: new Map(), data: null, sha256: null, created_ms: nowMs(),
  };
  state.files.set(file.id, file);
  sendJson(ctx, 200, {
    upload_url: `${BASE}/upload/${file.id}?token=${file.token}`,
    file_url: fileUrl(file),
  });
}

const fileUrl = (file) => `${BASE}/cdn/files/${file.id}/${encodeURIComponent(file.file_name)}`;

// Finds the pending upload behind an upload URL; answers 403/404 itself when it is not valid.
function lookupUpload(ctx, fileId) {
  const file = state.files.get(fileId);
  if (!file) { detail(ctx, 404, 'Unknown upload'); return null; }
  if (ctx.url.searchParams.get('token') !== file.token) { detail(ctx, 403, 'Invalid upload signature'); return null; }
  return file;
}

function storeFile(file, data) {
  file.data = data;
  file.sha256 = crypto.createHash('sha256').update(data).digest('hex');
  file.stored_ms = nowMs();
  state.stats.uploads++;
  state.stats.upload_bytes += data.length;
}

function handleUploadPut(ctx, { fileId, part }) {
  const file = lookupUpload(ctx, fileId);
  if (!file) return;
  if (part === null) {
    if (file.multipart) return detail(ctx, 400, 'Multipart upload: PUT parts to <upload_url path>/<n>');
    file.content_type = ctx.req.headers['content-type'] || file.content_type;
    storeFile(file, ctx.body);
    return sendJson(ctx, 200, { file_url: fileUrl(file), size: ctx.body.length });
  }
  if (!file.multipart) return detail(ctx, 400, 'Not a multipart upload');
  if (!(part >= 1 && part <= 10000)) return detail(ctx, 400, `Invalid part number '${part}'`);
  const etag = crypto.createHash('md5').update(ctx.body).digest('hex');
  file.parts.set(part, { data: ctx.body, etag });
  state.stats.upload_parts++;
  // The JS client reads partNumber/etag from the JSON body, Python's CDN flow from the header.
  sendJson(ctx, 200, { partNumber: part, etag }, { etag: `"${etag}"` });
}

function handleUploadComplete(ctx, { fileId }) {
  const file = lookupUpload(ctx, fileId);
  if (!file) return;
  if (!file.multipart) return detail(ctx, 400, 'Not a multipart upload');
  const parsed = parseJsonBody(ctx);
  if (!parsed) return;
  const parts = isPlainObject(parsed.value) && Array.isArray(parsed.value.parts) ? parsed.value.parts : null;
  if (!parts || parts.length === 0) return detail(ctx, 400, 'Body must be {"parts": [{partNumber, etag}, ...]}');
  const ordered = [...parts].sort((a, b) => a.partNumber - b.partNumber);
  const buffers = [];
  for (const p of ordered) {
    const stored = file.parts.get(p.partNumber);
    if (!stored) return detail(ctx, 400, `Part ${p.partNumber} was never uploaded`);
    if (String(p.etag).replace(/"/g, '') !== stored.etag) return detail(ctx, 400, `ETag mismatch for part ${p.partNumber}`);
    buffers.push(stored.data);
  }
  storeFile(file, Buffer.concat(buffers));
  file.parts.clear();
  sendJson(ctx, 200, { file_url: fileUrl(file), size: file.data.length });
}

// Parses "Range: bytes=a-b" / "bytes=a-" / "bytes=-n"; null = whole body, false = unsatisfiable.
function parseRange(header, size) {
  if (!header) return null;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return null;
  let start; let end;
  if (m[1] === '') { start = Math.max(0, size - Number(m[2])); end = size - 1; }
  else { start = Number(m[1]); end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1); }
  if (start >= size || start > end) return false;
  return { start, end };
}

// Common part of serving bytes from the CDN: status line, length, range and fault handling.
// `writeBody(start, end, onDone)` streams bytes [start, end] into ctx.res.
function serveBytes(ctx, size, contentType, writeBody, onComplete) {
  const { res } = ctx;
  if (ctx.fault && ctx.fault.action === 'drop_after') return destroySocket(ctx);
  const range = parseRange(ctx.req.headers.range, size);
  if (range === false) {
    return sendJson(ctx, 416, { detail: 'Range Not Satisfiable' }, { 'content-range': `bytes */${size}` });
  }
  const start = range ? range.start : 0;
  const end = range ? range.end : size - 1;
  const length = end - start + 1;
  const code = range ? 206 : 200;
  const headers = {
    'content-type': contentType, 'content-length': String(length),
    'accept-ranges': 'bytes', 'x-fal-request-id': ctx.falRequestId,
  };
  if (range) headers['content-range'] = `bytes ${start}-${end}/${size}`;
  writeHead(ctx, code, headers);
  if (ctx.method === 'HEAD' || length === 0) return res.end();
  const truncated = ctx.fault && ctx.fault.action === 'truncate';
  const sendEnd = truncated ? start + Math.floor(length / 2) - 1 : end;
  // Counted only once every byte has been handed to the OS: a client that hangs up mid-way
  // has not downloaded the file.
  if (!truncated) res.once('finish', () => onComplete(length));
  writeBody(start, sendEnd, () => {
    if (truncated) return res.write('', () => destroySocket(ctx));
    res.end();
  });
}

function handleCdnFile(ctx, { fileId }) {
  const file = state.files.get(fileId);
  if (!file || !file.data) return detail(ctx, 404, 'File not found');
  serveBytes(ctx, file.data.length, file.content_type, (start, end, done) => {
    if (end >= start) ctx.res.write(file.data.subarray(start, end + 1));
    done();
  }, () => { state.stats.file_downloads++; });
}

// Video bytes: block i = sha256("<request_id>:<i>") (32 bytes), concatenated, cut to the size.
function videoBytes(requestId, start, end) {
  const first = Math.floor(start / 32);
  const last = Math.floor(end / 32);
  const blocks = [];
  for (let i = first; i <= last; i++) blocks.push(sha256(`${requestId}:${i}`));
  const all = Buffer.concat(blocks);
  return all.subarray(start - first * 32, end - first * 32 + 1);
}

function cachedVideo(job) {
  const key = `${job.request_id}:${job.video_bytes}`;
  let buf = state.videoCache.get(key);
  if (!buf) {
    buf = job.video_bytes ? videoBytes(job.request_id, 0, job.video_bytes - 1) : Buffer.alloc(0);
    state.videoCache.set(key, buf);
    if (state.videoCache.size > 512) state.videoCache.delete(state.videoCache.keys().next().value);
  }
  return buf;
}

// Large videos are generated chunk by chunk, yielding to the event loop and honouring
// back-pressure, so one big download does not stall the other clients.
function streamVideo(ctx, job, start, end, done) {
  const { res } = ctx;
  if (job.video_bytes <= CACHED_VIDEO_LIMIT) {
    if (end >= start) res.write(cachedVideo(job).subarray(start, end + 1));
    return done();
  }
  let pos = start;
  const pump = () => {
    while (pos <= end) {
      if (res.destroyed) return;
      const chunkEnd = Math.min(end, pos + VIDEO_CHUNK - 1);
      const ok = res.write(videoBytes(job.request_id, pos, chunkEnd));
      pos = chunkEnd + 1;
      if (!ok) return res.once('drain', () => setImmediate(pump));
    }
    done();
  };
  pump();
}

function handleCdnVideo(ctx, { requestId }) {
  const job = state.jobs.get(requestId);
  if (!job || job.state !== 'COMPLETED' || job.outcome.code !== 200) return detail(ctx, 404, 'File not found');
  ctx.falRequestId = job.request_id;
  serveBytes(ctx, job.video_bytes, 'video/mp4', (start, end, done) => streamVideo(ctx, job, start, end, done),
    (length) => { state.stats.downloads++; state.stats.download_bytes += length; });
}

// POST /rest/tokens/ (client-mode streaming / realtime): a JSON string token.
function handleToken(ctx) {
  sendJson(ctx, 200, `fakefal-jwt-${randHex(16)}`);
}

// ---------------------------------------------------------------------------------------------
// 8. Control API (/_fake/...) — never counted, never faulted, no auth
// ---------------------------------------------------------------------------------------------

function jobView(job) {
  return {
    request_id: job.request_id, endpoint: job.endpoint, app_id: job.app_id, mode: job.mode,
    input: job.input, headers: job.headers, webhook: job.webhook,
    state: job.state, queue_position: job.state === 'IN_QUEUE' ? job.queue_position : null,
    error: job.outcome ? job.outcome.error : null,
    error_type: job.outcome ? job.outcome.error_type : null,
    result_code: job.outcome ? job.outcome.code : null,
    created_ms: job.created_ms, started_ms: job.started_ms, completed_ms: job.completed_ms,
    cancelled: job.cancelled, queue_ms: job.queue_ms, run_ms: job.run_ms, video_bytes: job.video_bytes,
    logs: job.logs.length, webhook_attempts: job.webhook_attempts, webhook_status: job.webhook_status,
  };
}

function uploadView(file) {
  return {
    url: fileUrl(file), file_name: file.file_name, size: file.data.length, sha256: file.sha256,
    content_type: file.content_type, multipart: file.multipart, lifecycle: file.lifecycle,
    storage_type: file.storage_type, stored_ms: file.stored_ms,
  };
}

function statsView() {
  const jobsByState = { IN_QUEUE: 0, IN_PROGRESS: 0, COMPLETED: 0 };
  for (const job of state.jobs.values()) jobsByState[job.state]++;
  return { ...state.stats, jobs_by_state: jobsByState, pending_faults: state.faults.length };
}

function resetState() {
  for (const job of state.jobs.values()) {
    clearJobTimers(job);
    job.state = 'COMPLETED';
    job.outcome = infraOutcome('internal_error');
    job.metrics = {};
    notify(job);   // closes open SSE streams of the discarded jobs
  }
  state.jobs.clear();
  state.queued.clear();
  state.inProgress = 0;
  state.files.clear();
  state.faults = [];
  state.videoCache.clear();
  const openRequests = state.stats.open_requests;
  state.stats = newStats();
  state.stats.open_requests = openRequests;
}

// Normalises one fault description; returns an error string when it is not valid.
function makeFault(spec) {
  if (!isPlainObject(spec)) return 'a fault must be an object';
  const route = spec.route ?? 'any';
  if (!FAULT_ROUTES.has(route)) return `unknown route '${route}' (one of ${[...FAULT_ROUTES].join(', ')})`;
  if (!FAULT_ACTIONS.has(spec.action)) return `unknown action '${spec.action}' (one of ${[...FAULT_ACTIONS].join(', ')})`;
  const times = spec.times ?? 1;
  if (!Number.isInteger(times) || times < 1) return 'times must be a positive integer';
  if (spec.action === 'status' && !(Number.isInteger(spec.code) && spec.code >= 100 && spec.code <= 599)) {
    return 'action "status" needs an integer code';
  }
  if (spec.ms !== undefined && !(Number.isFinite(spec.ms) && spec.ms >= 0)) return 'ms must be a non-negative number';
  return { ...spec, route, times, remaining: times, id: randHex(4) };
}

function handleFaults(ctx) {
  if (ctx.method === 'GET') return sendJson(ctx, 200, state.faults);
  if (ctx.method === 'DELETE') { state.faults = []; return sendJson(ctx, 200, { faults: 0 }); }
  const parsed = parseJsonBody(ctx);
  if (!parsed) return;
  const specs = Array.isArray(parsed.value) ? parsed.value : [parsed.value];
  const faults = specs.map(makeFault);
  const bad = faults.find((f) => typeof f === 'string');
  if (bad) return detail(ctx, 400, bad);
  state.faults.push(...faults);
  sendJson(ctx, 200, { added: faults.length, faults: state.faults });
}

function handleConfig(ctx) {
  if (ctx.method === 'POST') {
    const parsed = parseJsonBody(ctx);
    if (!parsed) return;
    if (!isPlainObject(parsed.value)) return detail(ctx, 400, 'config must be an object');
    for (const [key, value] of Object.entries(parsed.value)) {
      if (!(key in config)) return detail(ctx, 400, `unknown config key '${key}'`);
      if (!Number.isInteger(value) || value < 0 || value > (CONFIG_LIMITS[key] ?? Number.MAX_SAFE_INTEGER)) {
        return detail(ctx, 400, `config '${key}' must be a non-negative integer`);
      }
      if (key === 'log_lines' && value < 1) return detail(ctx, 400, 'log_lines must be >= 1');
      if (key === 'keepalive_ms' && value < 10) return detail(ctx, 400, 'keepalive_ms must be >= 10');
    }
    Object.assign(config, parsed.value);
  }
  sendJson(ctx, 200, config);
}

function resolveControl(method, segs) {
  const [what, arg] = segs;
  const route = (handler, params = {}) => ({ route: 'control', handler, params });
  if (what === 'stats' && method === 'GET') return route((ctx) => sendJson(ctx, 200, statsView()));
  if (what === 'jobs' && method === 'GET' && arg === undefined) {
    return route((ctx) => sendJson(ctx, 200, [...state.jobs.values()].map(jobView)));
  }
  if (what === 'jobs' && method === 'GET') {
    return route((ctx) => {
      const job = state.jobs.get(arg);
      if (!job) return detail(ctx, 404, 'Request not found');
      sendJson(ctx, 200, jobView(job));
    });
  }
  if (what === 'uploads' && method === 'GET') {
    return route((ctx) => sendJson(ctx, 200, [...state.files.values()].filter((f) => f.data).map(uploadView)));
  }
  if (what === 'reset' && method === 'POST') return route((ctx) => { resetState(); sendJson(ctx, 200, { ok: true }); });
  if (what === 'faults' && ['GET', 'POST', 'DELETE'].includes(method)) return route(handleFaults);
  if (what === 'config' && ['GET', 'POST'].includes(method)) return route(handleConfig);
  if (what === 'jwks' && method === 'GET') return route((ctx) => sendJson(ctx, 200, jwks()));
  return route((ctx) => detail(ctx, 404, `Unknown control call ${method} /_fake/${segs.join('/')}`));
}

// ---------------------------------------------------------------------------------------------
// 9. Request pipeline: routing, fault injection, auth
// ---------------------------------------------------------------------------------------------

const methodNotAllowed = (ctx) => detail(ctx, 405, 'Method Not Allowed');
const notFound = (ctx) => detail(ctx, 404, 'Not Found');

// Queue host: submit = POST /<endpoint id>; anything with "requests" after the app id is a
// request operation. "requests" found deeper (the full endpoint path used for status by
// mistake) is still treated as a request operation so that the 404 can say why.
function resolveQueue(method, segs) {
  const appLen = appIdLength(segs);
  const reqIdx = segs.indexOf('requests', 2);
  if (reqIdx >= 2 && (method !== 'POST' || reqIdx === appLen)) {
    const params = { appId: segs.slice(0, reqIdx).join('/'), requestId: segs[reqIdx + 1] };
    const tail = segs.slice(reqIdx + 2).join('/');
    const op = (route, allowed, handler) => ({
      route, auth: true, params, handler: allowed.includes(method) ? handler : methodNotAllowed,
    });
    if (!params.requestId) return { route: 'other', auth: true, handler: notFound };
    if (tail === '') return op('result', ['GET', 'HEAD'], handleResult);
    if (tail === 'status') return op('status', ['GET', 'HEAD'], handleStatus);
    if (tail === 'status/stream') return op('stream', ['GET'], handleStream);
    if (tail === 'cancel') return op('cancel', ['PUT'], handleCancel);
    return { route: 'other', auth: true, handler: notFound };
  }
  if (method !== 'POST') return { route: 'submit', auth: true, handler: methodNotAllowed };
  return { route: 'submit', auth: true, handler: handleSubmit, params: { segs } };
}

function resolveRest(method, segs) {
  const path = segs.join('/');
  if (path === 'storage/upload/initiate' || path === 'storage/upload/initiate-multipart') {
    const handler = method === 'POST' ? handleInitiate : methodNotAllowed;
    return { route: 'initiate', auth: true, handler, params: { multipart: path.endsWith('multipart') } };
  }
  if (path === 'tokens') return { route: 'token', auth: true, handler: method === 'POST' ? handleToken : methodNotAllowed };
  if (path === '.well-known/jwks.json') return { route: 'other', handler: (ctx) => sendJson(ctx, 200, jwks()) };
  return { route: 'other', auth: true, handler: notFound };
}

// /upload/<id>[?token] (PUT), /upload/<id>/<n> (PUT part), /upload/<id>/complete (POST)
function resolveUpload(method, segs) {
  const [fileId, sub, extra] = segs;
  if (!fileId || extra !== undefined) return { route: 'other', handler: notFound };
  if (sub === 'complete') {
    return { route: 'upload_complete', handler: method === 'POST' ? handleUploadComplete : methodNotAllowed, params: { fileId } };
  }
  const part = sub === undefined ? null : Number(sub);
  return { route: 'upload_put', handler: method === 'PUT' ? handleUploadPut : methodNotAllowed, params: { fileId, part } };
}

function resolveCdn(method, segs) {
  const read = ['GET', 'HEAD'].includes(method);
  if (segs[0] === 'files' && segs.length === 3) {
    return { route: 'cdn', handler: read ? handleCdnFile : methodNotAllowed, params: { fileId: segs[1] } };
  }
  const video = segs[0] === 'videos' && segs.length === 2 && /^(.+)\.mp4$/.exec(segs[1]);
  if (video) return { route: 'cdn', handler: read ? handleCdnVideo : methodNotAllowed, params: { requestId: video[1] } };
  return { route: 'cdn', handler: notFound };
}

function resolveRoute(method, path) {
  const segs = path.split('/').filter((s) => s.length > 0).map(safeDecode);
  const [prefix, ...rest] = segs;
  switch (prefix) {
    case '_fake': return resolveControl(method, rest);
    case 'queue': return resolveQueue(method, rest);
    case 'run': return method === 'POST'
      ? { route: 'run', auth: true, handler: handleRun, params: { segs: rest } }
      : { route: 'run', auth: true, handler: methodNotAllowed };
    case 'rest': return resolveRest(method, rest);
    case 'upload': return resolveUpload(method, rest);
    case 'cdn': return resolveCdn(method, rest);
    default: return { route: 'other', handler: notFound };
  }
}

function safeDecode(seg) {
  try { return decodeURIComponent(seg); } catch { return seg; }
}

// Proxy mode (proxyUrl {url: ".../proxy", when: "always"}): route on x-fal-target-url.
const PROXY_HOSTS = { 'queue.fal.run': '/queue', 'fal.run': '/run', 'rest.fal.ai': '/rest' };
function proxyTarget(req) {
  let target;
  try { target = new URL(req.headers['x-fal-target-url'] || ''); } catch { return null; }
  const prefix = PROXY_HOSTS[target.host];
  return prefix ? `${prefix}${target.pathname}${target.search}` : null;
}

function readBody(req, limit) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (chunk) => {
      size += chunk.length;
      if (size > limit) { reject(new Error('body too large')); req.destroy(); return; }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks, size)));
    req.on('error', reject);
    req.on('aborted', () => reject(new Error('aborted')));
  });
}

// Takes the first pending fault for this route (FIFO); exhausted faults are removed.
function takeFault(route, path) {
  const fault = state.faults.find((f) => (f.route === route || f.route === 'any')
    && (!f.path_contains || path.includes(f.path_contains)));
  if (!fault) return null;
  fault.remaining--;
  if (fault.remaining <= 0) state.faults = state.faults.filter((f) => f !== fault);
  state.stats.faults_fired++;
  return fault;
}

const NGINX_PAGE = (code) => `<html>\r\n<head><title>${code} ${reasonPhrase(code)}</title></head>\r\n<body>\r\n`
  + `<center><h1>${code} ${reasonPhrase(code)}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n`;

function sendFaultStatus(ctx, fault) {
  const headers = {};
  if (fault.retry_after !== undefined) headers['retry-after'] = String(fault.retry_after);
  if (fault.timeout_type) headers['x-fal-request-timeout-type'] = String(fault.timeout_type);
  if (fault.nginx) {
    // An ingress error: HTML and no x-fal-request-id (the Python client retries only these).
    ctx.noRequestId = true;
    return sendBuffer(ctx, fault.code, { 'content-type': 'text/html', ...headers }, Buffer.from(NGINX_PAGE(fault.code)));
  }
  const body = { detail: fault.detail ?? reasonPhrase(fault.code) };
  if (fault.error_type) { body.error_type = fault.error_type; headers['x-fal-error-type'] = fault.error_type; }
  sendJson(ctx, fault.code, body, headers);
}

// Auth on the API hosts. Returns true when the request may proceed (401 already sent otherwise).
function checkAuth(ctx) {
  const header = ctx.req.headers.authorization;
  if (!header) state.stats.auth_missing++;
  if (!OPTS.key) return true;
  if (header === `Key ${OPTS.key}`) return true;
  if (header) state.stats.auth_failed++;
  const text = header && header.startsWith('Key ') && !header.includes(':')
    ? "Invalid Key Authorization header format. Expected '<key_id>:<key_secret>'."
    : 'No user found for Key ID and Secret';
  detail(ctx, 401, text);
  return false;
}

function trackOpenRequest(res) {
  const s = state.stats;
  s.open_requests++;
  s.max_open_requests = Math.max(s.max_open_requests, s.open_requests);
  res.on('close', () => { state.stats.open_requests--; });
}

async function onRequest(req, res) {
  const started = nowMs();
  const ctx = { req, res, method: req.method, falRequestId: uuid(), fault: null, body: Buffer.alloc(0) };
  ctx.url = new URL(req.url, 'http://127.0.0.1');
  if (ctx.url.pathname === '/proxy') {
    const target = proxyTarget(req);
    if (!target) return detail(ctx, 400, 'Missing or unsupported x-fal-target-url');
    ctx.url = new URL(target, 'http://127.0.0.1');
  }
  const path = ctx.url.pathname.length > 1 ? ctx.url.pathname.replace(/\/+$/, '') : ctx.url.pathname;
  const route = resolveRoute(req.method, path);
  ctx.route = route.route;
  res.on('close', () => logLine(`${req.method} ${req.url} -> ${ctx.dropped ? 'DROPPED' : res.statusCode} `
    + `${nowMs() - started}ms route=${ctx.route}${ctx.fault ? ` fault=${ctx.fault.action}` : ''}`));
  if (route.route !== 'control') {
    const v = state.stats.http_versions;
    v[req.httpVersion] = (v[req.httpVersion] || 0) + 1;
    state.stats.requests_total++;
    state.stats.requests[route.route]++;
    trackOpenRequest(res);
    ctx.fault = takeFault(route.route, path);
  }
  const fault = ctx.fault;
  if (fault && fault.action === 'drop_before') return destroySocket(ctx);
  const limit = route.route === 'upload_put' ? UPLOAD_BODY_LIMIT : JSON_BODY_LIMIT;
  try {
    ctx.body = await readBody(req, limit);
  } catch (e) {
    if (e.message === 'body too large') detail(ctx, 413, 'Payload Too Large');
    return;
  }
  if (fault && fault.action === 'stall') {
    if (fault.ms === undefined) return;   // hang until the client gives up (or shutdown)
    await new Promise((resolve) => setTimeout(resolve, clampTimer(fault.ms)));
  }
  if (fault && fault.action === 'status') return sendFaultStatus(ctx, fault);
  if (route.auth && !checkAuth(ctx)) return;
  await route.handler(ctx, route.params || {});
}

// ---------------------------------------------------------------------------------------------
// 10. Startup and shutdown
// ---------------------------------------------------------------------------------------------

// HTTPS when given a certificate (real fal is HTTPS only): every URL the fake hands out then
// starts with https:// too, so a client must verify this certificate for the CDN as well. With
// --http2 it also offers HTTP/2 in the TLS handshake (ALPN), as fal's hosts do, and still
// serves HTTP/1.1 to clients that ask for it.
function createServer(handler) {
  if (!OPTS.tlsCert) return http.createServer(handler);
  let key, cert;
  try {
    key = fs.readFileSync(OPTS.tlsKey);
    cert = fs.readFileSync(OPTS.tlsCert);
  } catch (e) {
    die(`cannot read the TLS certificate or key: ${e.message}`);
  }
  if (OPTS.http2) return http2.createSecureServer({ key, cert, allowHTTP1: true }, handler);
  return https.createServer({ key, cert }, handler);
}

const server = createServer((req, res) => {
  onRequest(req, res).catch((e) => {
    process.stderr.write(`fakefal: internal error on ${req.method} ${req.url}: ${e.stack}\n`);
    if (!res.headersSent && !res.destroyed) {
      res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ detail: `fakefal internal error: ${e.message}` }));
    }
  });
});
server.keepAliveTimeout = 30000;
server.on('secureConnection', (socket) => {  // HTTPS only: how many handshakes a client cost us
  state.stats.tls_handshakes++;
  if (socket.isSessionReused()) state.stats.tls_resumed++;
});
server.on('connection', (socket) => {
  state.sockets.add(socket);
  socket.on('close', () => state.sockets.delete(socket));
});

let shuttingDown = false;
function shutdown(code = 0) {
  if (shuttingDown) return;
  shuttingDown = true;
  for (const job of state.jobs.values()) clearJobTimers(job);
  server.close();
  for (const socket of state.sockets) socket.destroy();
  const exit = () => process.exit(code);
  if (logStream) logStream.end(exit); else exit();
  setTimeout(exit, 1000).unref();
}

function main() {
  if (OPTS.log) logStream = fs.createWriteStream(OPTS.log, { flags: 'a' });
  process.on('SIGTERM', () => shutdown(0));
  process.on('SIGINT', () => shutdown(0));
  if (OPTS.exitWithParent) {
    // The parent holds our stdin pipe; when it dies the pipe closes and we go too.
    process.stdin.on('end', () => shutdown(0));
    process.stdin.on('close', () => shutdown(0));
    process.stdin.on('error', () => shutdown(0));
    process.stdin.resume();
  }
  server.on('error', (e) => die(`cannot listen: ${e.message}`));
  server.listen(OPTS.port, '127.0.0.1', () => {
    const { port } = server.address();
    BASE = `${OPTS.tlsCert ? 'https' : 'http'}://127.0.0.1:${port}`;
    if (OPTS.portFile) {
      // Write then rename, so a test polling the file never reads a half-written port.
      fs.writeFileSync(`${OPTS.portFile}.tmp`, `${port}\n`);
      fs.renameSync(`${OPTS.portFile}.tmp`, OPTS.portFile);
    }
    process.stdout.write(`fakefal listening on ${BASE}\n`);
  });
}

main();
