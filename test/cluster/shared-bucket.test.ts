// Nodes of a cluster sharing one bucket (Ceph RGW): large blobs stored once for every node, reference
// markers per node, local gc removing only markers, the collector deleting only what no node marks.
import crypto from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Store } from '../../src/store.js';
import { silentLogger } from '../../src/util/logger.js';
import { S3Backend, type S3Location } from '../../src/backend/s3-backend.js';
import { freshBucket, s3Env } from '../s3-env.js';
import { messageWith } from '../mailgen.js';
import { runCli, tmpDir } from '../helpers.js';

const env = s3Env();

/** Every key under the location's prefix (not only blob keys): markers, tombstones, node prefixes. */
async function allKeys(loc: S3Location): Promise<string[]> {
  const { ListObjectsV2Command } = await import('@aws-sdk/client-s3');
  const b = new S3Backend(loc);
  const out: string[] = [];
  let ContinuationToken: string | undefined;
  do {
    const p = await (await b.client()).send(new ListObjectsV2Command({ Bucket: loc.bucket, Prefix: loc.prefix, ContinuationToken }));
    for (const o of p.Contents ?? []) out.push(o.Key!.slice(loc.prefix.length));
    ContinuationToken = p.IsTruncated ? p.NextContinuationToken : undefined;
  } while (ContinuationToken);
  await b.close();
  return out.sort();
}

const kinds = (keys: string[]) => ({
  instances: keys.filter((k) => k.startsWith('shared/blobs/')),
  markers: keys.filter((k) => k.startsWith('shared/refs/')),
  tombstones: keys.filter((k) => k.startsWith('shared/tomb/')),
  own: (node: string) => keys.filter((k) => k.startsWith(`nodes/${node}/`)),
});

async function node(loc: S3Location, name: string, dir = tmpDir()): Promise<Store> {
  return Store.init(dir, { s3: loc, node: name, logger: silentLogger, workers: 0 });
}

