// The small test harness that selftest.mjs and tests/conformance/conformance.mjs share:
// registering tests, assertions, starting the fake, and the final "N passed, M failed" line
// (with exit code 1 when anything failed). Node built-ins only.

import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const FAKEFAL = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fakefal.js');
export const VERBOSE = process.argv.includes('--verbose');

export class AssertionError extends Error {}
export function assert(cond, msg) { if (!cond) throw new AssertionError(msg); }
export function eq(actual, expected, what) {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  assert(a === e, `${what}: expected ${e}, got ${a}`);
}
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const tests = [];
export const test = (name, fn) => tests.push({ name, fn });

// Starts fakefal.js with `args`; resolves once it prints its ready line.
export function startFakefal(args) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [FAKEFAL, ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const m = /^fakefal listening on (https?:\/\/127\.0\.0\.1:(\d+))\n/.exec(out);
      if (m) resolve({ child, base: m[1], port: Number(m[2]), firstLine: out.split('\n')[0] });
    });
    child.on('exit', (code) => reject(new Error(`fakefal exited early with ${code}; stdout: ${out}`)));
    setTimeout(() => reject(new Error('fakefal did not start within 5 s')), 5000);
  });
}

// The child's exit code (or signal), or 'timeout' after `ms`.
export const waitExit = (child, ms) => new Promise((resolve) => {
  if (child.exitCode !== null) return resolve(child.exitCode);
  const t = setTimeout(() => resolve('timeout'), ms);
  child.once('exit', (code, signal) => { clearTimeout(t); resolve(code ?? signal); });
});

// Runs `setup`, every registered test in order, then `teardown`, which returns more failures
// as lines (checks that span the whole run). `detail(error)` may add a line under a failure.
// Prints the report and exits the process.
export async function runTests({ setup = async () => {}, teardown = async () => [], detail = () => '' } = {}) {
  let passed = 0;
  let failed = 0;
  try {
    await setup();
    for (const { name, fn } of tests) {
      const t0 = Date.now();
      try {
        await fn();
        passed++;
        console.log(`ok   - ${name} (${Date.now() - t0} ms)`);
      } catch (e) {
        failed++;
        console.log(`FAIL - ${name}: ${e instanceof AssertionError ? e.message : e.stack}`);
        const more = detail(e);
        if (more) console.log(`       ${more}`);
      }
    }
    for (const line of await teardown()) {
      failed++;
      console.log(`FAIL - ${line}`);
    }
  } catch (e) {
    failed++;
    console.log(`FAIL - harness: ${e.stack}`);
  }
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}
