// httpReload against a real local server: 2xx ok, 500 failed with the status, a server that
// never answers times out, a closed port is refused; URLs are reported without their query.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describeUrl, httpReload } from '../../src/reload/http.js';

let server: Server;
let base: string;
const seen: { method: string; url: string; headers: IncomingMessage['headers'] }[] = [];

before(async () => {
  server = createServer((req, res) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    req.resume();
    if (req.url?.startsWith('/ok')) {
      res.writeHead(204).end();
    } else if (req.url === '/fail') {
      res.writeHead(500, { 'content-type': 'text/plain' }).end('reload failed: bad config');
    } else if (req.url === '/hang') {
      // never answer
    } else {
      res.writeHead(404).end();
    }
  });
  server.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

test('a 2xx answer is ok; method and headers are sent; the query stays out of the detail', async () => {
  const r = await httpReload({
    url: `${base}/ok?token=s3cr3t-query`,
    method: 'post',
    headers: { 'x-reload-token': 'abc' },
    timeoutMs: 2000,
  });
  assert.equal(r.ok, true);
  assert.equal(r.status, 204);
  assert.equal(r.timedOut, false);
  assert.equal(r.detail, `POST ${base}/ok answered 204`);
  assert.ok(!r.detail.includes('s3cr3t'));
  const last = seen.at(-1);
  assert.equal(last?.method, 'POST');
  assert.equal(last?.url, '/ok?token=s3cr3t-query');
  assert.equal(last?.headers['x-reload-token'], 'abc');
  assert.equal(last?.headers.connection, 'close');
});

test('a 500 answer is a failure with the status and the start of the body', async () => {
  const r = await httpReload({ url: `${base}/fail`, method: 'POST', timeoutMs: 2000 });
  assert.equal(r.ok, false);
  assert.equal(r.status, 500);
  assert.equal(r.timedOut, false);
  assert.match(r.detail, /answered 500/);
  assert.equal(r.body, 'reload failed: bad config');
});

test('a server that never answers times out within timeoutMs', async () => {
  const r = await httpReload({ url: `${base}/hang`, method: 'POST', timeoutMs: 300 });
  assert.equal(r.ok, false);
  assert.equal(r.status, null);
  assert.equal(r.timedOut, true);
  assert.match(r.detail, /timed out after 300 ms/);
  assert.ok(r.durationMs >= 250 && r.durationMs < 2000, `took ${r.durationMs} ms`);
});

test('a closed port is a failure naming the connection error', async () => {
  const tmp = createServer();
  tmp.listen(0, '127.0.0.1');
  await new Promise((r) => tmp.once('listening', r));
  const port = (tmp.address() as AddressInfo).port;
  await new Promise((r) => tmp.close(r));
  const r = await httpReload({
    url: `http://127.0.0.1:${port}/-/reload`,
    method: 'POST',
    timeoutMs: 2000,
  });
  assert.equal(r.ok, false);
  assert.equal(r.timedOut, false);
  assert.match(r.detail, /ECONNREFUSED/);
});

test('describeUrl drops userinfo and query', () => {
  assert.equal(describeUrl('http://user:pw@h:9/p/q?x=1#f'), 'http://h:9/p/q');
  assert.equal(describeUrl('not a url'), '(invalid url)');
});
