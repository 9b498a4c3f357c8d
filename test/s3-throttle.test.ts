// S3 that throttles and dawdles: a proxy in front of the Ceph RGW answers a share of requests with
// 503 SlowDown (as AWS S3 does under load) and delays the rest. Through the real SDK and mailcas's
// retrying wrapper, every ingest succeeds, every message reads back exact, and check is clean.
import crypto from 'node:crypto';
import http from 'node:http';
import { afterAll, describe, expect, it } from 'vitest';
import { Store } from '../src/store.js';
import { silentLogger } from '../src/util/logger.js';
import { tmpDir } from './helpers.js';
import { freshBucket, s3Env } from './s3-env.js';
import { messageWith } from './mailgen.js';

const env = s3Env();

/** A proxy to `upstream` that throttles (503 SlowDown) a share of requests and delays the others. */
function throttlingProxy(upstream: URL, share: number, maxDelayMs: number): Promise<{ url: string; throttled: () => number; passed: () => number; close: () => void }> {
  let throttled = 0;
  let passed = 0;
  const server = http.createServer((req, res) => {
    if (Math.random() < share) {
      throttled++;
      req.resume();
      const body = '<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>';
      res.writeHead(503, { 'Content-Type': 'application/xml', 'Content-Length': Buffer.byteLength(body) });
      res.end(body);
      return;
    }
    passed++;
    setTimeout(() => {
      const up = http.request({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers }, (ur) => {
        res.writeHead(ur.statusCode ?? 502, ur.headers);
        ur.pipe(res);
      });
      up.on('error', () => res.destroy());
      req.pipe(up);
    }, Math.random() * maxDelayMs);
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => {
      const a = server.address() as { port: number };
      resolve({ url: `http://127.0.0.1:${a.port}`, throttled: () => throttled, passed: () => passed, close: () => server.close() });
    }),
  );
}

describe.runIf(env)('S3 throttling (503 SlowDown) and slow responses', () => {
  const closers: (() => void)[] = [];
  afterAll(() => closers.forEach((c) => c()));

  it('ingests all succeed through retries, every message exact, check clean', async () => {
    const loc = await freshBucket('throttled');
    const proxy = await throttlingProxy(new URL(env!.endpoint), 0.3, 30);
    closers.push(proxy.close);
    const s = await Store.open(tmpDir(), { s3: { ...loc, endpoint: proxy.url }, logger: silentLogger, retry: { baseDelayMs: 10, maxDelayMs: 200, deadlineMs: 20_000 } });
    const msgs = new Map<string, Buffer>();
    await Promise.all(
      Array.from({ length: 4 }, async (_, w) => {
        for (let i = 0; i < 8; i++) {
          const m = messageWith(crypto.randomBytes(30_000 + 7_000 * i), { subject: `throttled ${w}-${i}` });
          msgs.set((await s.ingest(m, { user: 'u' })).id, m);
        }
      }),
    );
    for (const [id, m] of msgs) expect((await s.fetchBuffer(id, { user: 'u' })).equals(m)).toBe(true);
    const c = await s.check();
    expect({ consistent: c.consistent, orphans: c.orphans, missing: c.missingBlobs }).toEqual({ consistent: true, orphans: [], missing: [] });
    await s.close();
    expect(proxy.throttled()).toBeGreaterThan(10);
    console.log(`throttled ${proxy.throttled()} of ${proxy.throttled() + proxy.passed()} S3 requests; ${msgs.size} messages stored and read back exact`);
  });
});
