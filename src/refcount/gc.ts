import type { StoreContext } from '../store-context.js';
import { DEFAULT_GC_GRACE_SECONDS, DELETE_CONCURRENCY, GC_BATCH } from '../limits.js';
import { forEachLimit } from '../util/pool.js';
import { bumpCounter, sqliteError } from '../meta/db.js';
import { GENERATION } from '../meta/schema.js';

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
}

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
  const rep: GcReport = { dryRun: dry, deletedBlobs: 0, deletedBytes: 0, deletedOrphans: 0, deletedOrphanBytes: 0, expiredLeases: 0, keptLeased: 0 };
  const db = ctx.db;
  const backend = ctx.blobStore.backend;

  // 1. unreferenced blobs
  const pick = db.prepare(
    `SELECT hash, stored FROM blobs b WHERE refs <= 0 AND zero_since <= ? AND hash > ?
       AND NOT EXISTS (SELECT 1 FROM leases l WHERE l.hash = b.hash AND l.expires > ?)
     ORDER BY hash LIMIT ?`,
  );
  const leased = db.prepare(
    `SELECT count(*) AS n FROM blobs b WHERE refs <= 0 AND zero_since <= ?
       AND EXISTS (SELECT 1 FROM leases l WHERE l.hash = b.hash AND l.expires > ?)`,
  );
  const delRow = db.prepare('DELETE FROM blobs WHERE hash = ? AND refs <= 0');
  const delLeases = db.prepare('DELETE FROM leases WHERE hash = ?');
  let after: Buffer = Buffer.alloc(0);
  for (;;) {
    const n = await inWriteTxn(ctx, dry, async () => {
      const now = clock();
      const rows = pick.all(now - graceMs, after, now, GC_BATCH) as { hash: Buffer; stored: number }[];
      // the objects first (several at once: each is a request on an object store), then their rows, in this transaction
      if (!dry) await forEachLimit(rows, DELETE_CONCURRENCY, (r) => backend.delete(r.hash.toString('hex')));
      for (const r of rows) {
        if (!dry) {
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

  // 2. orphans: objects without a row and without a live lease
  const hasRow = db.prepare('SELECT 1 FROM blobs WHERE hash = ?');
  const liveLease = db.prepare('SELECT 1 FROM leases WHERE hash = ? AND expires > ?');
  let batch: { key: string; size: number }[] = [];
  const flush = async (): Promise<void> => {
    const todo = batch;
    batch = [];
    await inWriteTxn(ctx, dry, async () => {
      const now = clock();
      const doomed = todo.filter((o) => {
        const h = Buffer.from(o.key, 'hex');
        if (hasRow.get(h)) return false;
        if (liveLease.get(h, now)) {
          rep.keptLeased++;
          return false;
        }
        return true;
      });
      if (!dry) await forEachLimit(doomed, DELETE_CONCURRENCY, (o) => backend.delete(o.key));
      for (const o of doomed) {
        if (!dry) rep.expiredLeases += delLeases.run(Buffer.from(o.key, 'hex')).changes;
        rep.deletedOrphans++;
        rep.deletedOrphanBytes += o.size;
      }
    });
  };
  const cutoff = clock() - graceMs;
  for await (const o of backend.list()) {
    if (o.mtimeMs > cutoff) continue;
    const h = Buffer.from(o.key, 'hex');
    if (hasRow.get(h)) continue;
    batch.push({ key: o.key, size: o.size });
    if (batch.length >= GC_BATCH) await flush();
  }
  if (batch.length) await flush();

  // 3. expired leases whose blob is committed or gone
  if (!dry) {
    await inWriteTxn(ctx, false, async () => {
      const now = clock();
      const expired = db.prepare('SELECT DISTINCT hash FROM leases WHERE expires <= ?').all(now) as { hash: Buffer }[];
      for (const e of expired) {
        const committed = hasRow.get(e.hash) !== undefined;
        if (committed || !(await backend.stat(e.hash.toString('hex')))) {
          rep.expiredLeases += db.prepare('DELETE FROM leases WHERE hash = ? AND expires <= ?').run(e.hash, now).changes;
        }
      }
    });
  }
  ctx.log.info('gc', { ...rep });
  return rep;
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
