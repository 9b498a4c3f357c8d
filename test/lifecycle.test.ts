// Lifecycle steps that move blobs, run beside gc with a cold PUT that returns late (a slow bucket,
// a paused process or VM) and gc's clock anywhere: the three reproductions of the blob-lifecycle
// issue, through the public library API on in-memory tiers, each deterministic (the PUT is held
// until gc has finished). Before the blob index (commit 3eeae2b) every one of them lost messages.
import crypto from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Store } from '../src/store.js';
import { MemoryBackend } from '../src/backend/memory-backend.js';
import { FaultBackend } from '../src/backend/fault-backend.js';
import { silentLogger } from '../src/util/logger.js';
import { tmpDir } from './helpers.js';
import { messageWith } from './mailgen.js';

const HOUR = 3600_000;

/** A store with hot and cold tiers in memory; the cold tier's PUTs of keys matching `hold` wait (after landing) until released. */
async function tiered(hold: (key: string) => boolean) {
  const hot = new MemoryBackend();
  const coldInner = new MemoryBackend();
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  let landed!: () => void;
  const held = new Promise<void>((r) => (landed = r));
  let holding = true;
  const cold = new FaultBackend(coldInner, {
    afterPut: async (key) => {
      if (!holding || !hold(key)) return;
      landed();
      await released; // the object is durable, the PUT's answer is late
    },
  });
  const s = await Store.open(tmpDir(), { backend: hot, coldBackend: cold, logger: silentLogger, workers: 0 });
  return {
    s,
    hot,
    coldInner,
    held,
    release: () => {
      holding = false;
      release();
    },
  };
}

/** n small messages with distinct compressible text parts (deflated hot: packed cold), or large random ones (objects of their own). */
function mail(n: number, kind: 'small' | 'large'): Buffer[] {
  return Array.from({ length: n }, (_, i) =>
    kind === 'small'
      ? messageWith(Buffer.from(`log line ${i}: ${'the quick brown fox jumps over the lazy dog '.repeat(40)}\n`.repeat(20)), { subject: `small ${i}`, type: 'text/plain', name: `log${i}.txt` })
      : messageWith(crypto.randomBytes(400 * 1024), { subject: `large ${i}` }),
  );
}

async function allExact(s: Store, ids: string[], msgs: Buffer[]): Promise<number> {
  let n = 0;
  for (const [i, id] of ids.entries()) if ((await s.fetchBuffer(id)).equals(msgs[i])) n++;
  return n;
}

