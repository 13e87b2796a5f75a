#!/usr/bin/env node
'use strict';
// Starts tests/fakefal/fakefal.js, unchanged except for one function: videoBytes().
//
// The fake makes each video out of SHA-256 blocks (block i = sha256("<request_id>:<i>")): 32,768
// hash calls per MiB, about 60-100 ms of CPU per 1 MiB video on an idle core and several times
// that on a busy one, spent on the fake's only thread when the first download of a job arrives.
// In bench/transport 50 jobs complete in the same millisecond, so the fake would spend seconds
// generating bytes, and every client would look slow. Here videoBytes() returns a view into a
// 8 MiB pseudo-random pool (an AES-CTR keystream) at an offset derived from the request id:
// still deterministic per job and of the announced size, and no copy (a 1 MiB copy into a fresh
// buffer cost the fake ~1.3 ms of page faults and memmove per video on this VM). Everything else
// (routes, timing, stats, counters) is the fake's own code. bench/transport.mjs --exact-video runs the fake unmodified instead.
//
// Usage: node transport_fakefal.cjs [fakefal.js options]

const crypto = require('crypto');
const fs = require('fs');
const Module = require('module');
const path = require('path');

const FAKE = path.resolve(__dirname, '..', 'tests', 'fakefal', 'fakefal.js');

const FAST = `function videoBytes(requestId, start, end) {
  // bench/transport_fakefal.cjs: byte i of a video is pool[(p + i) % pool.length], with p < half
  // the pool taken from the request id: the same bytes for every range of the same video. A
  // range that does not wrap (every range of a video up to half the pool) is a view, not a copy.
  const pool = globalThis.__transportVideoPool;
  const len = Math.max(0, end - start + 1);
  let pos = (crypto.createHash('sha256').update(requestId).digest().readUInt32LE(0) % (pool.length / 2) + start) % pool.length;
  if (pos + len <= pool.length) return pool.subarray(pos, pos + len);
  const out = Buffer.allocUnsafe(len);
  for (let w = 0; w < len; pos = 0) w += pool.copy(out, w, pos, Math.min(pool.length, pos + len - w));
  return out;
}
`;let src = fs.readFileSync(FAKE, 'utf8');
const re = /function videoBytes\(requestId, start, end\) \{\n[\s\S]*?\n\}\n/;
if (re.test(src)) {
  // An AES-128-CTR keystream with a fixed key: the same pool (so the same videos) every run,
  // made natively in a few ms.
  const key = crypto.createHash('sha256').update('bench/transport video pool').digest();
  const aes = crypto.createCipheriv('aes-128-ctr', key.subarray(0, 16), key.subarray(16, 32));
  globalThis.__transportVideoPool = aes.update(Buffer.alloc(8 << 20));
  src = src.replace(re, FAST);
} else {
  process.stderr.write('transport_fakefal: videoBytes() not found in fakefal.js; running it unmodified\n');
}

// Run it as if `node fakefal.js` had been started: same file name, same module paths.
const m = new Module(FAKE, null);
m.filename = FAKE;
m.paths = Module._nodeModulePaths(path.dirname(FAKE));
require.main = m;
process.mainModule = m;
m._compile(src, FAKE);
