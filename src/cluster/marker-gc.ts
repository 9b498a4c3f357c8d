import type { BlobIndex } from '../blob-index/blob-index.js';
import type { SharedBucket } from '../backend/shared-bucket.js';
import { GC_BATCH } from '../limits.js';

/**
 * Node of a cluster: markers no reference or ingest of this node needs are
 * deleted a grace period after gc first finds them so (a fetch that located
 * a blob just before its references moved to another copy still finds the
 * old one), each batch in a write transaction that checks again. Answers
 * how many went.
 */
export async function collectMarkers(index: BlobIndex, bucket: SharedBucket, graceMs: number, clock: () => number): Promise<number> {
  await index.instances.noteUnneededMarkers(clock());
  let deleted = 0;
  for (;;) {
    const { found, forgotten } = await index.instances.deleteReleasedMarkers(clock() - graceMs, GC_BATCH, (m) => bucket.deleteMarker(m.hash, m.instance, m.token));
    deleted += forgotten;
    if (found < GC_BATCH) return deleted;
  }
}