describe('tier, repack and gc together: nothing acknowledged is lost, whatever gc\'s clock says', () => {
  for (const [name, gcOpts] of [
    ['gc --grace 0 on the same clock', { graceSeconds: 0 }],
    ['gc with the default grace and its clock two hours ahead', { now: () => Date.now() + 2 * HOUR }],
  ] as const) {
    it(`1. a pack whose PUT returns late, ${name}: its rows never point at a pack gc took back`, async () => {
      const t = await tiered((k) => k.length === 32);
      const msgs = mail(20, 'small');
      const ids = [];
      for (const m of msgs) ids.push((await t.s.ingest(m, { user: 'u' })).id);
      const tier = t.s.tier({ olderThanMs: 0 });
      await t.held;
      const g = await t.s.gc(gcOpts);
      t.release();
      const r = await tier;
      if (!('now' in gcOpts)) {
        // the builder's lease is live on gc's clock: the pack is left alone and published
        expect(g.deletedPacks).toBe(0);
        expect(r.packed).toBe(20);
      } else {
        // gc took it back (its clock says the builder is long gone): tier's publish finds that, the blobs stay hot
        expect(r.lost).toBe(20);
        expect(r.packed).toBe(0);
        expect(r.pendingUploads).toBe(20);
      }
      expect(await allExact(t.s, ids, msgs)).toBe(20);
      const c = await t.s.check();
      expect({ consistent: c.consistent, missing: c.missingBlobs, damaged: c.damagedMessages }).toEqual({ consistent: true, missing: [], damaged: [] });
      // and the next run moves them
      expect((await t.s.flush()).pendingUploads).toBe(0);
      expect(await allExact(t.s, ids, msgs)).toBe(20);
      expect((await t.s.check({ deep: true })).consistent).toBe(true);
      await t.s.close();
    });
  }

  it('2. a large blob whose cold PUT returns late while gc (clock two hours ahead) runs: the switch finds its lease revoked and keeps the hot copy', async () => {
    const t = await tiered((k) => k.length === 64);
    const msgs = mail(3, 'large');
    const ids = [];
    for (const m of msgs) ids.push((await t.s.ingest(m, { user: 'u' })).id);
    const tier = t.s.tier({ olderThanMs: 0 });
    await t.held;
    const g = await t.s.gc({ now: () => Date.now() + 2 * HOUR });
    expect(g.deletedOrphans).toBeGreaterThan(0); // the fresh cold copies, whose leases its clock says expired
    t.release();
    const r = await tier;
    expect(r.objects + r.lost).toBe(3);
    expect(r.lost).toBeGreaterThan(0);
    expect(await allExact(t.s, ids, msgs)).toBe(3);
    const c = await t.s.check();
    expect({ consistent: c.consistent, missing: c.missingBlobs }).toEqual({ consistent: true, missing: [] });
    expect((await t.s.flush()).pendingUploads).toBe(0);
    await t.s.gc({ graceSeconds: 0 });
    expect(await allExact(t.s, ids, msgs)).toBe(3);
    expect((await t.s.check({ deep: true })).consistent).toBe(true);
    await t.s.close();
  });

  it("3. gc's repack: a new pack whose PUT returns late while another gc (clock two hours ahead) runs: the entries stay in the old pack", async () => {
    const t = await tiered(() => false);
    const msgs = mail(30, 'small');
    const ids = [];
    for (const m of msgs) ids.push((await t.s.ingest(m, { user: 'u' })).id);
    expect((await t.s.flush()).packs).toBe(1);
    // most of the pack dies: the next gc deletes their rows, then rewrites the rest
    await t.s.expunge('u', ids.slice(0, 24));
    const keep = ids.slice(24);
    const kept = msgs.slice(24);
    let holdNext = true;
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    let landed!: () => void;
    const held = new Promise<void>((r) => (landed = r));
    (t.s.blobStore.cold as FaultBackend).hooks.afterPut = async (key) => {
      if (!holdNext || key.length !== 32) return;
      holdNext = false;
      landed();
      await released;
    };
    // (a pack must be older than the grace period to be repacked: this gc's clock is a minute ahead)
    const repack = t.s.gc({ graceSeconds: 0, now: () => Date.now() + 60_000 });
    await held;
    const other = await t.s.gc({ now: () => Date.now() + 2 * HOUR });
    // the pack being built (its builder's lease expired, on this gc's clock) is taken back; this gc repacks the old one itself
    expect(other.deletedPacks).toBeGreaterThanOrEqual(1);
    release();
    expect((await repack).repacked).toBe(0); // its publish found the pack taken back: nothing moved
    expect(await allExact(t.s, keep, kept)).toBe(6);
    expect((await t.s.check({ deep: true })).consistent).toBe(true);
    // one live pack is left, all of it live; the pack taken back keeps its record (its builder's late PUT landed
    // after gc deleted it: its object is known, and goes with the record), so nothing in the bucket is unexplained
    await t.s.gc({ graceSeconds: 0, now: () => Date.now() + 60_000 });
    const packs = t.s.db.prepare('SELECT live, size FROM packs WHERE live >= 0').all() as { live: number; size: number }[];
    expect(packs).toHaveLength(1);
    expect(packs[0].live).toBe(packs[0].size);
    const names = new Set((t.s.db.prepare('SELECT name FROM packs').all() as { name: string }[]).map((p) => p.name));
    const coldKeys: string[] = [];
    for await (const o of t.coldInner.list()) coldKeys.push(o.key);
    expect(coldKeys.filter((k) => k.length === 32 && !names.has(k))).toEqual([]);
    expect((await t.s.check()).coldOrphans).toEqual([]);
    // once no PUT of its builder can still land (the lease lifetime), the next gc removes object and record
    await t.s.gc({ graceSeconds: 0, now: () => Date.now() + 4 * HOUR });
    expect((t.s.db.prepare('SELECT count(*) AS n FROM packs WHERE live < 0').get() as { n: number }).n).toBe(0);
    const after: string[] = [];
    for await (const o of t.coldInner.list()) after.push(o.key);
    expect(after.filter((k) => k.length === 32)).toHaveLength(1);
    expect(await allExact(t.s, keep, kept)).toBe(6);
    expect((await t.s.check({ deep: true })).consistent).toBe(true);
    await t.s.close();
  });
});
