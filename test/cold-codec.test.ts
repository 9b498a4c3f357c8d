// Cold packs hold older mail better compressed: deflated entries are re-encoded
// with brotli as they are packed (src/cas/blob-codec.ts, src/tier/tier.ts).
// Local hot and cold backends, so this runs everywhere; the S3 path is the same
// code behind another backend (tier.test.ts).
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Store } from '../src/store.js';
import { FsBackend } from '../src/backend/fs-backend.js';
import { BlobCodec, brotliEncode, decodeWhole } from '../src/cas/blob-codec.js';
import { silentLogger } from '../src/util/logger.js';
import { messageWith } from './mailgen.js';
import { ROOT, tmpDir } from './helpers.js';

/** Real prose (this project's documents), from a seed-chosen place: what mail text compresses like. */
const PROSE = Buffer.concat(['README.md', 'docs/BENCHMARKS.md', 'docs/SCALE-OUT.md'].map((f) => fs.readFileSync(path.join(ROOT, f))));
function prose(n: number, seed: number): Buffer {
  const src = n < PROSE.length / 2 ? PROSE : Buffer.concat(Array.from({ length: Math.ceil((2 * n) / PROSE.length) }, () => PROSE));
  const at = (seed * 7919) % (src.length - n);
  return src.subarray(at, at + n);
}

async function tieredStore() {
  const dir = tmpDir();
  const cold = path.join(dir, 'cold');
  const s = await Store.open(dir, { backend: new FsBackend(path.join(dir, 'blobs')), coldBackend: new FsBackend(cold), logger: silentLogger });
  return { s, dir, cold };
}

const text = (body: Buffer, subject: string) => messageWith(body, { subject, type: 'text/plain', name: `${subject}.txt` });

