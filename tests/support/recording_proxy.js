// A recording reverse proxy for tests: forwards every request to --target (a fakefal base URL),
// rewrites the target's absolute URLs in JSON and SSE bodies to point back here (so CDN and
// upload requests come through too), and records each request's method, path and the headers
// tests care about. Node built-ins only.
//
//   node recording_proxy.js --target http://127.0.0.1:PORT [--exit-with-parent]
//   stdout: "proxy listening on http://127.0.0.1:PORT2" (one line)
//   GET /_proxy/requests -> [{method, path, authorization (or null), user_agent}]  (not forwarded)
'use strict';
const http = require('http');

let target = null;
let exitWithParent = false;
for (let i = 2; i < process.argv.length; i++) {
  if (process.argv[i] === '--target') target = new URL(process.argv[++i]);
  else if (process.argv[i] === '--exit-with-parent') exitWithParent = true;
}
if (!target) { process.stderr.write('usage: recording_proxy.js --target URL\n'); process.exit(2); }
const targetBase = target.origin;
let selfBase = '';
const records = [];
const rewrite = (s) => s.split(targetBase).join(selfBase);

const server = http.createServer((req, res) => {
  if (req.url === '/_proxy/requests') {
    res.writeHead(200, { 'content-type': 'application/json' });
    return res.end(JSON.stringify(records));
  }
  records.push({ method: req.method, path: req.url, authorization: req.headers.authorization ?? null,
                 user_agent: req.headers['user-agent'] ?? null });
  const headers = { ...req.headers, host: target.host };
  const up = http.request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers,
                            agent: false });
  up.on('error', () => req.socket.destroy());
  req.pipe(up);
  up.on('response', (ur) => {
    const type = String(ur.headers['content-type'] || '');
    const out = { ...ur.headers };
    ur.on('error', () => res.socket && res.socket.destroy());
    ur.on('aborted', () => res.socket && res.socket.destroy());
    if (type.includes('application/json')) {
      const chunks = [];
      ur.on('data', (c) => chunks.push(c));
      ur.on('end', () => {
        if (!ur.complete) return res.socket && res.socket.destroy();
        const body = Buffer.from(rewrite(Buffer.concat(chunks).toString('utf8')));
        out['content-length'] = String(body.length);
        delete out['transfer-encoding'];
        res.writeHead(ur.statusCode, out);
        res.end(body);
      });
    } else if (type.includes('text/event-stream')) {
      res.writeHead(ur.statusCode, out);
      let pending = '';
      ur.setEncoding('utf8');
      ur.on('data', (c) => {
        pending += c;
        const cut = pending.lastIndexOf('\n') + 1;
        if (cut > 0) { res.write(rewrite(pending.slice(0, cut))); pending = pending.slice(cut); }
      });
      ur.on('end', () => { if (!ur.complete) return res.socket && res.socket.destroy(); res.end(rewrite(pending)); });
    } else {
      res.writeHead(ur.statusCode, out);
      ur.pipe(res);
      ur.on('end', () => { if (!ur.complete && res.socket) res.socket.destroy(); });
    }
  });
});

if (exitWithParent) {
  process.stdin.on('end', () => process.exit(0));
  process.stdin.on('close', () => process.exit(0));
  process.stdin.resume();
}
process.on('SIGTERM', () => process.exit(0));
server.listen(0, '127.0.0.1', () => {
  selfBase = `http://127.0.0.1:${server.address().port}`;
  process.stdout.write(`proxy listening on ${selfBase}\n`);
});
