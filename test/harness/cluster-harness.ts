/**
 * Three (or more) node stores, each its own `mailcas` processes and SQLite
 * file, on one bucket: concurrent ingests of overlapping mail (the same large
 * attachments on every node), expunges, gc and the collector on all of them,
 * with SIGKILLs at random moments and at the protocol's crash points. At the
 * end, after every node's gc (with the clock past the dead ingests' leases)
 * and a collection: every acknowledged message on every node fetches
 * byte-exact, check is clean on every node, and the bucket holds each
 * distinct shared blob once. Used by npm test (a few dozen operations) and
 * npm run soak (many more).
 */
import crypto from 'node:crypto';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { Store } from '../../src/store.js';
import { silentLogger } from '../../src/util/logger.js';
import { S3Backend, type S3Location } from '../../src/backend/s3-backend.js';
import { messageWith } from '../mailgen.js';
import { prng, run } from './crash-harness.js';

export interface ClusterHarnessOptions {
  seed: number;
  nodes: number;
  operations: number;
  /** Operations in flight at once (over all nodes). */
  concurrency: number;
  bin: string;
  /** Bucket (created) and prefix the nodes share. */
  loc: S3Location;
  /** One fresh directory per node. */
  dirs: string[];
  log?: (line: string) => void;
}

export interface ClusterHarnessReport {
  seed: number;
  operations: Record<string, number>;
  kills: number;
  killsAt: Record<string, number>;
  acknowledged: number;
  expunged: number;
  verified: number;
  failedTemporarily: number;
  lost: string[];
  mismatched: string[];
  checkFailures: string[];
  /** Distinct shared blobs referenced at the end, and instances of them in the bucket. */
  sharedBlobs: number;
  instances: number;
  /** Instances no node references after the final gc and collection (should be none). */
  unreferencedInstances: number;
  tombstonesLeft: number;
}

const INGEST_POINTS = ['blob-written', 'marker-written', 'before-commit', 'after-commit'];
const GC_POINTS = ['gc-marker-deleted', 'gc-deleted'];
const COLLECT_POINTS = ['collect-tombstoned', 'collect-deleted'];

