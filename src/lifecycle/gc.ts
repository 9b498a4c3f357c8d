import { Tier } from '../cas/blob-location.js';
import type { BlobStore } from '../cas/blob-store.js';
import type { BlobIndex, UnreferencedBlob } from '../blob-index/blob-index.js';
import { PACK_NAME_HEX } from '../blob-index/packs.js';
import { GC_BATCH, TEMP_MIN_AGE_MS } from '../limits.js';
import { removeTempsOlderThan } from '../util/temp-files.js';

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
  /** Temp files left by writers that stopped (older than the grace period, and 10 minutes at least), removed, and their bytes. */
  deletedTempFiles: number;
  deletedTempBytes: number;
  /** Expunge records (QRESYNC's VANISHED, sync) older than EXPUNGE_RECORD_DAYS forgotten. */
  prunedExpunges: number;
}

export interface GcDeps {
  index: BlobIndex;
  blobStore: BlobStore;
  /** The store's temp directory (spools, parts being written). */
  tmpDir: string;
}

export function emptyGcReport(dryRun: boolean): GcReport {
  return { dryRun, deletedBlobs: 0, deletedBytes: 0, deletedOrphans: 0, deletedOrphanBytes: 0, expiredLeases: 0, keptLeased: 0, repacked: 0, deletedPacks: 0, deletedMarkers: 0, converged: 0, deletedTempFiles: 0, deletedTempBytes: 0, prunedExpunges: 0 };
}

/**
 * Deletes blobs no committed message references, after the grace period,
 * and objects nothing points at; then leases with nothing left to protect.
 * Each deletion follows the blob index's retire rule (I2): the leases on a
 * candidate that gc's clock says expired are revoked in a committed
 * transaction first, and the object is deleted only inside a write
 * transaction (held across the deletion) that finds the candidate still
 * unwanted and without any lease. So a skewed clock can make gc reclaim
 * early (an ingest or tier run whose lease it revoked fails and retries),
 * never delete what a committed row or a live holder relies on. The object
 * is deleted before its row: a crash in between leaves an unreferenced row
 * without object, which vouches for nothing (an ingest puts or checks the
 * object of a row with no references).
 */
export async function collectGarbage(deps: GcDeps, rep: GcReport, graceMs: number, clock: () => number): Promise<void> {
  const { index, blobStore: store } = deps;
  const dry = rep.dryRun;

  // 1. unreferenced blobs: their object (in whichever tier), or their share of a pack
  let after: Buffer = Buffer.alloc(0);
  for (;;) {
    const now = clock();
    const cut = now - graceMs;
    const rows = index.view.unreferenced(cut, after, now, GC_BATCH);
    if (rows.length) after = rows[rows.length - 1].hash;
    if (dry) {
      for (const r of rows) {
        rep.deletedBlobs++;
        rep.deletedBytes += r.stored;
      }
    } else if (rows.length) {
      rep.expiredLeases += await index.retire.revoke(
        rows.map((r) => r.hash),
        now,
      );
      // (an instance in the bucket a cluster shares is not this node's to delete: its row goes, then its marker)
      const gone = await index.retire.deleteUnreferenced(rows, cut, (r: UnreferencedBlob) => store.tierBackend(r.tier).delete(r.hash.toString('hex')));
      rep.keptLeased += rows.length - gone.length;
      for (const r of gone) {
        rep.deletedBlobs++;
        rep.deletedBytes += r.stored;
      }
    }
    if (rows.length < GC_BATCH) break;
  }
  {
    const now = clock();
    rep.keptLeased += index.view.leasedUnreferenced(now - graceMs, now);
  }

  // 2. orphans: objects nothing points at (no row saying the blob is there, no live lease; packs not on record)
  for (const tier of store.cold ? [Tier.Primary, Tier.Cold] : [Tier.Primary]) {
    const backend = store.tierBackend(tier);
    let batch: { key: string; size: number }[] = [];
    const flush = async (): Promise<void> => {
      const todo = batch;
      batch = [];
      if (dry) {
        const now = clock();
        for (const o of todo) {
          if (o.key.length !== PACK_NAME_HEX && index.leases.isActive(Buffer.from(o.key, 'hex'), now)) rep.keptLeased++;
          else {
            rep.deletedOrphans++;
            rep.deletedOrphanBytes += o.size;
          }
        }
        return;
      }
      const now = clock();
      const live = todo.filter((o) => o.key.length !== PACK_NAME_HEX && index.leases.isActive(Buffer.from(o.key, 'hex'), now));
      rep.keptLeased += live.length;
      const dead = todo.filter((o) => !live.includes(o));
      rep.expiredLeases += await index.retire.revokeKeys(
        dead.map((o) => o.key),
        now,
      );
      const sizes = new Map(dead.map((o) => [o.key, o.size]));
      const { deleted, kept } = await index.retire.deleteUnwanted(
        tier,
        dead.map((o) => o.key),
        (k) => backend.delete(k),
      );
      rep.keptLeased += kept;
      for (const k of deleted) {
        rep.deletedOrphans++;
        rep.deletedOrphanBytes += sizes.get(k) ?? 0;
      }
    };
    const cutoff = clock() - graceMs;
    for await (const o of backend.list()) {
      if (o.mtimeMs > cutoff || index.view.wanted(tier, o.key, PACK_NAME_HEX)) continue;
      batch.push({ key: o.key, size: o.size });
      if (batch.length >= GC_BATCH) await flush();
    }
    if (batch.length) await flush();
  }

  // 3. expired leases whose blob is committed or whose object is gone
  if (!dry) rep.expiredLeases += await index.retire.dropExpiredLeases(clock(), async (h) => !(await store.backend.stat(h.toString('hex'))));

  // 4. temp files of writers that stopped (a kill mid-write): past the grace period, and never younger than a writer in flight may leave one
  for (const dir of [deps.tmpDir, store.backend.tempDir]) {
    if (!dir) continue;
    const olderThan = Math.max(graceMs, TEMP_MIN_AGE_MS);
    const t = dry ? { files: 0, bytes: 0 } : removeTempsOlderThan(dir, olderThan, clock());
    rep.deletedTempFiles += t.files;
    rep.deletedTempBytes += t.bytes;
  }
}
