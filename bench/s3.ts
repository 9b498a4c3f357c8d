/**
 * npm run bench:s3: one run, side by side on the same generated mailbox:
 * ingest and fetch throughput with blobs on the filesystem only, on S3
 * directly, and written behind (local first, uploaded by flush), with the
 * S3 requests (PUT/GET/HEAD/DELETE/LIST) and bytes per message. S3 is the
 * server in $S3_ENDPOINT (S3_ACCESS_KEY, S3_SECRET_KEY), else the project's
 * own Ceph test cluster, started as root by scripts/ceph-rgw-up.sh.
 *
 *   npx tsx bench/s3.ts [--quick]
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Store } from '../src/store.js';
import { FsBackend } from '../src/backend/fs-backend.js';
import { S3Backend } from '../src/backend/s3-backend.js';
import { RetryBackend } from '../src/backend/retry-backend.js';
import { LatencyBackend } from '../src/backend/latency-backend.js';
import { forEachLimit } from '../src/util/pool.js';
import { silentLogger } from '../src/util/logger.js';
import { generatedDataset } from './datasets.js';
import { benchBucket, ensureS3 } from './s3-server.js';

const quick = process.argv.includes('--quick');

ensureS3();

const ds = generatedDataset('mixed (generated)', { seed: 11, users: 10, messages: quick ? 300 : 1000, profile: 'mixed' });
const files = ds.users.flatMap((u) => u.files.map((f) => ({ user: u.user, f })));

const bucket = benchBucket;

interface Row {
  mode: string;
  ingest: number;
  fetch: number;
  flush?: number;
  requests: LatencyBackend['requests'] | null;
}

async function run(mode: 'fs' | 's3' | 'write-behind'): Promise<Row> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `mailcas-s3bench-${mode}-`));
  let counter: LatencyBackend | null = null;
  let s: Store;
  if (mode === 'fs') s = await Store.open(dir, { logger: silentLogger });
  else {
    counter = new LatencyBackend(new RetryBackend(new S3Backend(await bucket())), 0);
    s = mode === 's3' ? await Store.open(dir, { backend: counter, logger: silentLogger }) : await Store.open(dir, { backend: new FsBackend(path.join(dir, 'blobs')), coldBackend: counter, logger: silentLogger });
  }
  let t = process.hrtime.bigint();
  const ids: string[] = [];
  await forEachLimit(files, 32, async (x) => void ids.push((await s.ingest({ path: x.f }, { user: x.user })).id));
  const ingest = Number(process.hrtime.bigint() - t) / 1e9;
  let flush: number | undefined;
  if (mode === 'write-behind') {
    t = process.hrtime.bigint();
    await s.tier({ olderThanMs: 0 });
    flush = Number(process.hrtime.bigint() - t) / 1e9;
  }
  const before = counter ? { ...counter.requests } : null;
  t = process.hrtime.bigint();
  await forEachLimit(ids, 32, async (id) => void (await s.fetchBuffer(id)));
  const fetch = Number(process.hrtime.bigint() - t) / 1e9;
  const requests = counter ? { ...counter.requests, get: counter.requests.get - before!.get } : null;
  await s.close();
  fs.rmSync(dir, { recursive: true, force: true });
  return { mode, ingest, fetch, flush, requests };
}

const rows: Row[] = [];
for (const m of ['fs', 's3', 'write-behind'] as const) rows.push(await run(m));
const mb = ds.bytes / 1e6;
console.log(`node ${process.version}; ${ds.messages} messages, ${mb.toFixed(1)} MB (${ds.name}); S3: ${process.env.S3_ENDPOINT}; 32 messages in flight`);
const head = ['blobs', 'ingest MB/s', 'msg/s', 'vs fs', 'fetch MB/s', 'PUT/msg', 'GET/msg (fetch)', 'HEAD/msg', 'flush s'];
const fsRow = rows[0];
const body = rows.map((r) => [
  r.mode === 'fs' ? 'filesystem only' : r.mode === 's3' ? 'S3 direct' : 'write-behind (local, then flush)',
  (mb / r.ingest).toFixed(1),
  (ds.messages / r.ingest).toFixed(0),
  `${(fsRow.ingest / r.ingest).toFixed(2)}x`,
  (mb / r.fetch).toFixed(1),
  r.requests ? (r.requests.put / ds.messages).toFixed(2) : '-',
  r.requests ? (r.requests.get / ds.messages).toFixed(2) : '-',
  r.requests ? (r.requests.stat / ds.messages).toFixed(2) : '-',
  r.flush !== undefined ? r.flush.toFixed(2) : '-',
]);
const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
console.log([head, ...body].map((r) => r.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join('  ')).join('\n'));
console.log('targets: write-behind ingest within 1.3x of filesystem-only (vs fs >= 0.77x); at most one PUT per new attachment-sized part');
