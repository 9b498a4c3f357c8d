import type { BlobIndex } from '../blob-index/blob-index.js';
import type { BlobStore } from '../cas/blob-store.js';
import { Leases } from '../blob-index/leases.js';
import { instanceCodec, type SharedBucket } from '../backend/shared-bucket.js';
import { Tier } from '../cas/blob-store.js';
import { GC_BATCH } from '../limits.js';

export interface ConvergeDeps {
  index: BlobIndex;
  blobStore: BlobStore;
  shared: SharedBucket;
  leaseTtlMs: number;
}

/**
 * Nodes that received the same new content at the same moment each upload
 * an instance of it (neither saw the other's yet). Later ingests all pick
 * the smallest instance id there is, so only such races leave copies. Here
 * a node moves its references from its instance to the smallest usable one
 * (the same R2-R4 steps as an ingest, under a lease of its own, and the
 * copy read back against its hash), then its old
 * marker is released and, once no node marks that copy, the collector
 * deletes it. A row is settled (not looked at again) once it is older than
 * the lease lifetime, past which no upload racing with its first one can
 * still commit. Costs one LIST per new shared blob per gc until then.
 */
export async function convergeInstances(deps: ConvergeDeps, clock: () => number): Promise<number> {
  const { index, shared: bucket } = deps;
  let moved = 0;
  let after: Buffer = Buffer.alloc(0);
  for (;;) {
    const rows = index.view.unsettledShared(after, GC_BATCH);
    for (const row of rows) {
      const found = (await bucket.instances(row.hash)).map((i) => i.instance).sort();
      for (const cand of found) {
        if (cand >= row.instance) break; // ours is the smallest usable one
        const token = Leases.newToken();
        const m = { hash: row.hash, instance: cand, token };
        await index.instances.reserve(token, m, clock() + deps.leaseTtlMs, clock());
        let switched = false;
        try {
          const stored = await bucket.markUsable(row.hash, cand, token);
          // the other copy is read whole once before this node relies on it (racing copies are rare)
          if (stored !== null && (await deps.blobStore.scan({ key: row.hash, codec: instanceCodec(cand), size: row.size, domainKey: null, tier: Tier.Shared, instance: cand })).ok) {
            switched = await index.instances.publish(token, row.hash, row.instance, cand, instanceCodec(cand), stored);
          }
        } finally {
          if (!switched) {
            await bucket.deleteMarker(row.hash, cand, token);
            await index.instances.unreserve(token, m);
          }
        }
        if (switched) {
          moved++;
          break;
        }
      }
      if (!found.length || (found[0] >= row.instance && clock() - row.created > deps.leaseTtlMs)) await index.instances.settle(row.hash, row.instance);
    }
    if (rows.length < GC_BATCH) return moved;
    after = rows[rows.length - 1].hash;
  }
}