describe.runIf(env !== null)('nodes sharing one bucket', () => {
  it('a large attachment delivered to users on two nodes is stored once; each node marks it; gc and collect delete it only once no node references it', async () => {
    const base = await freshBucket();
    const loc = { ...base, prefix: 'c1/' };
    const a = await node(loc, 'a');
    const b = await node(loc, 'b');
    try {
      const att = crypto.randomBytes(600 * 1024); // incompressible, over the shared threshold
      const msg = messageWith(att, { subject: 'shared' });
      const other = messageWith(att, { subject: 'the same attachment, another message' });
      const ia = await a.ingest(msg, { user: 'ua' });
      const ib = await b.ingest(other, { user: 'ub' });
      let k = kinds(await allKeys(loc));
      expect(k.instances.length).toBe(1);
      expect(k.markers.map((m) => m.split('/')[3]).sort()).toEqual(['a', 'b']);
      expect(ia.newBlobBytes).toBeGreaterThan(att.length * 0.9);
      expect(ib.newBlobBytes).toBeLessThan(att.length / 10); // only its own small parts
      expect((await a.fetchBuffer(ia.id)).equals(msg)).toBe(true);
      expect((await b.fetchBuffer(ib.id)).equals(other)).toBe(true);
      for (const s of [a, b]) {
        const c = await s.check({ deep: true });
        expect(c.consistent, JSON.stringify(c)).toBe(true);
        expect(c.missingMarkers).toEqual([]);
      }
      // a second message on a with the same attachment: the fast path, no bucket request for it
      const ia2 = await a.ingest(messageWith(att, { subject: 'again' }), { user: 'ua' });
      expect(kinds(await allKeys(loc)).markers.length).toBe(2);

      // a lets go of it: its gc deletes its marker, not the object; the collector keeps it for b
      await a.expunge('ua', [ia.id, ia2.id]);
      const ga = await a.gc({ graceSeconds: 0 });
      expect(ga.deletedMarkers).toBe(1);
      let col = await a.collect({ graceSeconds: 0 });
      expect(col).toMatchObject({ instances: 1, referenced: 1, deleted: 0 });
      expect((await b.fetchBuffer(ib.id)).equals(other)).toBe(true);
      expect((await a.check()).consistent).toBe(true);

      // b lets go too: now the collector (run from either node) deletes it, tombstone and all
      await b.expunge('ub', [ib.id]);
      await b.gc({ graceSeconds: 0 });
      col = await b.collect({ graceSeconds: 0 });
      expect(col).toMatchObject({ instances: 1, referenced: 0, deleted: 1 });
      k = kinds(await allKeys(loc));
      expect(k.instances).toEqual([]);
      expect(k.markers).toEqual([]);
      expect(k.tombstones).toEqual([]);
      for (const s of [a, b]) expect((await s.check()).consistent).toBe(true);

      // the same content later: uploaded again as a new instance
      const ib3 = await b.ingest(msg, { user: 'ub' });
      expect((await b.fetchBuffer(ib3.id)).equals(msg)).toBe(true);
      expect(kinds(await allKeys(loc)).instances.length).toBe(1);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('an instance closed by a tombstone (a collector between its two listings) takes no new reference: the node uses a new copy, and the closed one is collected', async () => {
    const base = await freshBucket();
    const loc = { ...base, prefix: 'c2/' };
    const a = await node(loc, 'a');
    const b = await node(loc, 'b');
    try {
      const att = crypto.randomBytes(400 * 1024);
      const msg = messageWith(att);
      const ia = await a.ingest(msg, { user: 'ua' });
      await a.expunge('ua', [ia.id]);
      await a.gc({ graceSeconds: 0 });
      const [old] = kinds(await allKeys(loc)).instances;
      const oldKey = old.slice('shared/blobs/'.length);
      // a collector stopped right after C3: the instance is closed
      await a.shared!.putTombstone(oldKey);
      const ib = await b.ingest(msg, { user: 'ub' });
      const inst = kinds(await allKeys(loc)).instances;
      expect(inst.length).toBe(2);
      const row = b.db.prepare("SELECT instance FROM blobs WHERE tier = 2").get() as { instance: string };
      expect(oldKey.endsWith(row.instance)).toBe(false);
      // the collector finishes its work on the closed one (no marker on it), and leaves b's
      const col = await b.collect({ graceSeconds: 0 });
      expect(col.deleted).toBe(1);
      const k = kinds(await allKeys(loc));
      expect(k.instances.length).toBe(1);
      expect(k.instances[0].endsWith(row.instance)).toBe(true);
      expect(k.tombstones).toEqual([]);
      expect((await b.fetchBuffer(ib.id)).equals(msg)).toBe(true);
      expect((await b.check({ deep: true })).consistent).toBe(true);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('copies left by racing uploads converge: gc moves references to the smallest instance, releases the old marker, and the collector deletes the other copy', async () => {
    const base = await freshBucket();
    const loc = { ...base, prefix: 'c5/' };
    const b = await node(loc, 'b');
    try {
      const msg = messageWith(crypto.randomBytes(400 * 1024));
      const ib = await b.ingest(msg, { user: 'ub' });
      const [mine] = kinds(await allKeys(loc)).instances.map((k) => k.slice('shared/blobs/'.length));
      // another node's upload of the same content at the same moment, under a smaller instance id
      const raced = mine.slice(0, 64) + '00000000000000' + mine.slice(-2);
      const src = await b.shared!.objects.get(mine);
      const bytes = Buffer.concat(await src!.toArray());
      const { hashBuffer } = await import('../../src/util/hash.js');
      const { bufferSource } = await import('../../src/backend/backend.js');
      await b.shared!.objects.put(raced, bufferSource(bytes), { size: bytes.length, digest: hashBuffer(bytes) });
      // the other node's marker on it (it references its copy)
      await b.shared!.putMarker(Buffer.from(raced.slice(0, 64), 'hex'), raced.slice(64), 'other-node-ingest');
      const g = await b.gc({ graceSeconds: 0 });
      expect(g.converged).toBe(1);
      expect(g.deletedMarkers).toBe(1); // b's marker on its own copy
      expect((b.db.prepare('SELECT instance FROM blobs WHERE tier = 2').get() as { instance: string }).instance).toBe(raced.slice(64));
      const col = await b.collect({ graceSeconds: 0 });
      expect(col).toMatchObject({ instances: 2, deleted: 1 });
      expect(kinds(await allKeys(loc)).instances).toEqual([`shared/blobs/${raced}`]);
      expect((await b.fetchBuffer(ib.id)).equals(msg)).toBe(true);
      expect((await b.check({ deep: true })).consistent).toBe(true);
      // settled once it is older than the lease lifetime (no racing upload can still commit): no more LISTs for it
      await b.gc({ graceSeconds: 0, now: () => Date.now() + 2 * 3600_000 });
      expect((b.db.prepare('SELECT settled FROM blobs WHERE tier = 2').get() as { settled: number }).settled).toBe(1);
    } finally {
      await b.close();
    }
  });

  it('a marker stays while an ingest holds a lease on its blob (a commit on the fast path relies on the markers already there)', async () => {
    const base = await freshBucket();
    const loc = { ...base, prefix: 'c6/' };
    const a = await node(loc, 'a');
    try {
      const msg = messageWith(crypto.randomBytes(300 * 1024));
      const id = (await a.ingest(msg, { user: 'u' })).id;
      const { hash } = a.db.prepare('SELECT hash FROM blobs WHERE tier = 2').get() as { hash: Buffer };
      // an ingest of the same content took its lease while the count was 1 (the fast path: no bucket request)
      a.db.transaction(() => a.index.leases.take('in-flight', [hash], Date.now() + 3600_000)).immediate();
      await a.expunge('u', [id]);
      let g = await a.gc({ graceSeconds: 0 });
      expect(g.deletedMarkers).toBe(0);
      expect(kinds(await allKeys(loc)).markers.length).toBe(1);
      expect((await a.collect({ graceSeconds: 0 })).deleted).toBe(0);
      a.db.transaction(() => a.index.leases.release('in-flight')).immediate();
      g = await a.gc({ graceSeconds: 0 });
      expect(g.deletedMarkers).toBe(1);
      expect((await a.collect({ graceSeconds: 0 })).deleted).toBe(1);
    } finally {
      await a.close();
    }
  });

  it('a shared copy found damaged is not taken again: the next ingest of the content uploads a new one, and earlier messages read from it', async () => {
    const base = await freshBucket();
    const loc = { ...base, prefix: 'c7/' };
    const a = await node(loc, 'a');
    try {
      const msg = messageWith(crypto.randomBytes(300 * 1024));
      const id = (await a.ingest(msg, { user: 'u' })).id;
      const [damaged] = kinds(await allKeys(loc)).instances.map((k) => k.slice('shared/blobs/'.length));
      const { hashBuffer } = await import('../../src/util/hash.js');
      const { bufferSource } = await import('../../src/backend/backend.js');
      const junk = crypto.randomBytes(1000);
      await a.shared!.objects.put(damaged, bufferSource(junk), { size: junk.length, digest: hashBuffer(junk) }, { overwrite: true });
      await expect(a.fetchBuffer(id)).rejects.toThrow(/E_INTEGRITY|does not|bytes/);
      expect((a.db.prepare('SELECT corrupt FROM blobs WHERE tier = 2').get() as { corrupt: number }).corrupt).toBe(1);
      const again = await a.ingest(msg, { user: 'u' });
      const row = a.db.prepare('SELECT instance, corrupt FROM blobs WHERE tier = 2').get() as { instance: string; corrupt: number };
      expect(row.corrupt).toBe(0);
      expect(damaged.endsWith(row.instance)).toBe(false);
      expect((await a.fetchBuffer(id)).equals(msg)).toBe(true);
      expect((await a.fetchBuffer(again.id)).equals(msg)).toBe(true);
      // the damaged copy: this node's marker on it goes, then the collector deletes it
      await a.gc({ graceSeconds: 0 });
      expect((await a.collect({ graceSeconds: 0 })).deleted).toBe(1);
      expect((await a.check({ deep: true })).consistent).toBe(true);
    } finally {
      await a.close();
    }
  });

  it('cluster forget-node: a retired node\'s markers and own objects go; the blobs only it referenced are then collected, the others stay', async () => {
    const base = await freshBucket();
    const loc = { ...base, prefix: 'c8/' };
    const a = await node(loc, 'a');
    const b = await node(loc, 'b');
    try {
      const [att1, att2] = [crypto.randomBytes(300 * 1024), crypto.randomBytes(300 * 1024)];
      const ia = await a.ingest(messageWith(att1), { user: 'ua' });
      await b.ingest(messageWith(att1, { subject: 'b1' }), { user: 'ub' });
      await b.ingest(messageWith(att2, { subject: 'b2' }), { user: 'ub' });
      await b.ingest(messageWith(crypto.randomBytes(100 * 1024), { subject: 'b3: a part b keeps itself' }), { user: 'ub' });
      await b.close(); // b is retired (its users would have been moved first)
      await expect(a.forgetNode('a')).rejects.toThrow(/own node/);
      const dry = await a.forgetNode('b', { dryRun: true });
      expect(dry.markers).toBe(2);
      expect(dry.objects).toBeGreaterThan(0);
      expect(kinds(await allKeys(loc)).own('b').length).toBe(dry.objects);
      const done = await a.forgetNode('b');
      expect(done).toEqual(dry);
      const k = kinds(await allKeys(loc));
      expect(k.own('b')).toEqual([]);
      expect(k.markers.every((m) => m.split('/')[3] === 'a')).toBe(true);
      expect(await a.collect({ graceSeconds: 0 })).toMatchObject({ instances: 2, deleted: 1, referenced: 1 });
      expect((await a.fetchBuffer(ia.id)).equals(messageWith(att1))).toBe(true);
      expect((await a.check({ deep: true })).consistent).toBe(true);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('check --deep finds a referenced shared blob whose marker is gone from the bucket (a collector could delete it); --repair writes it again', async () => {
    const base = await freshBucket();
    const loc = { ...base, prefix: 'c9/' };
    const a = await node(loc, 'a');
    try {
      await a.ingest(messageWith(crypto.randomBytes(300 * 1024)), { user: 'u' });
      const { hash, instance } = a.db.prepare('SELECT hash, instance FROM blobs WHERE tier = 2').get() as { hash: Buffer; instance: string };
      const { token } = a.db.prepare('SELECT token FROM shared_markers').get() as { token: string };
      await a.shared!.deleteMarker(hash, instance, token); // lost outside mailcas
      expect((await a.check()).consistent).toBe(true); // the record is there: only a listing shows it
      const deep = await a.check({ deep: true });
      expect(deep.consistent).toBe(false);
      expect(deep.missingMarkers).toEqual([hash.toString('hex')]);
      const fixed = await a.check({ deep: true, repair: true });
      expect(fixed.repaired?.markers).toBe(1);
      expect(fixed.consistent).toBe(true);
      expect((await a.check({ deep: true })).consistent).toBe(true);
      expect(kinds(await allKeys(loc)).markers.length).toBe(1);
      expect((await a.collect({ graceSeconds: 0 })).deleted).toBe(0);
    } finally {
      await a.close();
    }
  });

  it('move-user between two nodes: the large parts stay where they are in the bucket (references move, no upload); the user is on the target only, byte-exact', async () => {
    const base = await freshBucket();
    const loc = { ...base, prefix: 'c4/' };
    const a = await node(loc, 'a');
    const b = await node(loc, 'b');
    try {
      const atts = [crypto.randomBytes(500 * 1024), crypto.randomBytes(700 * 1024)];
      const msgs = [messageWith(atts[0], { subject: 'one' }), messageWith(atts[1], { subject: 'two' }), messageWith(atts[0], { subject: 'three' })];
      for (const [i, m] of msgs.entries()) await a.ingest(m, { user: 'mover', mailbox: i ? 'Archive' : 'INBOX' });
      const before = kinds(await allKeys(loc)).instances;
      expect(before.length).toBe(2);
      const { moveUser } = await import('../../src/admin/move-user.js');
      const rep = await moveUser(a, b, 'mover');
      expect(rep).toMatchObject({ messages: 3, copied: 3, expunged: 3 });
      expect(rep.newBlobBytes).toBeLessThan(20 * 1024); // headers and text parts of b's own; not the 1.2 MB of attachments
      expect(kinds(await allKeys(loc)).instances).toEqual(before);
      expect(a.list('mover')).toEqual([]);
      const moved = b.list('mover');
      expect(moved.map((m) => m.mailbox).sort()).toEqual(['Archive', 'Archive', 'INBOX']);
      const got = await Promise.all(moved.map((m) => b.fetchBuffer(m.id)));
      expect(got.map((g) => g.toString('latin1')).sort()).toEqual(msgs.map((m) => m.toString('latin1')).sort());
      // the source lets go: its markers go, the blobs stay for b
      await a.gc({ graceSeconds: 0 });
      expect((await a.collect({ graceSeconds: 0 })).deleted).toBe(0);
      expect(kinds(await allKeys(loc)).markers.every((m) => m.split('/')[3] === 'b')).toBe(true);
      for (const s of [a, b]) expect((await s.check({ deep: true })).consistent).toBe(true);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('the command line: init --node, check reports markers, cluster collect --json; --node needs --s3 and no tiering', async () => {
    const base = await freshBucket();
    const s3 = ['--s3', `s3://${base.bucket}/c3`, '--s3-endpoint', env!.endpoint];
    const n1 = tmpDir();
    const n2 = tmpDir();
    expect((await runCli(['--store', n1, 'init', ...s3, '--node', 'n1'])).code).toBe(0);
    const i2 = await runCli(['--store', n2, 'init', ...s3, '--node', 'n2']);
    expect(i2.code, i2.stderr.toString()).toBe(0);
    expect(i2.stderr.toString()).toContain('node n2');
    const msg = messageWith(crypto.randomBytes(300 * 1024));
    for (const n of [n1, n2]) expect((await runCli(['--store', n, 'ingest', '--user', 'u'], { input: msg })).code).toBe(0);
    const c = JSON.parse((await runCli(['--store', n1, 'check', '--json'])).stdout.toString());
    expect(c).toMatchObject({ consistent: true, missingMarkers: [], unneededMarkers: 0 });
    const col = await runCli(['--store', n2, 'cluster', 'collect', '--grace', '0', '--json']);
    expect(col.code, col.stderr.toString()).toBe(0);
    expect(JSON.parse(col.stdout.toString())).toMatchObject({ instances: 1, referenced: 1, deleted: 0 });
    expect(kinds(await allKeys({ ...base, prefix: 'c3/' })).instances.length).toBe(1);
    const bad = await runCli(['--store', tmpDir(), 'init', ...s3, '--node', 'n3', '--tiered']);
    expect(bad.code).toBe(64);
    expect((await runCli(['--store', tmpDir(), 'init', '--node', 'n4'])).code).toBe(64);
    const plainStore = tmpDir();
    expect((await runCli(['--store', plainStore, 'init'])).code).toBe(0);
    const plain = await runCli(['--store', plainStore, 'cluster', 'collect']);
    expect(plain.code).toBe(64);
    expect(plain.stderr.toString()).toContain('not a node');
  });
});
