#!/usr/bin/env node
// bench/transport: klingrun's transport against the official JS client, side by side, on the
// loopback fake of fal (tests/fakefal/fakefal.js). See bench/README.md, section "transport".
//
// Usage: node bench/transport.mjs [--jobs 200] [--concurrency 50] [--run-ms 1000] [--queue-ms 0]
//          [--video-bytes 1048576] [--streaming] [--no-js] [--no-klingrun] [--klingrun PATH]
//          [--exact-video] [--nice N] [--keep] [--json-out FILE]
// Exit: 0 when every side ran to completion (targets met or not), 1 when a run failed (client
// error, files missing or of the wrong size, fake not starting), 2 on a bad command line.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..');
const FAKEFAL = path.join(ROOT, 'tests', 'fakefal', 'fakefal.js');
const JS_CLIENT = path.join(HERE, 'transport_js.mjs');
const FAKE_LAUNCHER = path.join(HERE, 'transport_fakefal.cjs');  // the fake with cheap video bytes
const KEY = 'test:secret';
const SCRIPT_NAME = 'transport_jobs';  // klingrun writes out/<script>/<name>.mp4
const TARGET = { ratio: 1.10, requests: 4, latency_ms: 20 };
const CLIENT_TIMEOUT_MS = 180_000;

// ---------------------------------------------------------------- command line

function usage(msg) {
  if (msg) process.stderr.write(`transport: ${msg}\n`);
  process.stderr.write('usage: bench/transport.sh [--jobs N] [--concurrency N] [--run-ms MS] [--queue-ms MS] ' +
    '[--video-bytes N] [--streaming] [--no-js] [--no-klingrun] [--klingrun PATH] [--exact-video] [--nice N] [--keep] [--json-out FILE]\n');
  process.exit(2);
}

