import { BlobCodec, frameBytes } from '../cas/blob-codec.js';
import { packPieces, type PackCandidate } from '../tier/cold-encoding.js';
import type { StoreContext } from '../store-context.js';
import crypto from 'node:crypto';
import { DEFAULT_GC_GRACE_SECONDS, DELETE_CONCURRENCY, GC_BATCH, REPACK_BELOW } from '../limits.js';
import { bufferSource } from '../backend/backend.js';
import { hashBuffer } from '../cas/hash.js';
import { forEachLimit } from '../util/pool.js';
import { bumpCounter, immediate, sqliteError } from '../meta/db.js';
import { GENERATION } from '../meta/schema.js';
import { crashPoint } from '../util/crash-points.js';
import { convergeInstances } from '../cluster/converge.js';

export interface GcOptions {
  /** Blobs unreferenced (or orphaned) for less than this many seconds are kept. */
  graceSeconds?: number;
  /** Plan only: report what would be deleted. */
  dryRun?: boolean;
  /** The clock gc judges ages and lease expiry by (tests move it; safety never depends on it). */
  now?: () => number;
}

export interface GcReport {
  dryRun: boolean;
  /** Unreferenced blobs deleted (row and object). */
  deletedBlobs: number;
  deletedBytes: number;
  /** Objects with no metadata row (left by ingests that never committed) deleted. */
  deletedOrphans: number;
  deletedOrphanBytes: number;
  /** Expired leases removed. */
  expiredLeases: number;
  /** Candidates kept because an ingest in flight holds a lease on them. */
  keptLeased: number;
  /** Packs rewritten because most of their bytes were dead, and pack objects deleted. */
  repacked: number;
  deletedPacks: number;
  /** Node of a cluster: reference markers deleted from the shared bucket (no reference or ingest of this node needs them, for the grace period). */
  deletedMarkers: number;
  /** Node of a cluster: shared blobs whose references moved to the copy every node converges on (after racing uploads). */
  converged: number;
}

/**
 * A marker (alias m) that nothing on this node needs: no ingest holds a
 * lease on its blob (its own ingest is over, and none in flight may commit
 * another reference on the fast path, which relies on the markers already
 * there) and no reference of this node's rows is to its instance. Only such
 * markers are deleted, each in a write transaction that checks this again,
 * so no ingest can take a lease or commit meanwhile.
 */
export const UNNEEDED_MARKER = `NOT EXISTS (SELECT 1 FROM leases l WHERE l.token = m.token OR l.hash = m.hash)
  AND NOT EXISTS (SELECT 1 FROM blobs b WHERE b.hash = m.hash AND b.instance = m.instance AND b.tier = 2 AND b.refs > 0)`;

/**
 * Deletes blobs no committed message references, after the grace period,
 * in batches. Each batch runs inside one SQLite write transaction (BEGIN
 * IMMEDIATE) and re-checks, inside it, that the blob is still unreferenced
 * and not leased: an ingest must take its lease in a write transaction
 * too, so it either sees the blob gone (and writes it again) or gc sees its
 * lease. The object is deleted before its row, and the leases on it with
 * it (an ingest whose lease is gone cannot commit): a crash in between
 * leaves an unreferenced row without object, which vouches for nothing
 * (an ingest puts or checks the object of a row with no references).
 */
