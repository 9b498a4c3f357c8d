import crypto from 'node:crypto';
import { MailcasError } from '../errors.js';
import type { StoreContext } from '../store-context.js';
import type { PutSource } from '../backend/backend.js';
import { bufferSource } from '../backend/backend.js';
import { hashBuffer, newHasher } from '../cas/hash.js';
import { BlobCodec } from '../cas/blob-codec.js';
import { coldFile, packPieces, verifiedCanonical, type PackCandidate } from './cold-encoding.js';
import { immediate } from '../meta/db.js';
import { inWriteTxn } from '../refcount/gc.js';
import { forEachLimit } from '../util/pool.js';
import { Leases } from '../refcount/leases.js';
import { COLD_REENCODE_MAX_BYTES, PACK_ENTRY_MAX_BYTES, PACK_TARGET_BYTES, TIER_BATCH } from '../limits.js';
import { crashPoint } from '../util/crash-points.js';

export interface TierOptions {
  /** Move blobs created at least this long ago (0: all). */
  olderThanMs: number;
  /** Only blobs of at least this many canonical bytes. */
  minSize?: number;
  dryRun?: boolean;
  /** Stop after this many blobs (a background uploader works in small steps). */
  limit?: number;
  now?: () => number;
}

export interface TierReport {
  dryRun: boolean;
  /** Blobs moved as objects of their own, and their stored bytes (as moved). */
  objects: number;
  objectBytes: number;
  /** Blobs moved into packs, their stored bytes (as packed), and the packs written. */
  packed: number;
  packedBytes: number;
  packs: number;
  /** Of the moved: blobs re-encoded with brotli on the way, and the bytes that saved. */
  recompressed: number;
  recompressSavedBytes: number;
  /** Hot copies kept for now because an ingest in flight holds a lease on them (gc removes them later). */
  keptLeased: number;
  /** Blobs whose hot copy does not read back (marked corrupt, left where they are). */
  corrupt: string[];
  /** What is still hot and referenced after this run. */
  pendingUploads: number;
  pendingBytes: number;
}

interface Candidate {
  hash: Buffer;
  created: number;
  size: number;
  stored: number;
  codec: number;
  domain: string;
}

/**
 * Moves referenced blobs from the hot tier (local files) to the cold tier
 * (the bucket): large ones as objects of their own, small ones together in
 * packs. Each step is crash-safe: the cold copy is durable (and verified
 * against what the hot copy holds) before the metadata switches to it, and
 * the hot copy is deleted only after the switch, inside a write transaction
 * that finds no lease on it (an ingest confirming the hot copy), as gc
 * deletes. A crash leaves at worst an extra copy, which gc reclaims.
 */