function parseArgs(argv) {
  const o = {
    jobs: 200, concurrency: 50, runMs: 1000, queueMs: 0, videoBytes: 1 << 20,
    streaming: false, js: true, klingrun: true, klingrunBin: process.env.KLINGRUN || path.join(ROOT, 'build-bench', 'klingrun'),
    keep: false, jsonOut: null, exactVideo: false, nice: null,
  };
  const num = (k, v) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) usage(`${k} needs a non-negative integer, got ${v}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].split(/=(.*)/s, 2);
    const val = () => (inline !== undefined ? inline : (i + 1 < argv.length ? argv[++i] : usage(`${flag} needs a value`)));
    switch (flag) {
      case '--jobs': o.jobs = num(flag, val()); break;
      case '--concurrency': o.concurrency = num(flag, val()); break;
      case '--run-ms': o.runMs = num(flag, val()); break;
      case '--queue-ms': o.queueMs = num(flag, val()); break;
      case '--video-bytes': o.videoBytes = num(flag, val()); break;
      case '--streaming': o.streaming = true; break;
      case '--no-js': o.js = false; break;
      case '--no-klingrun': o.klingrun = false; break;
      case '--klingrun': o.klingrunBin = path.resolve(val()); break;
      case '--keep': o.keep = true; break;
      case '--exact-video': o.exactVideo = true; break;
      case '--nice': {
        const n = Number(val());
        if (!Number.isInteger(n) || n < -20 || n > 19) usage('--nice needs an integer in -20..19');
        o.nice = n;
        break;
      }
      case '--json-out': o.jsonOut = path.resolve(val()); break;
      case '-h': case '--help': usage();
      default: usage(`unknown option ${argv[i]}`);
    }
  }
  if (o.jobs < 1 || o.concurrency < 1) usage('--jobs and --concurrency must be at least 1');
  return o;
}

const opt = parseArgs(process.argv.slice(2));
const nowMs = () => performance.timeOrigin + performance.now();
const pad3 = (i) => String(i).padStart(3, '0');
const jobName = (i) => `job_${pad3(i)}`;

// ---------------------------------------------------------------- small statistics

function quantile(xs, q) {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return NaN;
  const pos = (v.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return v[lo] + (v[hi] - v[lo]) * (pos - lo);
}
const median = (xs) => quantile(xs, 0.5);
const p95 = (xs) => quantile(xs, 0.95);
const dist = (xs) => ({ median: median(xs), p95: p95(xs), max: quantile(xs, 1), n: xs.filter(Number.isFinite).length });

// ---------------------------------------------------------------- the fake

// --nice N runs the fake and the clients under `nice -n N` (negative needs root): on a machine
// shared with other work it keeps the figures about the clients rather than the scheduler.
const niced = (argv) => (opt.nice === null ? argv : ['nice', '-n', String(opt.nice), ...argv]);

function startFake(dir) {
  return new Promise((resolve, reject) => {
    const portFile = path.join(dir, 'fakefal.port');
    const argv = niced([process.execPath, opt.exactVideo ? FAKEFAL : FAKE_LAUNCHER, '--port', '0', '--port-file', portFile,
      '--key', KEY, '--queue-ms', String(opt.queueMs), '--run-ms', String(opt.runMs), '--video-bytes', String(opt.videoBytes),
      '--exit-with-parent']);
    const child = spawn(argv[0], argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error('fakefal did not start within 10 s')); }, 10_000);
    child.stderr.on('data', (d) => { err += d; });
    child.stdout.on('data', (d) => {
      out += d;
      const m = /fakefal listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (m) { clearTimeout(timer); resolve({ child, base: m[1] }); }
    });
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`fakefal exited with ${code}: ${err.trim()}`)); });
  });
}

// CPU seconds the fake has used so far (Linux /proc), to see whether the fake was the bottleneck.
function processCpuSeconds(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;  // utime + stime, in clock ticks (USER_HZ = 100)
  } catch { return NaN; }
}

async function stopFake(fake) {
  if (fake.child.exitCode !== null) return;
  const gone = new Promise((r) => fake.child.once('exit', r));
  fake.child.stdin.end();
  fake.child.kill('SIGTERM');
  await Promise.race([gone, new Promise((r) => setTimeout(r, 3000))]);
}

async function control(base, what) {
  const res = await fetch(`${base}/_fake/${what}`);
  if (!res.ok) throw new Error(`GET /_fake/${what}: ${res.status}`);
  return res.json();
}

// ---------------------------------------------------------------- running one client

function parseTimeFile(file) {
  // GNU time -f '%e %U %S %M'; "Command exited with non-zero status N" may come first.
  try {
    const lines = fs.readFileSync(file, 'utf8').trim().split('\n');
    const [e, u, s, m] = lines[lines.length - 1].trim().split(/\s+/).map(Number);
    if ([e, u, s, m].some((x) => !Number.isFinite(x))) return null;
    return { wall_s: e, user_s: u, sys_s: s, max_rss_kb: m };
  } catch { return null; }
}

const HAVE_TIME = fs.existsSync('/usr/bin/time');

function runClient(argv, { cwd, env }) {
  return new Promise((resolve) => {
    const timeFile = path.join(cwd, 'time.txt');
    const cmd = niced(HAVE_TIME ? ['/usr/bin/time', '-f', '%e %U %S %M', '-o', timeFile, ...argv] : argv);
    const lines = [];
    let stderr = '';
    const t_spawn = nowMs();
    const child = spawn(cmd[0], cmd.slice(1), { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    const rl = readline.createInterface({ input: child.stdout });
    rl.on('line', (l) => lines.push(l));
    child.stderr.on('data', (d) => { stderr += d; if (stderr.length > 1 << 20) stderr = stderr.slice(-(1 << 19)); });
    const killer = setTimeout(() => child.kill('SIGKILL'), CLIENT_TIMEOUT_MS);
    child.on('close', (code, signal) => {
      const t_exit = nowMs();
      clearTimeout(killer);
      // Kept with the run's directory (--keep, or a failed run) for a closer look.
      fs.writeFileSync(path.join(cwd, 'client.stdout'), lines.join('\n') + '\n');
      fs.writeFileSync(path.join(cwd, 'client.stderr'), stderr);
      resolve({ code, signal, t_spawn, t_exit, lines, stderr, time: HAVE_TIME ? parseTimeFile(timeFile) : null });
    });
  });
}

function luaScript(tag) {
  return `-- generated by bench/transport.mjs: ${opt.jobs} distinct jobs, waited for together
local jobs = {}
for i = 1, ${opt.jobs} do
  jobs[i] = kling.submit{
    name = string.format("job_%03d", i),
    prompt = string.format("transport bench ${tag} job %03d: a red fox trots across fresh snow", i),
    duration = 5,
  }
end
kling.wait_all(jobs)
`;
}

// ---------------------------------------------------------------- one side

async function runSide(side, root) {
  const dir = fs.mkdtempSync(path.join(root, `${side.id}-`));
  const tag = `${side.id}-${process.pid}-${Date.now()}`;
  const fake = await startFake(dir);
  let r;
  let outDir;
  try {
    if (side.kind === 'klingrun') {
      fs.writeFileSync(path.join(dir, `${SCRIPT_NAME}.lua`), luaScript(tag));
      outDir = path.join(dir, 'out', SCRIPT_NAME);
      const env = { ...process.env, FAL_KEY: KEY, FAL_QUEUE_URL: `${fake.base}/queue`, FAL_REST_URL: `${fake.base}/rest` };
      delete env.FAL_KEY_ID; delete env.FAL_KEY_SECRET;
      r = await runClient([opt.klingrunBin, '--json', '--concurrency', String(opt.concurrency), `${SCRIPT_NAME}.lua`], { cwd: dir, env });
    } else {
      outDir = path.join(dir, 'out');
      r = await runClient([process.execPath, JS_CLIENT, '--base', fake.base, '--out', outDir, '--jobs', String(opt.jobs),
        '--concurrency', String(opt.concurrency), '--mode', side.mode, '--tag', tag, '--key', KEY], { cwd: dir, env: process.env });
    }
    r.stats = await control(fake.base, 'stats');
    r.jobs = await control(fake.base, 'jobs');
    r.fakeCpu = processCpuSeconds(fake.child.pid);
    fs.writeFileSync(path.join(dir, 'fake_stats.json'), JSON.stringify(r.stats, null, 1) + '\n');
    fs.writeFileSync(path.join(dir, 'fake_jobs.json'), JSON.stringify(r.jobs) + '\n');
  } finally {
    await stopFake(fake);
  }
  r.dir = dir;
  r.outDir = outDir;
  return analyse(side, r);
}

function analyse(side, r) {
  const problems = [];
  if (r.code !== 0) problems.push(`client exited with ${r.signal ? `signal ${r.signal}` : `status ${r.code}`}`);

  // Fake jobs by index (the prompt carries it).
  const fakeByIndex = new Map();
  for (const j of r.jobs) {
    const m = /job (\d{3,}):/.exec((j.input && j.input.prompt) || '');
    if (m) fakeByIndex.set(Number(m[1]), j);
  }
  if (r.stats.jobs_created !== opt.jobs) problems.push(`the fake saw ${r.stats.jobs_created} jobs, expected ${opt.jobs}`);
  const failedOnFake = r.jobs.filter((j) => j.error).length;
  if (failedOnFake) problems.push(`${failedOnFake} jobs failed on the fake`);

  // Files on disk.
  const per = [];
  let missing = 0;
  let wrongSize = 0;
  for (let i = 1; i <= opt.jobs; i++) {
    const f = path.join(r.outDir, `${jobName(i)}.mp4`);
    let st = null;
    try { st = fs.statSync(f, { bigint: true }); } catch { missing++; }
    if (st && Number(st.size) !== opt.videoBytes) wrongSize++;
    const fj = fakeByIndex.get(i);
    per.push({ i, request_id: fj && fj.request_id, created: fj && fj.created_ms, completed: fj && fj.completed_ms,
      mtime: st ? Number(st.mtimeNs) / 1e6 : NaN });
  }
  if (missing) problems.push(`${missing} of ${opt.jobs} video files missing`);
  if (wrongSize) problems.push(`${wrongSize} video files do not have ${opt.videoBytes} bytes`);

  // Client-side timestamps, in epoch ms.
  let calibration = null;
  if (side.kind === 'klingrun') calibration = klingrunTimes(r, per);
  else jsTimes(r, per);

  const wall_s = (r.t_exit - r.t_spawn) / 1000;
  const ideal_s = Math.ceil(opt.jobs / opt.concurrency) * (opt.queueMs + opt.runMs) / 1000;
  const req = r.stats.requests || {};
  const apiRequests = r.stats.requests_total - (req.cdn || 0);
  const firstCreated = Math.min(...per.map((p) => p.created).filter(Number.isFinite));
  const lastDone = Math.max(...per.map((p) => p.done).filter(Number.isFinite));

  // Slot refill: the k-th slot to be freed should be taken by the (k+C)-th job to start. klingrun
  // frees a job's slot when its result is in hand (the job is off fal; the download goes on
  // beside the next job); a fal-js worker takes its next job once the file is written.
  const freedAt = (p) => (side.kind === 'klingrun' ? p.result : p.done);
  const freed = per.map(freedAt).filter(Number.isFinite).sort((a, b) => a - b);
  const starts = per.map((p) => p.start).filter(Number.isFinite).sort((a, b) => a - b);
  const refill = [];
  for (let k = 0; k + opt.concurrency < starts.length && k < freed.length; k++) refill.push(starts[k + opt.concurrency] - freed[k]);

  // Handover as fal sees it: the k-th job to complete should be followed by the (k+C)-th job to
  // be created. This is the whole round trip (completion noticed, result fetched, slot freed,
  // next submit sent and accepted), on the fake's own clock, so no calibration is involved.
  const createdSorted = per.map((p) => p.created).filter(Number.isFinite).sort((a, b) => a - b);
  const completedSorted = per.map((p) => p.completed).filter(Number.isFinite).sort((a, b) => a - b);
  const handover = [];
  for (let k = 0; k + opt.concurrency < createdSorted.length && k < completedSorted.length; k++)
    handover.push(createdSorted[k + opt.concurrency] - completedSorted[k]);
  const firstWave = createdSorted.slice(0, Math.min(opt.concurrency, createdSorted.length));
  // Completion → file by wave (the first C jobs to complete, the next C, …): a wave that
  // completes within a few tens of ms queues for its downloads; a spread-out one does not.
  const byCompletion = per.filter((p) => Number.isFinite(p.completed)).sort((a, b) => a.completed - b.completed);
  const latencyByWave = [];
  for (let w = 0; w < byCompletion.length; w += opt.concurrency)
    latencyByWave.push(median(byCompletion.slice(w, w + opt.concurrency).map((p) => p.done - p.completed)));
  const lastCompleted = completedSorted.length ? completedSorted[completedSorted.length - 1] : NaN;

  const time = r.time || {};
  const cpu = Number.isFinite(time.user_s) ? time.user_s + time.sys_s : (r.selfCpu ?? NaN);
  const rssKb = Number.isFinite(time.max_rss_kb) ? time.max_rss_kb : (r.selfRssKb ?? NaN);
  return {
    side: side.label, id: side.id, ok: problems.length === 0, problems, dir: r.dir,
    stderr_tail: r.stderr.trim().split('\n').slice(-15).join('\n'),
    wall_s, ideal_s, ratio: wall_s / ideal_s,
    work_span_s: (lastDone - firstCreated) / 1000,
    requests_per_job: apiRequests / opt.jobs,
    routes_per_job: Object.fromEntries(Object.entries(req).filter(([, n]) => n > 0).map(([k, n]) => [k, n / opt.jobs])),
    downloads_per_job: r.stats.downloads / opt.jobs,
    latency_mtime_ms: dist(per.map((p) => p.mtime - p.completed)),
    latency_done_ms: dist(per.map((p) => p.done - p.completed)),
    latency_done_by_wave_ms: latencyByWave,
    cpu_s: cpu, cpu_user_s: time.user_s, cpu_sys_s: time.sys_s, max_rss_mib: rssKb / 1024,
    startup_ms: firstCreated - r.t_spawn,
    submit_rtt_ms: dist(per.map((p) => p.submitted - p.start)),
    completed_to_result_ms: dist(per.map((p) => p.result - p.completed)),
    result_to_done_ms: dist(per.map((p) => p.done - p.result)),
    mtime_to_done_ms: dist(per.map((p) => p.done - p.mtime)),
    refill_ms: dist(refill),
    first_wave_span_ms: firstWave.length ? firstWave[firstWave.length - 1] - firstWave[0] : NaN,
    handover_ms: dist(handover),
    last_completion_to_done_ms: lastDone - lastCompleted,
    tail_ms: r.t_exit - lastDone,
    max_jobs_in_progress: r.stats.max_jobs_in_progress,
    max_open_requests: r.stats.max_open_requests,
    fake_cpu_s: r.fakeCpu,
    calibration,
  };
}

// klingrun --json events carry t = seconds since the runner started (a steady clock). Map them to
// epoch ms with the offset pinned by the fake's created_ms of each submit: the "submitting" event
// is printed before the request goes out and "queued" after its answer, so
// created - t_queued <= offset <= created + 1 - t_submitting (created_ms is a whole ms).
function klingrunTimes(r, per) {
  const ev = new Map();  // job name -> {submitting, queued, lastRunning, done}
  for (const line of r.lines) {
    let e;
    try { e = JSON.parse(line); } catch { continue; }
    if (!e || typeof e.job !== 'string' || typeof e.t !== 'number') continue;
    const x = ev.get(e.job) || {};
    const ms = e.t * 1000;
    if (e.event === 'submitting') x.submitting = ms;
    else if (e.event === 'queued' && x.queued === undefined) x.queued = ms;
    else if (e.event === 'running') x.lastRunning = ms;  // the last one is the result in hand
    else if (e.event === 'done') x.done = ms;
    ev.set(e.job, x);
  }
  let lo = -Infinity;
  let hi = Infinity;
  for (const p of per) {
    const x = ev.get(jobName(p.i));
    if (!x || !Number.isFinite(p.created)) continue;
    if (x.queued !== undefined) lo = Math.max(lo, p.created - x.queued);
    if (x.submitting !== undefined) hi = Math.min(hi, p.created + 1 - x.submitting);
  }
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return { ok: false };
  const offset = (lo + hi) / 2;
  for (const p of per) {
    const x = ev.get(jobName(p.i)) || {};
    const at = (v) => (v === undefined ? NaN : v + offset);
    p.start = at(x.submitting);
    p.submitted = at(x.queued);
    p.result = at(x.lastRunning);
    p.done = at(x.done);
  }
  return { ok: lo <= hi, uncertainty_ms: Math.abs(hi - lo) / 2 };
}

function jsTimes(r, per) {
  for (const line of r.lines) {
    let e;
    try { e = JSON.parse(line); } catch { continue; }
    if (e.summary) { r.selfCpu = e.cpu_user_s + e.cpu_sys_s; r.selfRssKb = e.max_rss_kb; continue; }
    const p = per[e.job - 1];
    if (!p) continue;
    p.start = e.t_submit;
    p.submitted = e.t_enqueued;
    p.result = e.t_result;
    p.done = e.t_written;
  }
}

// ---------------------------------------------------------------- report

const f1 = (x) => (Number.isFinite(x) ? x.toFixed(1) : 'n/a');
const f2 = (x) => (Number.isFinite(x) ? x.toFixed(2) : 'n/a');
const fd = (d) => (d && d.n ? `${f1(d.median)} / ${f1(d.p95)}` : 'n/a');

function table(results) {
  const rows = [
    ['wall time, spawn → exit (s)', (x) => f2(x.wall_s)],
    [`  ratio over ideal ${f2(results[0].ideal_s)} s (target ≤ ${TARGET.ratio.toFixed(2)}×)`, (x) => `${f2(x.ratio)}×`],
    ['  first submit → last file (s)', (x) => f2(x.work_span_s)],
    [`HTTP requests/job, excl. download (target ≤ ${TARGET.requests})`, (x) => f2(x.requests_per_job)],
    ['  by route (per job)', (x) => Object.entries(x.routes_per_job).filter(([k]) => k !== 'cdn').map(([k, v]) => `${k} ${f2(v)}`).join(', ')],
    ['  downloads/job', (x) => f2(x.downloads_per_job)],
    [`completion → file done, ms median / p95 (target < ${TARGET.latency_ms})`, (x) => fd(x.latency_done_ms)],
    ['completion → file mtime (last write), ms median / p95', (x) => fd(x.latency_mtime_ms)],
    ['completion → file done by wave, ms median', (x) => x.latency_done_by_wave_ms.map(f1).join(' / ')],
    ['client CPU user+sys (s)', (x) => `${f2(x.cpu_s)} (${f2(x.cpu_user_s)}+${f2(x.cpu_sys_s)})`],
    ['client peak RSS (MiB)', (x) => f1(x.max_rss_mib)],
    ['— where the time goes —', () => ''],
    ['startup: spawn → first job on the fake (ms)', (x) => f1(x.startup_ms)],
    ['submit round trip, ms median / p95', (x) => fd(x.submit_rtt_ms)],
    ['completion on fake → result JSON in hand, ms', (x) => fd(x.completed_to_result_ms)],
    ['result in hand → file done, ms', (x) => fd(x.result_to_done_ms)],
    ['file mtime → file done (sync, rename, bookkeeping), ms', (x) => fd(x.mtime_to_done_ms)],
    ['slot refill: a slot freed → next job submitting, ms', (x) => fd(x.refill_ms)],
    ['first wave: first → last of the first C jobs created on the fake (ms)', (x) => f1(x.first_wave_span_ms)],
    ['handover: k-th completion → (k+C)-th creation on the fake, ms', (x) => fd(x.handover_ms)],
    ['last completion on the fake → last file done (ms)', (x) => f1(x.last_completion_to_done_ms)],
    ['tail: last file done → process exit (ms)', (x) => f1(x.tail_ms)],
    ['max jobs IN_PROGRESS on the fake', (x) => String(x.max_jobs_in_progress)],
    ['max open HTTP requests on the fake', (x) => String(x.max_open_requests)],
    ['fake server CPU user+sys (s)', (x) => f2(x.fake_cpu_s)],
  ];
  const head = ['', ...results.map((x) => x.side)];
  const body = rows.map(([label, fn]) => [label, ...results.map(fn)]);
  const widths = head.map((_, c) => Math.max(...[head, ...body].map((row) => row[c].length)));
  const fmt = (row) => row.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('  ');
  return [fmt(head), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(fmt)].join('\n');
}

function verdicts(x) {
  const v = (met, text) => `${x.side}: ${text}: ${met ? 'met' : 'NOT met'}`;
  return [
    v(x.ratio <= TARGET.ratio, `wall ${f2(x.wall_s)} s = ${f2(x.ratio)}× ideal (target ≤ ${TARGET.ratio.toFixed(2)}×)`),
    v(x.requests_per_job <= TARGET.requests, `${f2(x.requests_per_job)} HTTP requests/job + ${f2(x.downloads_per_job)} download (target ≤ ${TARGET.requests} + download)`),
    v(x.latency_done_ms.median < TARGET.latency_ms,
      `completion → file done median ${f1(x.latency_done_ms.median)} ms, p95 ${f1(x.latency_done_ms.p95)} ms (target median < ${TARGET.latency_ms} ms)`),
  ];
}

// ---------------------------------------------------------------- main

async function main() {
  const sides = [];
  if (opt.klingrun) {
    if (!fs.existsSync(opt.klingrunBin)) {
      process.stderr.write(`transport: ${opt.klingrunBin} not found (build it, or pass --klingrun PATH)\n`);
      return 1;
    }
    sides.push({ id: 'klingrun', kind: 'klingrun', label: 'klingrun' });
  }
  if (opt.js) {
    sides.push({ id: 'js-polling', kind: 'js', mode: 'polling', label: 'fal-js polling' });
    if (opt.streaming) sides.push({ id: 'js-streaming', kind: 'js', mode: 'streaming', label: 'fal-js streaming' });
  }
  if (!sides.length) usage('nothing to run');

  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'klingrun-transport-'));
  const load0 = os.loadavg();
  console.log(`transport: ${opt.jobs} jobs, ${opt.concurrency} in flight, queue ${opt.queueMs} ms + run ${opt.runMs} ms each, ` +
    `${opt.videoBytes} B videos${opt.exactVideo ? ' (exact SHA-256 bytes)' : ''}; ${os.cpus().length} CPUs, load ${load0.map((l) => l.toFixed(1)).join(' ')}` +
    `${opt.nice === null ? '' : `; nice ${opt.nice}`}`);
  console.log(`transport: klingrun = ${opt.klingrunBin}; temp dir ${root}`);

  const results = [];
  let failed = false;
  for (const side of sides) {
    process.stderr.write(`transport: running ${side.label} ...\n`);
    let res;
    try {
      res = await runSide(side, root);
    } catch (e) {
      process.stderr.write(`transport: ${side.label}: ${e.message}\n`);
      failed = true;
      continue;
    }
    results.push(res);
    if (!res.ok) {
      failed = true;
      process.stderr.write(`transport: ${side.label} FAILED: ${res.problems.join('; ')}\n`);
      if (res.stderr_tail) process.stderr.write(`--- last lines of its stderr ---\n${res.stderr_tail}\n---\n`);
    }
  }

  if (results.length) {
    console.log('');
    console.log(table(results));
    console.log('');
    for (const x of results) {
      if (x.ok) for (const line of verdicts(x)) console.log(line);
      else console.log(`${x.side}: RUN FAILED (no verdict): ${x.problems.join('; ')}`);
    }
    const k = results.find((x) => x.ok && x.calibration);
    if (k && Number.isFinite(k.calibration.uncertainty_ms)) {
      console.log(`(klingrun's --json times mapped to epoch ms within ±${f1(k.calibration.uncertainty_ms)} ms` +
        `${k.calibration.ok ? '' : ' — calibration inconsistent, treat its latencies with care'})`);
    }
    const load1 = os.loadavg();
    if (Math.max(load0[0], load1[0]) > os.cpus().length) {
      console.log(`(note: load average ${load1[0].toFixed(1)} on ${os.cpus().length} CPUs — other work competed; figures are noisy)`);
    }
  }
  if (opt.jsonOut) {
    fs.writeFileSync(opt.jsonOut, JSON.stringify({ options: opt, target: TARGET, results }, null, 2) + '\n');
  }
  if (opt.keep || failed) console.log(`transport: kept ${root}`);
  else fs.rmSync(root, { recursive: true, force: true });
  return failed ? 1 : 0;
}

process.exitCode = await main();