export async function runGc(ctx: StoreContext, opts: GcOptions = {}): Promise<GcReport> {
  const graceMs = (opts.graceSeconds ?? DEFAULT_GC_GRACE_SECONDS) * 1000;
  const clock = opts.now ?? Date.now;
  const dry = !!opts.dryRun;
  const rep: GcReport = { dryRun: dry, deletedBlobs: 0, deletedBytes: 0, deletedOrphans: 0, deletedOrphanBytes: 0, expiredLeases: 0, keptLeased: 0, repacked: 0, deletedPacks: 0, deletedMarkers: 0, converged: 0 };
  const db = ctx.db;
  const store = ctx.blobStore;

  // 1. unreferenced blobs: their object (in whichever tier), or their share of a pack
  const pick = db.prepare(
    `SELECT hash, stored, tier, pack, pack_length FROM blobs b WHERE refs <= 0 AND zero_since <= ? AND hash > ?
       AND NOT EXISTS (SELECT 1 FROM leases l WHERE l.hash = b.hash AND l.expires > ?)
     ORDER BY hash LIMIT ?`,
  );
  const leased = db.prepare(
    `SELECT count(*) AS n FROM blobs b WHERE refs <= 0 AND zero_since <= ?
       AND EXISTS (SELECT 1 FROM leases l WHERE l.hash = b.hash AND l.expires > ?)`,
  );
  const delRow = db.prepare('DELETE FROM blobs WHERE hash = ? AND refs <= 0');
  const delLeases = db.prepare('DELETE FROM leases WHERE hash = ?');
  const packShrinks = db.prepare('UPDATE packs SET live = live - ?, retired = CASE WHEN live - ? <= 0 THEN coalesce(retired, ?) ELSE retired END WHERE id = ?');
  let after: Buffer = Buffer.alloc(0);
  for (;;) {
    const n = await inWriteTxn(ctx, dry, async () => {
      const now = clock();
      const rows = pick.all(now - graceMs, after, now, GC_BATCH) as { hash: Buffer; stored: number; tier: number; pack: number | null; pack_length: number | null }[];
      // the objects first (several at once: each is a request on an object store), then their rows, in this transaction;
      // an instance in the bucket a cluster shares is not this node's to delete: its row goes, then its marker
      // (step 5), and the collector deletes the object once no node has a marker on it
      if (!dry)
        await forEachLimit(rows.filter((r) => r.pack === null && r.tier !== 2), DELETE_CONCURRENCY, async (r) => {
          await store.tierBackend(r.tier).delete(r.hash.toString('hex'));
          crashPoint('gc-deleted');
        });
      for (const r of rows) {
        if (!dry) {
          if (r.pack !== null) packShrinks.run(r.stored, r.stored, now, r.pack); // its share of the pack (of a frame, for framed entries)
          delRow.run(r.hash);
          rep.expiredLeases += delLeases.run(r.hash).changes; // expired ones only: live leases were excluded above
        }
        rep.deletedBlobs++;
        rep.deletedBytes += r.stored;
      }
      if (rows.length) after = rows[rows.length - 1].hash;
      if (rows.length && !dry) bumpCounter(db, GENERATION);
      return rows.length;
    });
    if (n < GC_BATCH) break;
  }
  {
    const now = clock();
    rep.keptLeased += (leased.get(now - graceMs, now) as { n: number }).n;
  }

  // 2. orphans: objects nothing points at (no row saying the blob is there, no live lease; packs not in the pack table)
  const inTier = db.prepare('SELECT 1 FROM blobs WHERE hash = ? AND tier = ? AND pack IS NULL');
  const knownPack = db.prepare('SELECT 1 FROM packs WHERE name = ?');
  const liveLease = db.prepare('SELECT 1 FROM leases WHERE hash = ? AND expires > ?');
  const wanted = (tier: number, key: string): boolean => (key.length === PACK_NAME_HEX ? !!knownPack.get(key) : !!inTier.get(Buffer.from(key, 'hex'), tier));
  for (const tier of store.cold ? [0, 1] : [0]) {
    const backend = store.tierBackend(tier);
    let batch: { key: string; size: number }[] = [];
    const flush = async (): Promise<void> => {
      const todo = batch;
      batch = [];
      await inWriteTxn(ctx, dry, async () => {
        const now = clock();
        const doomed = todo.filter((o) => {
          if (wanted(tier, o.key)) return false;
          if (o.key.length !== PACK_NAME_HEX && liveLease.get(Buffer.from(o.key, 'hex'), now)) {
            rep.keptLeased++;
            return false;
          }
          return true;
        });
        if (!dry) await forEachLimit(doomed, DELETE_CONCURRENCY, async (o) => {
          await backend.delete(o.key);
          crashPoint('gc-deleted');
        });
        for (const o of doomed) {
          if (!dry && o.key.length !== PACK_NAME_HEX) rep.expiredLeases += delLeases.run(Buffer.from(o.key, 'hex')).changes;
          rep.deletedOrphans++;
          rep.deletedOrphanBytes += o.size;
        }
      });
    };
    const cutoff = clock() - graceMs;
    for await (const o of backend.list()) {
      if (o.mtimeMs > cutoff || wanted(tier, o.key)) continue;
      batch.push({ key: o.key, size: o.size });
      if (batch.length >= GC_BATCH) await flush();
    }
    if (batch.length) await flush();
  }

  // 3. packs: rewrite those mostly dead, delete those retired long enough ago that no reader can still be using them
  if (store.cold && !dry) await packGc(ctx, rep, clock, graceMs);

  // 4. expired leases whose blob is committed or gone
  if (!dry) {
    const hasRow = db.prepare('SELECT 1 FROM blobs WHERE hash = ?');
    await inWriteTxn(ctx, false, async () => {
      const now = clock();
      const expired = db.prepare('SELECT DISTINCT hash FROM leases WHERE expires <= ?').all(now) as { hash: Buffer }[];
      for (const e of expired) {
        const committed = hasRow.get(e.hash) !== undefined;
        if (committed || !(await store.backend.stat(e.hash.toString('hex')))) {
          rep.expiredLeases += db.prepare('DELETE FROM leases WHERE hash = ? AND expires <= ?').run(e.hash, now).changes;
        }
      }
    });
  }
  // 5. node of a cluster: references onto the copy all nodes converge on, then markers nothing here needs any more
  if (store.shared && !dry) {
    rep.converged = await convergeInstances(ctx, clock);
    await markerGc(ctx, rep, clock, graceMs);
  }
  ctx.log.info('gc', { ...rep });
  return rep;
}

