/**
 * Named points where the crash harness kills a process on purpose: with
 * MAILCAS_CRASH_AT=NAME (or NAME:N, the N-th time it is reached) the process
 * SIGKILLs itself there, as a power cut or an OOM kill would stop it. Unset
 * (always, outside the reliability tests) it costs one comparison. Points:
 *   blob-written    a blob is durable in the backend, its metadata not yet committed
 *   before-commit   an ingest's commit transaction is about to start
 *   after-commit    the commit is durable, the caller not yet told (no id printed, no 250)
 *   pack-written    tier: a pack is durable in the cold tier, its index rows not yet committed
 *   tier-switched   tier: a blob's row points at the cold copy, the hot copy not yet deleted
 *   gc-deleted      gc: an object is deleted, its row not yet removed
 *   marker-written  node of a cluster: a reference marker is in the shared bucket, the tombstone not yet checked
 *   gc-marker-deleted  node of a cluster: gc deleted a marker, its record not yet removed
 *   collect-tombstoned  collector: an instance is tombstoned, its markers not yet listed again
 *   collect-deleted collector: an instance's object is deleted, its tombstone not yet
 *   sync-sent       sync: a message and its pair record are stored on the peer, the sender's record not yet
 *   sync-expunged   sync: the partner of an expunged message is expunged, the pair records not yet removed
 *   sync-flags      sync: flags set on one side of a conflict, not yet on the other
 */
const spec = process.env.MAILCAS_CRASH_AT ?? '';
const [wanted, countText] = spec.split(':');
let left = Number(countText ?? 1) || 1;

export function crashPoint(name: string): void {
  if (!spec || name !== wanted) return;
  if (--left > 0) return;
  process.kill(process.pid, 'SIGKILL');
}
