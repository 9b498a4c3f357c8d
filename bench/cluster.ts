/**
 * npm run bench:cluster: nodes of a cluster sharing one bucket (docs/SCALE-OUT.md).
 *
 * 1. Ingest throughput of 1, 2 and 3 node stores on this machine sharing
 *    one bucket (each node its own `mailcas import` processes, the nodes at
 *    once; users placed by `cluster plan`'s rendezvous hashing), and the
 *    bytes in the bucket: the dedup ratio across nodes against one node
 *    holding everyone (small parts are each node's own: what that costs).
 * 2. What the protocol costs in S3 requests: per new shared blob, per reuse
 *    by another node, per reuse on the same node; per collected instance.
 *
 *   npx tsx bench/cluster.ts [--quick]
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { Store } from '../src/store.js';
import { S3Backend, type S3Location } from '../src/backend/s3-backend.js';
import { placeUser } from '../src/cluster/placement.js';
import { silentLogger } from '../src/util/logger.js';
import { generatedDataset } from './datasets.js';
import { benchBucket, ensureS3 } from './s3-server.js';

const run = promisify(execFile);
const ROOT = path.dirname(path.dirname(new URL(import.meta.url).pathname));
const BIN = path.join(ROOT, 'bin', 'mailcas.js');
const quick = process.argv.includes('--quick');
ensureS3();

const ds = generatedDataset('mixed mailboxes (generated)', { seed: 21, users: 24, messages: quick ? 600 : 2000, profile: 'mixed' });

async function bucketBytes(loc: S3Location): Promise<{ shared: number; own: number; sharedObjects: number }> {
  const b = new S3Backend(loc);
  const r = { shared: 0, own: 0, sharedObjects: 0 };
  let ContinuationToken: string | undefined;
  do {
    const p = await (await b.client()).send(new ListObjectsV2Command({ Bucket: loc.bucket, Prefix: loc.prefix, ContinuationToken }));
    for (const o of p.Contents ?? []) {
      const k = o.Key!.slice(loc.prefix.length);
      if (k.startsWith('shared/blobs/')) {
        r.shared += o.Size ?? 0;
        r.sharedObjects++;
      } else if (k.startsWith('nodes/')) r.own += o.Size ?? 0;
    }
    ContinuationToken = p.IsTruncated ? p.NextContinuationToken : undefined;
  } while (ContinuationToken);
  await b.close();
  return r;
}

interface Row {
  nodes: number;
  seconds: number;
  shared: number;
  own: number;
  sharedObjects: number;
  meta: number;
}

async function cluster(k: number): Promise<Row> {
  const loc = { ...(await benchBucket()), prefix: 'cluster/' };
  const dirs = Array.from({ length: k }, () => fs.mkdtempSync(path.join(os.tmpdir(), 'mailcas-cluster-bench-')));
  const nodes = dirs.map((_, i) => ({ name: `n${i}`, weight: 1 }));
  const s3 = ['--s3', `s3://${loc.bucket}/cluster`, '--s3-endpoint', loc.endpoint];
  for (const [i, d] of dirs.entries()) await run(process.execPath, [BIN, '--store', d, 'init', ...s3, '--node', `n${i}`]);
  const byNode = nodes.map((n) => ds.users.filter((u) => placeUser(u.user, nodes) === n.name));
  const env = { ...process.env, MAILCAS_NO_PROGRESS: '1' };
  const t0 = process.hrtime.bigint();
  // each node imports its users one after another; the nodes at once
  await Promise.all(
    byNode.map(async (users, i) => {
      for (const u of users) await run(process.execPath, [BIN, '--store', dirs[i], 'import', '--user', u.user, '--format', 'eml', ...u.files], { env, maxBuffer: 64 << 20 });
    }),
  );
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const bytes = await bucketBytes(loc);
  const meta = dirs.reduce((a, d) => a + fs.statSync(path.join(d, 'meta.sqlite')).size, 0);
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  return { nodes: k, seconds, ...bytes, meta };
}

/** S3 requests of the shared protocol: per new blob, per reuse by another node, per reuse on the same node, per collection. */
async function protocolCost(n: number): Promise<Record<string, string>> {
  const loc = { ...(await benchBucket()), prefix: 'cost/' };
  const open = (name: string) => Store.init(fs.mkdtempSync(path.join(os.tmpdir(), 'mailcas-cost-')), { s3: loc, node: name, logger: silentLogger, workers: 0 });
  const a = await open('a');
  const b = await open('b');
  const atts = Array.from({ length: n }, () => crypto.randomBytes(400 * 1024).toString('base64').replace(/.{76}/g, '$&\r\n'));
  const msg = (i: number, tag: string) =>
    Buffer.from(
      `Subject: ${tag} ${i}\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n${atts[i]}\r\n--b--\r\n`,
    );
  const measure = async (s: Store, fn: () => Promise<unknown>): Promise<string> => {
    const before = { ...s.shared!.requests };
    await fn();
    const after = s.shared!.requests;
    return (Object.keys(after) as (keyof typeof after)[])
      .map((k) => [k, (after[k] - before[k]) / n] as const)
      .filter(([, v]) => v)
      .map(([k, v]) => `${k.toUpperCase()} ${v.toFixed(2)}`)
      .join(', ');
  };
  const ids: string[] = [];
  const out: Record<string, string> = {};
  out['new shared blob (node a)'] = await measure(a, async () => {
    for (let i = 0; i < n; i++) ids.push((await a.ingest(msg(i, 'first'), { user: 'ua' })).id);
  });
  out['reuse by another node (b)'] = await measure(b, async () => {
    for (let i = 0; i < n; i++) await b.ingest(msg(i, 'other node'), { user: 'ub' });
  });
  out['reuse on the same node (a)'] = await measure(a, async () => {
    for (let i = 0; i < n; i++) ids.push((await a.ingest(msg(i, 'same node'), { user: 'ua' })).id);
  });
  out['fetch of a message (a)'] = await measure(a, async () => {
    for (let i = 0; i < n; i++) await a.fetchBuffer(ids[i]);
  });
  await b.expunge('ub', b.list('ub').map((m) => m.id));
  await a.expunge('ua', ids);
  out['gc on both nodes (per blob)'] = `a: ${await measure(a, () => a.gc({ graceSeconds: 0 }))}; b: ${await measure(b, () => b.gc({ graceSeconds: 0 }))}`;
  out['collect (per instance)'] = await measure(a, () => a.collect({ graceSeconds: 0 }));
  await a.close();
  await b.close();
  return out;
}