/**
 * Markers no reference or ingest of this node needs are deleted a grace
 * period after gc first finds them so (a fetch that located a blob just
 * before its references moved to another copy still finds the old one),
 * each batch in a write transaction that checks again.
 */
async function markerGc(ctx: StoreContext, rep: GcReport, clock: () => number, graceMs: number): Promise<void> {
  const db = ctx.db;
  const bucket = ctx.shared!;
  await ctx.writeLock.run(() =>
    immediate(db, () => {
      db.prepare(`UPDATE shared_markers AS m SET released = ? WHERE released IS NULL AND ${UNNEEDED_MARKER}`).run(clock());
      db.prepare(`UPDATE shared_markers AS m SET released = NULL WHERE released IS NOT NULL AND NOT (${UNNEEDED_MARKER})`).run();
    }),
  );
  const pick = db.prepare(`SELECT hash, instance, token FROM shared_markers m WHERE released <= ? AND ${UNNEEDED_MARKER} ORDER BY hash, instance, token LIMIT ?`);
  for (;;) {
    const n = await inWriteTxn(ctx, false, async () => {
      const rows = pick.all(clock() - graceMs, GC_BATCH) as { hash: Buffer; instance: string; token: string }[];
      await forEachLimit(rows, DELETE_CONCURRENCY, async (m) => {
        await bucket.deleteMarker(m.hash, m.instance, m.token);
        crashPoint('gc-marker-deleted');
      });
      for (const m of rows) rep.deletedMarkers += ctx.markers.forget(m);
      return rows.length;
    });
    if (n < GC_BATCH) break;
  }
}

/** Pack names are 32 hex characters; blob keys 64. */
export const PACK_NAME_HEX = 32;

/**
 * Rewrites packs whose live bytes fell below REPACK_BELOW of their size:
 * the live entries, each verified, go into a new pack, which is durable
 * before the rows move to it (only rows still in the old pack); the old
 * pack is retired. Retired packs (and packs that never got an entry: a tier
 * run that died) are deleted once the grace period has passed since,
 * so a reader that found a row just before the move still finds its bytes.
 */