describe('brotli for cold pack entries', () => {
  it('decodes what it encodes, and a damaged brotli stream is an error, never other bytes', async () => {
    const b = prose(50_000, 7);
    const z = await brotliEncode(b);
    expect(z.length).toBeLessThan(b.length / 2);
    expect(decodeWhole(z, BlobCodec.Brotli, b.length).equals(b)).toBe(true);
    const bad = Buffer.from(z);
    bad[Math.floor(bad.length / 2)] ^= 0x55;
    let out: Buffer | null = null;
    try {
      out = decodeWhole(bad, BlobCodec.Brotli, b.length);
    } catch {
      /* expected mostly */
    }
    // brotli has no checksum: a flip may decode; the caller's hash check is what catches it
    if (out) expect(out.equals(b)).toBe(false);
  });

  it('tier packs small deflated blobs into brotli frames (in arrival order); smaller, every message and range exact, check --deep clean', async () => {
    const { s } = await tieredStore();
    const msgs = [
      ...Array.from({ length: 24 }, (_, i) => text(prose(6000 + i * 4000, i + 1), `t${i}`)),
      ...Array.from({ length: 6 }, (_, i) => messageWith(crypto.randomBytes(5000 + i * 1000), { subject: `b${i}` })),
    ];
    const ids: string[] = [];
    for (const m of msgs) ids.push((await s.ingest(m, { user: 'u' })).id);
    const before = s.db.prepare('SELECT count(*) AS n, sum(stored) AS st FROM blobs WHERE codec = 1').get() as { n: number; st: number };
    expect(before.n).toBeGreaterThanOrEqual(24);

    const t = await s.tier({ olderThanMs: 0 });
    expect(t.packed).toBe(30);
    expect(t.recompressed).toBe(before.n);
    const rows = s.db.prepare('SELECT codec, stored, pack_offset, pack_length, frame_offset FROM blobs WHERE tier = 1').all() as { codec: number; stored: number; pack_offset: number; pack_length: number; frame_offset: number | null }[];
    const framed = rows.filter((r) => r.codec === BlobCodec.BrotliFrame);
    expect(framed.length).toBeGreaterThan(10);
    expect(new Set(framed.map((r) => r.pack_offset)).size).toBeLessThan(framed.length); // frames are shared
    // each frame's shares add up to the frame; every stored byte of the pack is accounted for once
    const frames = new Map<number, { len: number; sum: number }>();
    for (const r of framed) {
      const f = frames.get(r.pack_offset) ?? { len: r.pack_length, sum: 0 };
      f.sum += r.stored;
      frames.set(r.pack_offset, f);
    }
    for (const f of frames.values()) expect(f.sum).toBe(f.len);
    const pack = s.db.prepare('SELECT size, live FROM packs').get() as { size: number; live: number };
    expect(pack.live).toBe(pack.size);
    expect(rows.reduce((a, r) => a + r.stored, 0)).toBe(pack.size);
    const nowStored = rows.filter((r) => r.codec >= BlobCodec.Brotli).reduce((a, r) => a + r.stored, 0);
    expect(before.st - nowStored).toBe(t.recompressSavedBytes);
    expect(nowStored).toBeLessThan(before.st * 0.9);

    // reading them all in order: each frame fetched and decoded once (one GET for all its blobs), at once or one by one
    const pieces = new Set(rows.map((r) => r.pack_offset)).size;
    let r0 = s.readStats().reads;
    const all = await Promise.all(ids.map((id) => s.fetchBuffer(id)));
    for (let i = 0; i < msgs.length; i++) expect(all[i].equals(msgs[i])).toBe(true);
    expect(s.readStats().reads - r0).toBe(pieces);
    r0 = s.readStats().reads;
    for (let i = 0; i < msgs.length; i++) expect((await s.fetchBuffer(ids[i])).equals(msgs[i])).toBe(true);
    expect(s.readStats().reads - r0).toBe(rows.length - framed.length); // the frames are still cached; blobs of their own are read again
    expect((await s.access(ids[10]).buffer(1000, 2000)).equals(msgs[10].subarray(1000, 2000))).toBe(true);
    expect((await s.check({ deep: true })).consistent).toBe(true);
    await s.close();
  });

  it('gc repacks a pack whose frames lost blobs: the rest framed anew (no churn on the next run), exact; content ingested again while cold is shared', async () => {
    const { s } = await tieredStore();
    const msgs = Array.from({ length: 30 }, (_, i) => text(prose(5000 + i * 700, i + 50), `r${i}`));
    const ids: string[] = [];
    for (const m of msgs) ids.push((await s.ingest(m, { user: 'u' })).id);
    await s.tier({ olderThanMs: 0 });
    // every other message, then most of the rest: frames keep some blobs and lose others
    const gone = ids.filter((_, i) => i % 2 === 0 || i < 20);
    await s.expunge('u', gone);
    const g = await s.gc({ graceSeconds: 0 });
    expect(g.repacked).toBe(1);
    const packs = s.db.prepare('SELECT live, size FROM packs').all() as { live: number; size: number }[];
    expect(packs).toHaveLength(1);
    expect(packs[0].live).toBe(packs[0].size); // frames rebuilt from the blobs still here: nothing dead is carried over
    const left = ids.map((id, i) => ({ id, m: msgs[i] })).filter(({ id }) => !gone.includes(id));
    for (const { id, m } of left) expect((await s.fetchBuffer(id)).equals(m)).toBe(true);
    expect((await s.gc({ graceSeconds: 0 })).repacked).toBe(0);
    expect((await s.check({ deep: true })).consistent).toBe(true);
    // check watches the packs' live-byte figures (what repack decides by) and repair recomputes them
    s.db.prepare('UPDATE packs SET live = live + 1000 WHERE retired IS NULL').run();
    const drifted = await s.check();
    expect(drifted.consistent).toBe(false);
    expect(drifted.packDrift).toHaveLength(1);
    const fixed = await s.check({ repair: true });
    expect(fixed.repaired?.packs).toBe(1);
    expect((await s.check()).consistent).toBe(true);
    const again = await s.ingest(left[0].m, { user: 'v' });
    expect(again.newBlobBytes).toBe(0);
    expect((await s.fetchBuffer(again.id)).equals(left[0].m)).toBe(true);
    expect((await s.check()).consistent).toBe(true);
    await s.close();
  });

  it('large deflated objects go cold as brotli objects too (through a temp file); exact, ranges exact, check --deep clean', async () => {
    const { s, dir } = await tieredStore();
    const big = prose(1_500_000, 3);
    const m = text(big, 'big');
    const { id } = await s.ingest(m, { user: 'u' });
    const hot = s.db.prepare('SELECT codec, stored FROM blobs WHERE size >= 1000000').get() as { codec: number; stored: number };
    expect(hot.codec).toBe(BlobCodec.Deflate);
    expect(hot.stored).toBeGreaterThan(256 * 1024); // an object of its own, not a pack entry
    const hotKey = (s.db.prepare('SELECT hex(hash) AS h FROM blobs WHERE size >= 1000000').get() as { h: string }).h.toLowerCase();
    const hotFile = path.join(dir, 'blobs', hotKey.slice(0, 2), hotKey.slice(2, 4), hotKey);
    const hotBytes = fs.readFileSync(hotFile);
    const t = await s.tier({ olderThanMs: 0 });
    expect(t.objects).toBe(1);
    expect(t.recompressed).toBe(1);
    // a tier killed between the switch and deleting the hot copy leaves that copy: expected, reported, not an inconsistency; gc removes it
    expect(fs.existsSync(hotFile)).toBe(false);
    fs.writeFileSync(hotFile, hotBytes);
    const left = await s.check();
    expect({ consistent: left.consistent, stale: left.staleHotCopies, orphans: left.orphans }).toEqual({ consistent: true, stale: [hotKey], orphans: [] });
    expect((await s.gc({ graceSeconds: 0 })).deletedOrphans).toBe(1);
    expect(fs.existsSync(hotFile)).toBe(false);
    expect((await s.check()).staleHotCopies).toEqual([]);
    const cold = s.db.prepare('SELECT codec, stored, tier, pack FROM blobs WHERE size >= 1000000').get() as { codec: number; stored: number; tier: number; pack: number | null };
    expect(cold).toMatchObject({ codec: BlobCodec.Brotli, tier: 1, pack: null });
    expect(cold.stored).toBe(t.objectBytes);
    expect(hot.stored - cold.stored).toBe(t.recompressSavedBytes);
    expect((await s.fetchBuffer(id)).equals(m)).toBe(true);
    expect((await s.access(id).buffer(700_000, 900_000)).equals(m.subarray(700_000, 900_000))).toBe(true);
    expect((await s.check({ deep: true })).consistent).toBe(true);
    expect(fs.readdirSync(path.join(dir, 'tmp')).filter((f) => f.includes('brotli'))).toEqual([]); // the temp file is gone
    // expunged, then the same content again before gc: stored locally again; the cold object is a copy gc removes
    await s.expunge('u', [id]);
    const back = await s.ingest(m, { user: 'u' });
    const again = await s.check();
    expect({ consistent: again.consistent, stale: again.staleColdCopies, orphans: again.coldOrphans }).toEqual({ consistent: true, stale: [hotKey], orphans: [] });
    await s.gc({ graceSeconds: 0 });
    const clean = await s.check({ deep: true });
    expect({ consistent: clean.consistent, stale: clean.staleColdCopies }).toEqual({ consistent: true, stale: [] });
    expect((await s.fetchBuffer(back.id)).equals(m)).toBe(true);
    await s.close();
  });

  it('a damaged frame: fetch fails (E_INTEGRITY) only for messages whose blobs it holds, check --deep lists exactly the damaged blobs; the rest is exact', async () => {
    const { s, cold } = await tieredStore();
    const msgs = Array.from({ length: 12 }, (_, i) => text(prose(20_000 + i * 3000, 100 + i), `d${i}`));
    const ids: string[] = [];
    for (const m of msgs) ids.push((await s.ingest(m, { user: 'u' })).id);
    await s.tier({ olderThanMs: 0 });
    const e = s.db.prepare('SELECT b.pack_offset AS o, b.pack_length AS l, p.name, count(*) AS n FROM blobs b JOIN packs p ON p.id = b.pack WHERE b.codec = 3 GROUP BY b.pack_offset ORDER BY b.pack_offset LIMIT 1').get() as { o: number; l: number; name: string; n: number };
    expect(e.n).toBeGreaterThan(1);
    const fp = path.join(cold, e.name.slice(0, 2), e.name.slice(2, 4), e.name); // FsBackend's layout
    const bytes = fs.readFileSync(fp);
    bytes[e.o + Math.floor(e.l / 2)] ^= 0x20;
    fs.writeFileSync(fp, bytes);
    const results = await Promise.all(ids.map((id) => s.fetchBuffer(id).then((b) => b, (err) => err as Error)));
    const failed = results.filter((r) => r instanceof Error) as (Error & { code?: string })[];
    // blobs before the damage may still decode right (and are then exact); never more than the frame holds
    expect(failed.length).toBeGreaterThan(0);
    expect(failed.length).toBeLessThanOrEqual(e.n);
    for (const f of failed) expect(f.code).toBe('E_INTEGRITY');
    for (let i = 0; i < ids.length; i++) if (!(results[i] instanceof Error)) expect((results[i] as Buffer).equals(msgs[i])).toBe(true);
    const c = await s.check({ deep: true });
    expect(c.consistent).toBe(false);
    expect(c.corruptBlobs.length).toBe(failed.length);
    await s.close();
  });
});
