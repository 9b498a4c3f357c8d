import { DELETE_CONCURRENCY } from '../limits.js';
import { forEachLimit } from '../util/pool.js';
import { crashPoint } from '../util/crash-points.js';
import type { MarkerRecord } from './markers.js';
import type { IndexTables } from './index-tables.js';

/**
 * Node of a cluster: the blob index's transitions on instances in the bucket
 * the nodes share and on this node's reference markers (convergence on one
 * instance, marker collection, check --repair writing a marker again).
 */
export class SharedInstances {
  constructor(private readonly t: IndexTables) {}

  /** A marker's record in a transaction of its own (check --repair writes the marker after it). */
  recordMarkerNow(m: MarkerRecord, now = Date.now()): Promise<void> {
    return this.t.txn(() => this.t.markers.record(m, now));
  }  /** A lease and a marker record for an instance a node is about to reference (before the marker is written). */
  reserve(token: string, m: MarkerRecord, expires: number, now: number): Promise<void> {
    return this.t.txn(() => {
      this.t.leases.take(token, [m.hash], expires);
      this.t.markers.record(m, now);
    });
  }  /** I1 for convergence: references move from instance `from` to `to` if the lease is still held. */
  publish(token: string, hash: Buffer, from: string, to: string, codec: number, stored: number): Promise<boolean> {
    return this.t.txn(() => {
      const ok = this.t.leases.held(token) > 0 && this.t.q('UPDATE blobs SET instance = ?, codec = ?, stored = ?, settled = NULL WHERE hash = ? AND instance = ? AND tier = 2').run(to, codec, stored, hash, from).changes > 0;
      this.t.leases.release(token);
      return ok;
    });
  }  /** Undoes reserveInstance once the marker is deleted again. */
  unreserve(token: string, m: MarkerRecord): Promise<void> {
    return this.t.txn(() => {
      this.t.markers.forget(m);
      this.t.leases.release(token);
    });
  }  settle(hash: Buffer, instance: string): Promise<void> {
    return this.t.txn(() => void this.t.q('UPDATE blobs SET settled = 1 WHERE hash = ? AND instance = ?').run(hash, instance));
  }  noteUnneededMarkers(now: number): Promise<void> {
    return this.t.txn(() => this.t.markers.noteUnneeded(now));
  }  /**
   * Markers unneeded since before `cut`, deleted from the bucket (`del`) and
   * then from the record, in one write transaction that finds them still
   * unneeded; answers how many went.
   */
  deleteReleasedMarkers(cut: number, limit: number, del: (m: MarkerRecord) => Promise<void>): Promise<{ found: number; forgotten: number }> {
    return this.t.held(async () => {
      const rows = this.t.markers.released(cut, limit);
      await forEachLimit(rows, DELETE_CONCURRENCY, async (m) => {
        await del(m);
        crashPoint('gc-marker-deleted');
      });
      let forgotten = 0;
      for (const m of rows) forgotten += this.t.markers.forget(m);
      return { found: rows.length, forgotten };
    });
  }
}