export async function runTier(ctx: StoreContext, opts: TierOptions): Promise<TierReport> {
  const cold = ctx.blobStore.cold;
  if (!cold) throw new MailcasError('E_USAGE', 'this store has no cold tier (create it with init --s3 URL --tiered or --write-behind)');
  const hotBackend = ctx.blobStore.backend;
  const clock = opts.now ?? Date.now;
  const rep: TierReport = { dryRun: !!opts.dryRun, objects: 0, objectBytes: 0, packed: 0, packedBytes: 0, packs: 0, recompressed: 0, recompressSavedBytes: 0, keptLeased: 0, corrupt: [], pendingUploads: 0, pendingBytes: 0 };
  const pick = ctx.db.prepare(
    // in the order they arrived: neighbours in time share the most (frames compress them together)
    `SELECT hash, created, size, stored, codec, domain FROM blobs
     WHERE tier = 0 AND refs > 0 AND corrupt = 0 AND created <= ? AND size >= ? AND (created, hash) > (?, ?) ORDER BY created, hash LIMIT ?`,
  );
  let after: { created: number; hash: Buffer } = { created: -Infinity, hash: Buffer.alloc(0) };
  let done = 0;
  for (;;) {
    const want = Math.min(TIER_BATCH, (opts.limit ?? Infinity) - done);
    if (want <= 0) break;
    const rows = pick.all(clock() - opts.olderThanMs, opts.minSize ?? 0, after.created, after.hash, want) as Candidate[];
    if (!rows.length) break;
    after = rows[rows.length - 1];
    done += rows.length;
    if (opts.dryRun) {
      for (const r of rows) {
        if (r.stored <= PACK_ENTRY_MAX_BYTES) {
          rep.packed++;
          rep.packedBytes += r.stored;
        } else {
          rep.objects++;
          rep.objectBytes += r.stored;
        }
      }
      continue;
    }
    // verify each hot copy before it is copied anywhere: corruption is marked, never spread
    const good: { row: Candidate; small: PackCandidate | null }[] = [];
    await forEachLimit(rows, 4, async (r) => {
      const ok = await ctx.blobStore.scan({ key: r.hash, codec: r.codec, size: r.size, domainKey: ctx.domainKey(r.domain), tier: 0 });
      if (!ok.ok) {
        rep.corrupt.push(r.hash.toString('hex'));
        await ctx.writeLock.run(() => immediate(ctx.db, () => ctx.refcounts.markCorrupt(r.hash)));
        return;
      }
      if (r.stored > PACK_ENTRY_MAX_BYTES) return void good.push({ row: r, small: null });
      const hot = await readAll(hotBackend, r.hash.toString('hex'));
      // older mail is packed better compressed: deflated blobs are re-encoded with brotli (see cold-encoding.ts)
      const canonical = r.codec === BlobCodec.Deflate && r.size <= COLD_REENCODE_MAX_BYTES ? verifiedCanonical(hot, r, ctx.domainKey(r.domain)) : null;
      if (canonical === 'damaged') return; // damaged since scan read it: stays hot; the next run or a read finds out
      good.push({ row: r, small: { hash: r.hash, codec: r.codec, hot, canonical } });
    });
    const moved: Buffer[] = [];
    // large blobs: one object each
    await forEachLimit(
      good.filter((g) => !g.small),
      4,
      async ({ row }) => {
        const hex = row.hash.toString('hex');
        // a deflated object goes cold as brotli when that is smaller (re-encoded through a temp file)
        const re = row.codec === BlobCodec.Deflate ? await coldFile(() => streamOf(hotBackend, hex), row.stored, row, ctx.domainKey(row.domain), ctx.tmpDir) : null;
        if (re === 'damaged') return;
        // a lease while the cold copy is written: gc must not take it for an orphan before the switch
        const token = Leases.newToken();
        try {
          await ctx.writeLock.run(() => immediate(ctx.db, () => ctx.leases.take(token, [row.hash], Date.now() + ctx.leaseTtlMs)));
          const src: PutSource = re ? re.source : { size: row.stored, open: () => streamOf(hotBackend, hex) };
          const size = re ? re.size : row.stored;
          const codec = re ? BlobCodec.Brotli : row.codec;
          await cold.put(hex, src, { size, digest: re ? re.digest : await digestOf(hotBackend, hex) }, { overwrite: true }); // whatever was there, it is now these verified bytes
          const switched = await ctx.writeLock.run(() =>
            immediate(ctx.db, () => ctx.db.prepare('UPDATE blobs SET tier = 1, pack = NULL, codec = ?, stored = ? WHERE hash = ? AND tier = 0').run(codec, size, row.hash).changes),
          );
          crashPoint('tier-switched');
          if (switched) {
            rep.objects++;
            rep.objectBytes += size;
            if (re) {
              rep.recompressed++;
              rep.recompressSavedBytes += row.stored - size;
            }
            moved.push(row.hash);
          }
        } finally {
          re?.remove();
          await ctx.writeLock.run(() => immediate(ctx.db, () => ctx.leases.release(token)));
        }
      },
    );
    // small blobs: pieces (a blob, or a frame of several) in packs of about PACK_TARGET_BYTES
    const small = good
      .filter((g) => g.small)
      .sort((a, b) => a.row.created - b.row.created || Buffer.compare(a.row.hash, b.row.hash));
    const pieces = await packPieces(small.map((g) => g.small!));
    for (let i = 0; i < pieces.length; ) {
      const inPack: { piece: (typeof pieces)[number]; offset: number }[] = [];
      let size = 0;
      for (; i < pieces.length && (size < PACK_TARGET_BYTES || !inPack.length); i++) {
        inPack.push({ piece: pieces[i], offset: size });
        size += pieces[i].bytes.length;
      }
      const body = Buffer.concat(inPack.map((e) => e.piece.bytes), size);
      const name = crypto.randomBytes(16).toString('hex'); // 32 hex: never a blob key (64)
      // the pack is known before it is written: gc never takes it for an orphan (one that never gets entries is dropped after the grace period)
      const id = await ctx.writeLock.run(() => immediate(ctx.db, () => Number(ctx.db.prepare('INSERT INTO packs(name, size, live, created) VALUES (?, ?, 0, ?)').run(name, size, Date.now()).lastInsertRowid)));
      await cold.put(name, bufferSource(body), { size, digest: hashBuffer(body) });
      crashPoint('pack-written');
      const live = await ctx.writeLock.run(() =>
        immediate(ctx.db, () => {
          // a blob's codec, size and place switch together: a reader sees the old form or the new, whole
          const set = ctx.db.prepare('UPDATE blobs SET tier = 1, pack = ?, pack_offset = ?, pack_length = ?, frame_offset = ?, codec = ?, stored = ? WHERE hash = ? AND tier = 0');
          let n = 0;
          for (const { piece, offset } of inPack) {
            for (const m of piece.members) {
              if (!set.run(id, offset, piece.bytes.length, m.frameOffset, m.codec, m.stored, m.hash).changes) continue; // taken back by an ingest meanwhile
              n += m.stored;
              rep.packed++;
              rep.packedBytes += m.stored;
              if (m.codec !== BlobCodec.None && m.codec !== BlobCodec.Deflate) {
                rep.recompressed++;
                rep.recompressSavedBytes += m.saved;
              }
              moved.push(m.hash);
            }
          }
          ctx.db.prepare('UPDATE packs SET live = ?, retired = CASE WHEN ? = 0 THEN ? ELSE NULL END WHERE id = ?').run(n, n, Date.now(), id);
          return n;
        }),
      );
      if (live) rep.packs++;
    }
    // the hot copies, now that the metadata points at the cold ones
    await dropHotCopies(ctx, moved, rep, clock);
  }
  const p = pending(ctx);
  rep.pendingUploads = p.blobs;
  rep.pendingBytes = p.bytes;
  return rep;
}

