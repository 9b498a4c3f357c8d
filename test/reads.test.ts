// Reads overlap: a message of many parts on a high-latency backend is read with its blobs in
// flight together (asserted as requests in flight, never as time), in order, byte-exact.
import crypto from 'node:crypto';
import { expect, it } from 'vitest';
import { Store } from '../src/store.js';
import { MemoryBackend } from '../src/backend/memory-backend.js';
import { LatencyBackend } from '../src/backend/latency-backend.js';
import { silentLogger } from '../src/util/logger.js';
import { tmpDir } from './helpers.js';

it('a message with 12 attachments on a 20 ms backend: its blobs are read 8 at a time, the bytes come out in order', async () => {
  const backend = new LatencyBackend(new MemoryBackend(), 0);
  const s = await Store.open(tmpDir(), { backend, logger: silentLogger, workers: 0 });
  const parts = Array.from({ length: 12 }, (_, i) => `--b\r\nContent-Type: application/octet-stream; name=a${i}\r\nContent-Transfer-Encoding: base64\r\n\r\n${crypto.randomBytes(6000).toString('base64').replace(/(.{76})/g, '$1\r\n')}\r\n`);
  const msg = Buffer.from(`Subject: many\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n${parts.join('')}--b--\r\n`);
  const r = await s.ingest(msg, { user: 'u' });
  expect(r.newBlobs).toBe(12);
  backend.delayMs = 20;
  backend.maxInFlight = 0;
  expect((await s.fetchBuffer(r.id)).equals(msg)).toBe(true);
  expect(backend.maxInFlight).toBe(8);
  backend.maxInFlight = 0;
  expect((await s.fetchBuffer(r.id, { readAhead: 0 })).equals(msg)).toBe(true);
  expect(backend.maxInFlight).toBe(1);
  await s.close();
});
