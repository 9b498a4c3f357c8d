import type { SharedBucket } from '../backend/shared-bucket.js';
import { crashPoint } from '../util/crash-points.js';
import { DEFAULT_COLLECT_GRACE_SECONDS } from '../limits.js';
import type { Logger } from '../util/logger.js';

export interface CollectOptions {
  /** Instances younger than this are left alone (an upload whose marker is on its way). Liveness only. */
  graceSeconds?: number;
  dryRun?: boolean;
  now?: () => number;
}

export interface CollectReport {
  dryRun: boolean;
  /** Instances in the shared bucket when the listing was taken. */
  instances: number;
  /** Instances some node has a marker on. */
  referenced: number;
  /** Instances deleted (no marker before or after their tombstone). */
  deleted: number;
  deletedBytes: number;
  /** Instances closed by a tombstone but kept: a node's marker appeared after it (they take no new references). */
  closedKept: number;
  /** Tombstones removed whose object was already gone (a collector stopped between its two deletions). */
  staleTombstones: number;
  /** Left alone: younger than the grace period. */
  young: number;
}

/**
 * The collector of docs/SCALE-OUT.md (steps C1-C7): deletes the instances
 * in the shared bucket that no node has a reference marker on. Any node may
 * run it, several at once; it needs nothing but the bucket. Each instance is
 * closed with a tombstone before its markers are listed the second time, and
 * only deleted when that listing is empty too: a node that wrote its marker
 * before the tombstone is seen by the second listing, one that writes it
 * after sees the tombstone (or the object gone) and does not commit to it.
 */
export async function runCollect(bucket: SharedBucket, log: Logger, opts: CollectOptions = {}): Promise<CollectReport> {
  const clock = opts.now ?? Date.now;
  const dry = !!opts.dryRun;
  const cutoff = clock() - (opts.graceSeconds ?? DEFAULT_COLLECT_GRACE_SECONDS) * 1000;
  const rep: CollectReport = { dryRun: dry, instances: 0, referenced: 0, deleted: 0, deletedBytes: 0, closedKept: 0, staleTombstones: 0, young: 0 };
  // C1 (one pass over the listing; instances added meanwhile are the next pass's)
  for await (const o of bucket.objects.list()) {
    rep.instances++;
    if (o.mtimeMs > cutoff) {
      rep.young++;
      continue;
    }
    // C2
    if (await bucket.referenced(o.key)) {
      rep.referenced++;
      continue;
    }
    if (dry) {
      rep.deleted++;
      rep.deletedBytes += o.size;
      continue;
    }
    // C3, C4
    await bucket.putTombstone(o.key);
    crashPoint('collect-tombstoned');
    if (await bucket.referenced(o.key)) {
      rep.closedKept++;
      continue;
    }
    // C5, C6
    await bucket.objects.delete(o.key);
    crashPoint('collect-deleted');
    await bucket.deleteTombstone(o.key);
    rep.deleted++;
    rep.deletedBytes += o.size;
  }
  // C7: tombstones whose object is gone (a collector that stopped between C5 and C6)
  if (!dry) {
    for await (const t of bucket.tombstones()) {
      if (await bucket.objects.stat(t)) continue;
      await bucket.deleteTombstone(t);
      rep.staleTombstones++;
    }
  }
  log.info('collect', { ...rep });
  return rep;
}
