#!/usr/bin/env node
// The reference side of bench/transport: the UNMODIFIED official client (@fal-ai/client, the
// version pinned in tests/conformance) doing the work klingrun does in the benchmark: N jobs,
// C in flight, one `fal.subscribe` per job, then the video fetched and written to disk.
// Started by bench/transport.mjs as its own process so its CPU time and RSS are its own.
//
// Usage: node transport_js.mjs --base URL --out DIR [--jobs 200] [--concurrency 50]
//          [--mode polling|streaming] [--tag TEXT] [--key ID:SECRET]
// stdout: one JSON line per finished job
//   {"job":i,"request_id","t_submit","t_enqueued","t_status_done","t_result","t_written","bytes"}
//   (epoch ms, sub-ms resolution), then {"summary":true,"ok","failed","cpu_user_s","cpu_sys_s","max_rss_kb"}.
// Exit 0 when every job produced its file, 1 otherwise.

import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const CONFORMANCE = path.join(HERE, '..', 'tests', 'conformance');

function parseArgs(argv) {
  const a = { jobs: 200, concurrency: 50, mode: 'polling', tag: 'js', key: 'test:secret' };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i].replace(/^--/, '');
    const v = argv[++i];
    if (v === undefined) throw new Error(`missing value for --${k}`);
    a[k] = ['jobs', 'concurrency'].includes(k) ? Number(v) : v;
  }
  if (!a.base || !a.out) throw new Error('--base and --out are required');
  if (!['polling', 'streaming'].includes(a.mode)) throw new Error(`--mode polling|streaming, not ${a.mode}`);
  return a;
}

const args = parseArgs(process.argv.slice(2));
const nowMs = () => performance.timeOrigin + performance.now();

// The client is installed for the conformance test; resolve it from there.
const require = createRequire(path.join(CONFORMANCE, 'package.json'));
const { createFalClient } = await import(pathToFileURL(require.resolve('@fal-ai/client')).href);

const BASE = args.base;
// docs/fal-protocol.md#client-redirect: the only change to the client is where its three hosts point.
function rewritingFetch(input, init) {
  let url = typeof input === 'string' ? input : (input instanceof URL ? input.href : input.url);
  url = url.replace(/^https:\/\/queue\.fal\.run\//, `${BASE}/queue/`)
    .replace(/^https:\/\/fal\.run\//, `${BASE}/run/`)
    .replace(/^https:\/\/rest\.fal\.ai\//, `${BASE}/rest/`);
  if (!url.startsWith(BASE)) throw new Error(`client tried to reach the outside: ${url}`);
  return fetch(url, init);
}

const fal = createFalClient({ credentials: args.key, fetch: rewritingFetch });
const ENDPOINT = 'fal-ai/kling-video/v3/pro/text-to-video';
fs.mkdirSync(args.out, { recursive: true });

const name = (i) => `job_${String(i).padStart(3, '0')}`;
let next = 1;
let ok = 0;
let failed = 0;

async function one(i) {
  const rec = { job: i, t_submit: nowMs() };
  const input = {
    prompt: `transport bench ${args.tag} job ${String(i).padStart(3, '0')}: a red fox trots across fresh snow`,
    duration: '5',
  };
  const result = await fal.subscribe(ENDPOINT, {
    input,
    mode: args.mode,
    onEnqueue: (id) => { rec.request_id = id; rec.t_enqueued = nowMs(); },
    onQueueUpdate: (s) => { if (s.status === 'COMPLETED' && !rec.t_status_done) rec.t_status_done = nowMs(); },
  });
  rec.t_result = nowMs();
  const video = result.data && result.data.video;
  if (!video || typeof video.url !== 'string') throw new Error(`job ${i}: result has no video.url`);
  const res = await fetch(video.url);
  if (!res.ok) throw new Error(`job ${i}: download answered ${res.status}`);
  const bytes = Buffer.from(await res.arrayBuffer());
  await fs.promises.writeFile(path.join(args.out, `${name(i)}.mp4`), bytes);
  rec.t_written = nowMs();
  rec.bytes = bytes.length;
  return rec;
}

async function worker() {
  while (next <= args.jobs) {
    const i = next++;
    try {
      const rec = await one(i);
      ok++;
      process.stdout.write(JSON.stringify(rec) + '\n');
    } catch (e) {
      failed++;
      process.stderr.write(`transport_js: job ${i} failed: ${e && e.message ? e.message : e}\n`);
    }
  }
}

await Promise.all(Array.from({ length: Math.min(args.concurrency, args.jobs) }, worker));
const cpu = process.cpuUsage();
const ru = process.resourceUsage();
process.stdout.write(JSON.stringify({
  summary: true, ok, failed, cpu_user_s: cpu.user / 1e6, cpu_sys_s: cpu.system / 1e6, max_rss_kb: ru.maxRSS,
}) + '\n');
process.exitCode = failed ? 1 : 0;