const rows: Row[] = [];
for (const k of [1, 2, 3]) rows.push(await cluster(k));
const mb = ds.bytes / 1e6;
console.log(`node ${process.version}, ${os.cpus().length} cores; ${ds.messages} messages, ${mb.toFixed(1)} MB, ${ds.users.length} users (${ds.name}); S3: ${process.env.S3_ENDPOINT}`);
const head = ['nodes', 'ingest MB/s', 'msg/s', 'vs 1 node', 'bucket MB', 'shared MB', 'per-node MB', 'vs 1 node', 'dedup (in/bucket)', 'SQLite MB'];
const one = rows[0];
const body = rows.map((r) => {
  const total = r.shared + r.own;
  return [
    String(r.nodes),
    (mb / r.seconds).toFixed(1),
    (ds.messages / r.seconds).toFixed(0),
    `${(one.seconds / r.seconds).toFixed(2)}x`,
    (total / 1e6).toFixed(2),
    (r.shared / 1e6).toFixed(2),
    (r.own / 1e6).toFixed(2),
    `${(total / (one.shared + one.own)).toFixed(3)}x`,
    `${(ds.bytes / total).toFixed(2)}x`,
    (r.meta / 1e6).toFixed(2),
  ];
});
const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
console.log([head, ...body].map((r) => r.map((c, i) => c.padStart(w[i])).join('  ')).join('\n'));
console.log('(bucket bytes with 2 and 3 nodes vs 1 node: what keeping parts of 256 KiB and smaller per node costs in dedup; ingest on one machine: the nodes share its cores)');
const n = quick ? 10 : 30;
const cost = await protocolCost(n);
console.log(`\nS3 requests per message, shared protocol only (${n} messages, each with one new 400 KiB attachment; the node's own small parts not counted):`);
for (const [k, v] of Object.entries(cost)) console.log(`  ${k.padEnd(30)} ${v || 'none'}`);
