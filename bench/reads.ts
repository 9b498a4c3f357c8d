/**
 * Reads that overlap: export of 1,000 messages through a backend that adds
 * 50 ms to every request (an object store across a network), as `mailcas
 * export` reads them (32 messages in flight, small blobs of a message read
 * ahead), next to one request at a time (measured on a sample, per message).
 *
 *   npx tsx bench/reads.ts [--quick]
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Store } from '../src/store.js';
import { MemoryBackend } from '../src/backend/memory-backend.js';
import { LatencyBackend } from '../src/backend/latency-backend.js';
import { forEachLimit } from '../src/util/pool.js';
import { silentLogger } from '../src/util/logger.js';
import { messageWith } from '../test/mailgen.js';

const quick = process.argv.includes('--quick');
const N = quick ? 300 : 1000;
const DELAY = 50;

const backend = new LatencyBackend(new MemoryBackend(), 0);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mailcas-reads-'));
const s = await Store.open(dir, { backend, logger: silentLogger, workers: 0 });
const ids: string[] = [];
let bytes = 0;
for (let i = 0; i < N; i++) {
  // one or two attachments per message (blobs), some messages with several
  const m = messageWith(crypto.randomBytes(6000 + (i % 7) * 3000), { subject: `m${i}` });
  ids.push((await s.ingest(m, { user: 'u' })).id);
  bytes += m.length;
}
backend.delayMs = DELAY;

const sample = ids.slice(0, quick ? 20 : 40);
let t0 = Date.now();
for (const id of sample) await s.fetchBuffer(id, { readAhead: 0 });
const perMessageSerial = (Date.now() - t0) / sample.length;

backend.maxInFlight = 0;
t0 = Date.now();
await forEachLimit(ids, 32, async (id) => void (await s.fetchBuffer(id)));
const overlapped = (Date.now() - t0) / 1000;
const serialTotal = (perMessageSerial * N) / 1000;
console.log(`${N} messages (${(bytes / 1e6).toFixed(1)} MB), ${DELAY} ms per backend request`);
console.log(`one request at a time: ${perMessageSerial.toFixed(1)} ms per message -> ${serialTotal.toFixed(1)} s for ${N} (measured on ${sample.length})`);
console.log(`as export reads them (32 messages in flight, read-ahead): ${overlapped.toFixed(2)} s, ${(N / overlapped).toFixed(0)} msg/s, ${backend.maxInFlight} requests in flight at most`);
console.log(`speed-up: ${(serialTotal / overlapped).toFixed(1)}x (goal >= 16x)`);
await s.close();
fs.rmSync(dir, { recursive: true, force: true });
