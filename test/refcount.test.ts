import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Store } from '../src/store.js';
import { FsBackend } from '../src/backend/fs-backend.js';
import { FaultBackend } from '../src/backend/fault-backend.js';
import { tmpDir } from './helpers.js';
import { MemoryBackend } from '../src/backend/memory-backend.js';
import { freshBucket, s3Env } from './s3-env.js';
import { messageWith } from './mailgen.js';
import { silentLogger } from '../src/util/logger.js';

const open = (dir: string, extra: Partial<Parameters<typeof Store.open>[1]> = {}) => Store.open(dir, { logger: silentLogger, ...extra });
const blobFiles = (dir: string) =>
  fs
    .readdirSync(path.join(dir, 'blobs'), { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && !e.parentPath.includes('.tmp'))
    .map((e) => path.join(e.parentPath, e.name));

describe('reference counts, gc and check', () => {
  it('the same attachment across messages and users is one blob; counts follow ingest and expunge; gc honours the grace period', async () => {
    const dir = tmpDir();
    const s = await open(dir);
    const pdf = crypto.randomBytes(200_000);
    const a = await s.ingest(messageWith(pdf, { subject: 'one' }), { user: 'alice' });
    const b = await s.ingest(messageWith(pdf, { subject: 'two', lineLen: 72, eol: '\n' }), { user: 'bob' });
    expect(a.newBlobs).toBe(1);
    expect(b.newBlobs).toBe(0);
    const rows = s.db.prepare('SELECT refs FROM blobs WHERE size = ?').all(pdf.length) as { refs: number }[];
    expect(rows).toEqual([{ refs: 2 }]);

    await s.expunge('alice', [a.id]);
    expect((s.db.prepare('SELECT refs FROM blobs WHERE size = ?').get(pdf.length) as { refs: number }).refs).toBe(1);
    expect((await s.gc({ graceSeconds: 0 })).deletedBlobs).toBe(0);
    expect((await s.fetchBuffer(b.id)).equals(messageWith(pdf, { subject: 'two', lineLen: 72, eol: '\n' }))).toBe(true);

    await s.expunge('bob', [b.id]);
    expect((await s.gc({ graceSeconds: 3600 })).deletedBlobs).toBe(0); // within the grace period
    expect(blobFiles(dir).length).toBe(1);
    const dry = await s.gc({ graceSeconds: 0, dryRun: true });
    expect(dry.deletedBlobs).toBe(1);
    expect(blobFiles(dir).length).toBe(1);
    const g = await s.gc({ graceSeconds: 0 });
    expect(g.deletedBlobs).toBe(1);
    expect(blobFiles(dir)).toEqual([]);
    const c = await s.check();
    expect(c.consistent).toBe(true);
    expect(c.blobs).toBe(0);
    await s.close();
  });

  it('expunge is scoped to the owner, and a re-ingested blob with zero refs is reused, not rewritten', async () => {
    const dir = tmpDir();
    const s = await open(dir);
    const att = crypto.randomBytes(50_000);
    const a = await s.ingest(messageWith(att), { user: 'alice' });
    await expect(s.expunge('mallory', [a.id])).rejects.toMatchObject({ code: 'E_NOT_FOUND' });
    await s.expunge('alice', [a.id]);
    const again = await s.ingest(messageWith(att), { user: 'carol' });
    expect(again.newBlobs).toBe(0);
    expect((await s.gc({ graceSeconds: 0 })).deletedBlobs).toBe(0);
    expect((await s.fetchBuffer(again.id)).equals(messageWith(att))).toBe(true);
    await s.close();
  });

  it('a lease protects a blob written by an ingest that has not committed: gc --grace 0 during the ingest deletes nothing', async () => {
    const dir = tmpDir();
    let release!: () => void;
    const paused = new Promise<void>((r) => (release = r));
    let reached!: () => void;
    const atGate = new Promise<void>((r) => (reached = r));
    const fault = new FaultBackend(new FsBackend(path.join(dir, 'blobs')), {
      afterPut: async () => {
        reached();
        await paused;
      },
    });
    const s = await open(dir, { backend: fault });
    const att = crypto.randomBytes(100_000);
    const msg = messageWith(att);
    const ing = s.ingest(msg, { user: 'alice' });
    await atGate; // the blob is in the backend, the message not committed
    expect(blobFiles(dir).length).toBe(1);
    const g = await s.gc({ graceSeconds: 0 });
    expect(g.deletedOrphans).toBe(0);
    expect(g.keptLeased).toBeGreaterThan(0);
    const chk = await s.check();
    expect(chk.uncommitted.length).toBe(1);
    expect(chk.consistent).toBe(true);
    release();
    const r = await ing;
    expect((await s.fetchBuffer(r.id)).equals(msg)).toBe(true);
    expect((await s.check()).uncommitted).toEqual([]);
    await s.close();
  });

  const env = s3Env();
  const backends: [string, () => Promise<Partial<Parameters<typeof Store.open>[1]>>][] = [
    ['the filesystem', async () => ({})],
    ['memory', async () => ({ backend: new MemoryBackend() })],
    ...(env ? [['S3 (Ceph RGW)', async () => ({ s3: await freshBucket('race') })] as [string, () => Promise<Partial<Parameters<typeof Store.open>[1]>>]] : []),
  ];
  it.each(backends)('on %s: gc and check racing with ingest and expunge of the same content: no committed message lost, no false alarm', async (_name, backendOpts) => {
    const dir = tmpDir();
    const s = await open(dir, await backendOpts());
    const att = crypto.randomBytes(30_000);
    const kept: { id: string; bytes: Buffer }[] = [];
    let stop = false;
    const gcLoop = (async () => {
      // yield to the event loop between runs: on the memory backend a run never leaves the
      // microtask queue, and back-to-back runs would starve the ingest's file I/O
      while (!stop) { await s.gc({ graceSeconds: 0 }); await new Promise((r) => setImmediate(r)); }
    })();
    const checks: boolean[] = [];
    const checkLoop = (async () => {
      while (!stop) { checks.push((await s.check()).consistent); await new Promise((r) => setImmediate(r)); }
    })();
    for (let i = 0; i < 60; i++) {
      const m = messageWith(att, { subject: `n${i}` });
      const r = await s.ingest(m, { user: 'u' });
      if (i % 3 === 0) kept.push({ id: r.id, bytes: m });
      else await s.expunge('u', [r.id]);
    }
    stop = true;
    await gcLoop;
    await checkLoop;
    expect(checks.length).toBeGreaterThan(0);
    expect(checks.every(Boolean)).toBe(true);
    for (const k of kept) expect((await s.fetchBuffer(k.id)).equals(k.bytes)).toBe(true);
    expect((await s.check()).consistent).toBe(true);
    await s.close();
  });

  it('check finds refcount drift, missing rows, missing and corrupt blobs and orphans; --repair fixes what can be fixed', async () => {
    const dir = tmpDir();
    const s = await open(dir);
    const bin = crypto.randomBytes(80_000);
    const text = Buffer.from('A line of text that compresses well.\n'.repeat(3000));
    const m1 = messageWith(bin, { subject: 'bin' });
    const m2 = messageWith(text, { subject: 'text', type: 'text/plain', name: 'notes.txt' });
    const r1 = await s.ingest(m1, { user: 'u' });
    const r2 = await s.ingest(m2, { user: 'u' });
    expect((await s.check()).consistent).toBe(true);
    expect(s.db.prepare('SELECT codec FROM blobs ORDER BY codec').all()).toEqual([{ codec: 0 }, { codec: 1 }]);

    // drift
    s.db.prepare('UPDATE blobs SET refs = refs + 5 WHERE codec = 0').run();
    let c = await s.check();
    expect(c.consistent).toBe(false);
    expect(c.drift.length).toBe(1);
    c = await s.check({ repair: true });
    expect(c.repaired?.refcounts).toBe(1);
    expect((await s.check()).consistent).toBe(true);

    // a missing row for a referenced, compressed blob: recreated with the right codec
    s.db.prepare('DELETE FROM blobs WHERE codec = 1').run();
    c = await s.check();
    expect(c.missingRows.length).toBe(1);
    expect(c.consistent).toBe(false);
    await s.check({ repair: true });
    expect((await s.check()).consistent).toBe(true);
    expect((await s.fetchBuffer(r2.id)).equals(m2)).toBe(true);

    // an orphan object nobody wrote through mailcas
    const stray = path.join(dir, 'blobs', 'ab', 'cd', 'abcd'.padEnd(64, '0'));
    fs.mkdirSync(path.dirname(stray), { recursive: true });
    fs.writeFileSync(stray, 'stray');
    c = await s.check();
    expect(c.orphans).toEqual(['abcd'.padEnd(64, '0')]);
    expect(c.consistent).toBe(false);
    c = await s.check({ repair: true });
    expect(c.repaired?.orphansDeleted).toBe(1);
    expect(fs.existsSync(stray)).toBe(false);
    expect((await s.check()).consistent).toBe(true);

    // corrupt blob bytes: fetch fails loudly, deep check reports it
    const file = blobFiles(dir).find((f) => fs.statSync(f).size === bin.length)!;
    const orig = fs.readFileSync(file);
    const bad = Buffer.from(orig);
    bad[1000] ^= 1;
    fs.chmodSync(file, 0o644);
    fs.writeFileSync(file, bad);
    await expect(s.fetchBuffer(r1.id)).rejects.toMatchObject({ code: 'E_INTEGRITY' });
    c = await s.check({ deep: true });
    expect(c.corruptBlobs.length).toBe(1);
    expect(c.consistent).toBe(false);

    // a missing blob: data loss is reported and not "repaired" away
    fs.rmSync(file);
    c = await s.check({ repair: true });
    expect(c.missingBlobs.length).toBe(1);
    expect(c.consistent).toBe(false);
    await expect(s.fetchBuffer(r1.id)).rejects.toMatchObject({ code: 'E_INTEGRITY' });
    await s.close();
  });

  it('the same bytes declared with different content types, ingested at the same moment, are one blob that reads back for all', async () => {
    const dir = tmpDir();
    const s = await open(dir);
    // compressible bytes: a policy that looked at the declared type would store them both ways
    const data = Buffer.from('repetitive content that deflates well\n'.repeat(4000));
    const types = ['image/jpeg', 'text/plain', 'application/octet-stream', 'image/png', 'application/zip', 'text/html'];
    const msgs = types.map((type, i) => messageWith(data, { subject: `t${i}`, type, lineLen: [76, 72, 64][i % 3] }));
    for (let round = 0; round < 3; round++) {
      const rs = await Promise.all(msgs.map((m, i) => s.ingest(m, { user: `u${round}-${i}` })));
      for (const [i, r] of rs.entries()) expect((await s.fetchBuffer(r.id)).equals(msgs[i])).toBe(true);
    }
    expect(s.db.prepare('SELECT count(*) AS n FROM blobs WHERE size = ?').get(data.length)).toEqual({ n: 1 });
    expect((await s.check({ deep: true })).consistent).toBe(true);
    await s.close();
  });

  it('a backend outage fails the ingest with a transient error and stores nothing', async () => {
    const dir = tmpDir();
    const fault = new FaultBackend(new FsBackend(path.join(dir, 'blobs')), { failRate: 1 });
    const s = await open(dir, { backend: fault });
    const err = await s.ingest(messageWith(crypto.randomBytes(20_000)), { user: 'u' }).catch((e) => e);
    expect(err.code).toBe('E_BACKEND');
    expect(err.transient).toBe(true);
    expect(s.list('u')).toEqual([]);
    expect(s.db.prepare('SELECT count(*) AS n FROM leases').get()).toEqual({ n: 0 });
    fault.hooks = {};
    const ok = await s.ingest(messageWith(crypto.randomBytes(20_000)), { user: 'u' });
    expect(ok.id).toBeTruthy();
    expect((await s.check()).consistent).toBe(true);
    await s.close();
  });
});