export async function runClusterHarness(o: ClusterHarnessOptions): Promise<ClusterHarnessReport> {
  const r = prng(o.seed);
  const log = o.log ?? (() => {});
  const rep: ClusterHarnessReport = {
    seed: o.seed,
    operations: {},
    kills: 0,
    killsAt: {},
    acknowledged: 0,
    expunged: 0,
    verified: 0,
    failedTemporarily: 0,
    lost: [],
    mismatched: [],
    checkFailures: [],
    sharedBlobs: 0,
    instances: 0,
    unreferencedInstances: 0,
    tombstonesLeft: 0,
  };
  const s3 = ['--s3', `s3://${o.loc.bucket}/${o.loc.prefix.replace(/\/$/, '')}`, '--s3-endpoint', o.loc.endpoint!];
  for (let n = 0; n < o.nodes; n++) {
    const i = await run(o.bin, ['--store', o.dirs[n], 'init', ...s3, '--node', `n${n}`], {});
    if (i.code !== 0) throw new Error(`init of node ${n} failed: ${i.stderr}`);
  }
  // the same few large attachments on every node (incompressible: each over the shared threshold), and some small mail
  const attachments = Array.from({ length: 5 }, () => crypto.randomBytes(Math.floor(300_000 + r() * 400_000)));
  let serial = 0;
  const newMessage = (): Buffer => {
    const k = serial++;
    if (r() < 0.15) return Buffer.from(`Subject: small ${k}\r\nMessage-ID: <s${k}.${o.seed}@test>\r\n\r\nbody ${k}\r\n`);
    return messageWith(attachments[Math.floor(r() * attachments.length)], { subject: `m${k} seed ${o.seed}` });
  };
  const held = Array.from({ length: o.nodes }, () => new Map<string, Buffer>());
  const count = (k: string): void => void (rep.operations[k] = (rep.operations[k] ?? 0) + 1);
  const kill = (point: string | null): { env?: Record<string, string>; killAfterMs?: number } => {
    rep.kills++;
    const at = point ?? 'random';
    rep.killsAt[at] = (rep.killsAt[at] ?? 0) + 1;
    return point ? { env: { MAILCAS_CRASH_AT: point } } : { killAfterMs: Math.floor(r() * 600) };
  };
  const maybeKill = (p: number, points: string[]): { env?: Record<string, string>; killAfterMs?: number } => {
    const x = r();
    if (x < p / 2) return kill(null);
    if (x < p) return kill(points[Math.floor(r() * points.length)]);
    return {};
  };

  const step = async (): Promise<void> => {
    const n = Math.floor(r() * o.nodes);
    const store = ['--store', o.dirs[n]];
    const x = r();
    if (x < 0.55) {
      count('ingest');
      const m = newMessage();
      const k = maybeKill(0.3, INGEST_POINTS);
      const res = await run(o.bin, [...store, 'ingest', '--user', `u${n}`], { input: m, ...k });
      if (res.code === 0) {
        const id = res.stdout.trim();
        held[n].set(id, m);
        rep.acknowledged++;
      } else if (res.code === 75) rep.failedTemporarily++;
      else if (res.signal === null && !k.env && k.killAfterMs === undefined) throw new Error(`node ${n}: ingest failed: ${res.stderr}`);
    } else if (x < 0.7) {
      const ids = [...held[n].keys()];
      if (!ids.length) return;
      count('expunge');
      const id = ids[Math.floor(r() * ids.length)];
      // whether a killed expunge happened is unknown: the message is no longer expected (nor checked)
      held[n].delete(id);
      const k = r() < 0.15 ? kill(null) : {};
      const res = await run(o.bin, [...store, 'expunge', '--user', `u${n}`, id], k);
      if (res.code === 0) rep.expunged++;
    } else if (x < 0.82) {
      count('gc');
      const k = maybeKill(0.4, GC_POINTS);
      const res = await run(o.bin, [...store, 'gc', '--grace', '0'], k);
      if (res.code !== 0 && res.signal === null && !k.env && k.killAfterMs === undefined) throw new Error(`node ${n}: gc failed: ${res.stderr}`);
    } else if (x < 0.94) {
      count('collect');
      const k = maybeKill(0.4, COLLECT_POINTS);
      const res = await run(o.bin, [...store, 'cluster', 'collect', '--grace', '0'], k);
      if (res.code !== 0 && res.signal === null && !k.env && k.killAfterMs === undefined) throw new Error(`node ${n}: collect failed: ${res.stderr}`);
    } else {
      count('check');
      const res = await run(o.bin, [...store, 'check', '--json'], {});
      if (res.code !== 0) rep.checkFailures.push(`node ${n} during the run: ${res.stdout.slice(0, 2000)} ${res.stderr}`);
    }
  };

  let started = 0;
  const worker = async (): Promise<void> => {
    while (started < o.operations) {
      started++;
      await step();
      if (started % 20 === 0) log(`${started} operations, ${rep.acknowledged} acknowledged, ${rep.kills} kills`);
    }
  };
  await Promise.all(Array.from({ length: o.concurrency }, worker));

  // the end: every node's gc with its clock past the dead ingests' leases (their markers go), then one collection
  const stores: Store[] = [];
  try {
    for (const d of o.dirs.slice(0, o.nodes)) stores.push(await Store.open(d, { logger: silentLogger, workers: 0 }));
    for (const s of stores) await s.gc({ graceSeconds: 0, now: () => Date.now() + 2 * 24 * 3600 * 1000 });
    await stores[0].collect({ graceSeconds: 0 });
    for (let n = 0; n < o.nodes; n++) {
      const s = stores[n];
      for (const [id, want] of held[n]) {
        let got: Buffer;
        try {
          got = await s.fetchBuffer(id, { user: `u${n}` });
        } catch (e) {
          rep.lost.push(`node ${n} message ${id}: ${(e as Error).message}`);
          continue;
        }
        if (got.equals(want)) rep.verified++;
        else rep.mismatched.push(`node ${n} message ${id}`);
      }
      const c = await s.check({ deep: true });
      if (!c.consistent || c.unneededMarkers) rep.checkFailures.push(`node ${n} at the end: ${JSON.stringify(c).slice(0, 2000)}`);
    }
    // the bucket: each distinct shared blob once, each instance marked by a node that references it
    const referenced = new Map<string, string>();
    for (const s of stores)
      for (const row of s.db.prepare('SELECT hash, instance FROM blobs WHERE tier = 2 AND refs > 0').all() as { hash: Buffer; instance: string }[]) referenced.set(row.hash.toString('hex') + row.instance, row.hash.toString('hex'));
    const keys = await listAll(o.loc, 'shared/');
    const instances = keys.filter((k) => k.startsWith('shared/blobs/')).map((k) => k.slice('shared/blobs/'.length));
    rep.instances = instances.length;
    rep.sharedBlobs = new Set(instances.map((k) => k.slice(0, 64))).size;
    rep.unreferencedInstances = instances.filter((k) => !referenced.has(k)).length;
    rep.tombstonesLeft = keys.filter((k) => k.startsWith('shared/tomb/')).length;
    for (const k of referenced.keys()) if (!instances.includes(k)) rep.lost.push(`shared instance ${k} is referenced but not in the bucket`);
  } finally {
    for (const s of stores) await s.close();
  }
  return rep;
}

async function listAll(loc: S3Location, under: string): Promise<string[]> {
  const b = new S3Backend(loc);
  const out: string[] = [];
  let ContinuationToken: string | undefined;
  try {
    do {
      const p = await (await b.client()).send(new ListObjectsV2Command({ Bucket: loc.bucket, Prefix: loc.prefix + under, ContinuationToken }));
      for (const x of p.Contents ?? []) out.push(x.Key!.slice(loc.prefix.length));
      ContinuationToken = p.IsTruncated ? p.NextContinuationToken : undefined;
    } while (ContinuationToken);
  } finally {
    await b.close();
  }
  return out;
}