async function packGc(ctx: StoreContext, rep: GcReport, clock: () => number, graceMs: number): Promise<void> {
  const db = ctx.db;
  const cold = ctx.blobStore.cold!;
  const sparse = db.prepare(`SELECT id, name, size, live FROM packs WHERE retired IS NULL AND live < size * ${REPACK_BELOW} AND created <= ?`).all(clock() - graceMs) as {
    id: number;
    name: string;
    size: number;
    live: number;
  }[];
  for (const p of sparse) {
    const entries = db.prepare('SELECT hash, size, stored, codec, domain, pack_offset, pack_length, frame_offset FROM blobs WHERE pack = ? ORDER BY pack_offset').all(p.id) as {
      hash: Buffer;
      size: number;
      stored: number;
      codec: number;
      domain: string;
      pack_offset: number;
      pack_length: number;
      frame_offset: number | null;
    }[];
    // what stays: each piece as it is (a blob, or a frame all of whose blobs are still here), or,
    // for a frame some of whose blobs are gone, those that remain framed anew (so a repacked pack is whole)
    const byPiece = new Map<number, { bytes: Buffer; decoded?: Buffer | null; members: { e: (typeof entries)[number]; canonical: Buffer | null }[] }>();
    for (const e of entries) {
      const loc = { key: e.hash, codec: e.codec, size: e.size, domainKey: ctx.domainKey(e.domain), tier: 1, pack: { name: p.name, offset: e.pack_offset, length: e.pack_length, frameOffset: e.frame_offset } };
      if (!(await ctx.blobStore.scan(loc)).ok) continue; // a damaged entry stays where it is (check reports it)
      let piece = byPiece.get(e.pack_offset);
      if (!piece) {
        const s = await cold.get(p.name, { start: e.pack_offset, end: e.pack_offset + e.pack_length });
        const parts: Buffer[] = [];
        for await (const c of s!) parts.push(c as Buffer);
        piece = { bytes: Buffer.concat(parts), members: [] };
        byPiece.set(e.pack_offset, piece);
      }
      let canonical: Buffer | null = null;
      if (e.codec === BlobCodec.BrotliFrame) {
        // the frame decoded once for all its blobs
        if (piece.decoded === undefined) {
          try {
            piece.decoded = frameBytes(piece.bytes);
          } catch {
            piece.decoded = null; // damaged since scan read it: its blobs stay where they are
          }
        }
        const at = e.frame_offset ?? 0;
        canonical = piece.decoded && piece.decoded.length >= at + e.size ? piece.decoded.subarray(at, at + e.size) : null;
        if (!canonical || !hashBuffer(canonical, ctx.domainKey(e.domain) ?? undefined).equals(e.hash)) continue; // changed since scan read it: stays where it is
      }
      piece.members.push({ e, canonical });
    }
    const out: { bytes: Buffer; members: { hash: Buffer; codec: number; stored: number; frameOffset: number | null; reframed: boolean }[] }[] = [];
    const loose: PackCandidate[] = [];
    for (const piece of byPiece.values()) {
      const framed = piece.members.filter((m) => m.canonical);
      const whole = !framed.length || framed.reduce((a, m) => a + m.e.size, 0) === piece.decoded!.length;
      if (whole) out.push({ bytes: piece.bytes, members: piece.members.map((m) => ({ hash: m.e.hash, codec: m.e.codec, stored: m.e.stored, frameOffset: m.e.frame_offset, reframed: false })) });
      else for (const m of framed) loose.push({ hash: m.e.hash, codec: BlobCodec.None, hot: m.canonical!, canonical: m.canonical! });
    }
    for (const piece of await packPieces(loose)) out.push({ bytes: piece.bytes, members: piece.members.map((m) => ({ ...m, reframed: true })) });
    let newId: number | null = null;
    if (out.length) {
      const body = Buffer.concat(out.map((k) => k.bytes));
      const name = crypto.randomBytes(16).toString('hex');
      newId = await ctx.writeLock.run(() => immediate(db, () => Number(db.prepare('INSERT INTO packs(name, size, live, created) VALUES (?, ?, 0, ?)').run(name, body.length, Date.now()).lastInsertRowid)));
      await cold.put(name, bufferSource(body), { size: body.length, digest: hashBuffer(body) });
    }
    await ctx.writeLock.run(() =>
      immediate(db, () => {
        let off = 0;
        let live = 0;
        const move = db.prepare('UPDATE blobs SET pack = ?, pack_offset = ? WHERE hash = ? AND pack = ?');
        const reframe = db.prepare('UPDATE blobs SET pack = ?, pack_offset = ?, pack_length = ?, frame_offset = ?, codec = ?, stored = ? WHERE hash = ? AND pack = ?');
        for (const k of out) {
          for (const m of k.members) {
            const changed = m.reframed ? reframe.run(newId, off, k.bytes.length, m.frameOffset, m.codec, m.stored, m.hash, p.id).changes : move.run(newId, off, m.hash, p.id).changes;
            if (changed) live += m.stored;
          }
          off += k.bytes.length;
        }
        if (newId !== null) db.prepare('UPDATE packs SET live = ? WHERE id = ?').run(live, newId);
        db.prepare('UPDATE packs SET retired = ? WHERE id = ?').run(Date.now(), p.id);
      }),
    );
    rep.repacked++;
  }
  // retired (or never filled) packs that no row points at any more, past the grace period
  const dead = db
    .prepare(
      `SELECT id, name, size FROM packs p WHERE ((retired IS NOT NULL AND retired <= @cut) OR (live <= 0 AND created <= @cut))
         AND NOT EXISTS (SELECT 1 FROM blobs b WHERE b.pack = p.id)`,
    )
    .all({ cut: clock() - graceMs }) as { id: number; name: string; size: number }[];
  for (const p of dead) {
    await inWriteTxn(ctx, false, async () => {
      if ((db.prepare('SELECT count(*) AS n FROM blobs WHERE pack = ?').get(p.id) as { n: number }).n) return;
      await cold.delete(p.name);
      db.prepare('DELETE FROM packs WHERE id = ?').run(p.id);
      rep.deletedPacks++;
      rep.deletedOrphanBytes += p.size;
    });
  }
}

/**
 * Runs fn inside this process's write lock and one IMMEDIATE transaction
 * (none for a dry run) that stays open across fn's awaits: backend
 * deletions happen while no other writer can take a lease.
 */
export async function inWriteTxn<T>(ctx: StoreContext, dry: boolean, fn: () => Promise<T>): Promise<T> {
  return ctx.writeLock.run(async () => {
    if (dry) return fn();
    try {
      ctx.db.exec('BEGIN IMMEDIATE');
    } catch (e) {
      throw sqliteError(e);
    }
    try {
      const r = await fn();
      ctx.db.exec('COMMIT');
      return r;
    } catch (e) {
      if (ctx.db.inTransaction) ctx.db.exec('ROLLBACK');
      throw sqliteError(e);
    }
  });
}
