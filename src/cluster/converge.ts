import type { StoreContext } from '../store-context.js';
import { Leases } from '../refcount/leases.js';
import { instanceCodec } from '../backend/shared-bucket.js';
import { Tier } from '../cas/blob-store.js';
import { immediate } from '../meta/db.js';
import { GC_BATCH } from '../limits.js';

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
export async function convergeInstances(ctx: StoreContext, clock: () => number): Promise<number> {
  const bucket = ctx.shared!;
  const db = ctx.db;
  let moved = 0;
  let after: Buffer = Buffer.alloc(0);
  for (;;) {
    const rows = db.prepare('SELECT hash, instance, created, size FROM blobs WHERE tier = 2 AND refs > 0 AND corrupt = 0 AND settled IS NULL AND hash > ? ORDER BY hash LIMIT ?').all(after, GC_BATCH) as {
      hash: Buffer;
      instance: string;
      created: number;
      size: number;
    }[];
    for (const row of rows) {
      const found = (await bucket.instances(row.hash)).map((i) => i.instance).sort();
      for (const cand of found) {
        if (cand >= row.instance) break; // ours is the smallest usable one
        const token = Leases.newToken();
        const m = { hash: row.hash, instance: cand, token };
        await ctx.writeLock.run(() =>
          immediate(db, () => {
            ctx.leases.take(token, [row.hash], clock() + ctx.leaseTtlMs);
            ctx.markers.record(m, clock());
          }),
        );
        let switched = false;
        try {
          const stored = await bucket.markUsable(row.hash, cand, token);
          // the other copy is read whole once before this node relies on it (racing copies are rare)
          if (stored !== null && (await ctx.blobStore.scan({ key: row.hash, codec: instanceCodec(cand), size: row.size, domainKey: null, tier: Tier.Shared, instance: cand })).ok) {
            switched = await ctx.writeLock.run(() =>
              immediate(db, () => {
                const ok =
                  ctx.leases.held(token) > 0 &&
                  db.prepare('UPDATE blobs SET instance = ?, codec = ?, stored = ?, settled = NULL WHERE hash = ? AND instance = ? AND tier = 2').run(cand, instanceCodec(cand), stored, row.hash, row.instance).changes > 0;
                ctx.leases.release(token);
                return ok;
              }),
            );
          }
        } finally {
          if (!switched) {
            await bucket.deleteMarker(row.hash, cand, token);
            await ctx.writeLock.run(() =>
              immediate(db, () => {
                ctx.markers.forget(m);
                ctx.leases.release(token);
              }),
            );
          }
        }
        if (switched) {
          moved++;
          break;
        }
      }
      if (!found.length || (found[0] >= row.instance && clock() - row.created > ctx.leaseTtlMs)) {
        await ctx.writeLock.run(() => immediate(db, () => db.prepare('UPDATE blobs SET settled = 1 WHERE hash = ? AND instance = ?').run(row.hash, row.instance)));
      }
    }
    if (rows.length < GC_BATCH) return moved;
    after = rows[rows.length - 1].hash;
  }
}