/** Deletes hot copies whose row now says cold, unless an ingest in flight holds a lease on them. */
async function dropHotCopies(ctx: StoreContext, hashes: Buffer[], rep: TierReport, clock: () => number): Promise<void> {
  const still = ctx.db.prepare('SELECT 1 FROM blobs WHERE hash = ? AND tier = 1');
  const leased = ctx.db.prepare('SELECT 1 FROM leases WHERE hash = ? AND expires > ?');
  for (let i = 0; i < hashes.length; i += 64) {
    await inWriteTxn(ctx, false, async () => {
      const now = clock();
      const doomed = hashes.slice(i, i + 64).filter((h) => {
        if (!still.get(h)) return false;
        if (leased.get(h, now)) {
          rep.keptLeased++;
          return false;
        }
        return true;
      });
      await forEachLimit(doomed, 8, (h) => ctx.blobStore.backend.delete(h.toString('hex')));
    });
  }
}

/** Referenced blobs still in the hot tier (the write-behind backlog). */
export function pending(ctx: Pick<StoreContext, 'db'>): { blobs: number; bytes: number } {
  const r = ctx.db.prepare('SELECT count(*) AS n, coalesce(sum(stored), 0) AS b FROM blobs WHERE tier = 0 AND refs > 0').get() as { n: number; b: number };
  return { blobs: r.n, bytes: r.b };
}

async function readAll(b: StoreContext['blobStore']['backend'], key: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of streamOf(b, key)) parts.push(c);
  return Buffer.concat(parts);
}

async function* streamOf(b: StoreContext['blobStore']['backend'], key: string): AsyncGenerator<Buffer> {
  const s = await b.get(key);
  if (!s) throw new MailcasError('E_INTEGRITY', `blob ${key} is missing from the hot tier`, { data: { key, missing: true } });
  for await (const c of s) yield c as Buffer;
}

async function digestOf(b: StoreContext['blobStore']['backend'], key: string): Promise<Buffer> {
  const h = newHasher();
  for await (const c of streamOf(b, key)) h.update(c);
  return h.digest();
}
