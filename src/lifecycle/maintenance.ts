import type { BlobIndex } from '../blob-index/blob-index.js';
import type { BlobStore } from '../cas/blob-store.js';
import type { SharedBucket } from '../backend/shared-bucket.js';
import type { Logger } from '../util/logger.js';
import { DEFAULT_GC_GRACE_SECONDS, EXPUNGE_RECORD_DAYS } from '../limits.js';
import { collectGarbage, emptyGcReport, type GcOptions, type GcReport } from './gc.js';
import { repackSparse } from '../pack/repack.js';
import { convergeInstances } from '../cluster/converge.js';
import { collectMarkers } from '../cluster/marker-gc.js';

export interface MaintenanceDeps {
  index: BlobIndex;
  tmpDir: string;
  blobStore: BlobStore;
  shared: SharedBucket | null;
  log: Logger;
  leaseTtlMs: number;
  domainKey(domain: string): Buffer | null;
  /** Mailbox state: expunge records older than EXPUNGE_RECORD_DAYS are forgotten. */
  mail?: { pruneExpunged(before: number): Promise<number> };
}

/**
 * What `mailcas gc` runs, step by step: garbage (unreferenced blobs,
 * orphans, expired leases), then the cold tier's packs (rewrite the mostly
 * dead, delete the retired), then, on a node of a cluster, convergence on
 * one shared instance and the markers nothing needs any more. Each step
 * moves or deletes objects only through the blob index's transitions.
 */
export async function runMaintenance(deps: MaintenanceDeps, opts: GcOptions = {}): Promise<GcReport> {
  const graceMs = (opts.graceSeconds ?? DEFAULT_GC_GRACE_SECONDS) * 1000;
  const clock = opts.now ?? Date.now;
  const rep = emptyGcReport(!!opts.dryRun);
  await collectGarbage(deps, rep, graceMs, clock);
  if (deps.blobStore.cold && !rep.dryRun) {
    const r = await repackSparse(deps, graceMs, clock);
    rep.repacked += r.repacked;
    rep.deletedPacks += r.deletedPacks;
    rep.deletedOrphanBytes += r.deletedBytes;
  }
  if (deps.shared && !rep.dryRun) {
    rep.converged = await convergeInstances({ ...deps, shared: deps.shared }, clock);
    rep.deletedMarkers = await collectMarkers(deps.index, deps.shared, graceMs, clock);
  }
  if (deps.mail && !rep.dryRun) rep.prunedExpunges = await deps.mail.pruneExpunged(clock() - EXPUNGE_RECORD_DAYS * 86_400_000);
  deps.log.info('gc', { ...rep });
  return rep;
}
