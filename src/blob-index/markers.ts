import type { Db } from '../meta/db.js';
import type { Statement } from 'better-sqlite3';

/** A node's reference marker on an instance in the shared bucket, as one ingest (its lease token) wrote it. */
export interface MarkerRecord {
  hash: Buffer;
  instance: string;
  token: string;
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
 * A node's record of its reference markers in the shared bucket (table
 * shared_markers, docs/SCALE-OUT.md): a marker is recorded, durably, before
 * it is written, and its record removed only after it is deleted, so every
 * marker this node has in the bucket is one it knows of. Call inside a
 * write transaction.
 */
export class Markers {
  private readonly ins: Statement;
  private readonly del: Statement;
  private readonly release: Statement;
  private readonly unrelease: Statement;
  private readonly releasedQ: Statement;

  constructor(db: Db) {
    this.ins = db.prepare('INSERT OR IGNORE INTO shared_markers(hash, instance, token, created) VALUES (?, ?, ?, ?)');
    this.del = db.prepare('DELETE FROM shared_markers WHERE hash = ? AND instance = ? AND token = ?');
    this.release = db.prepare(`UPDATE shared_markers AS m SET released = ? WHERE released IS NULL AND ${UNNEEDED_MARKER}`);
    this.unrelease = db.prepare(`UPDATE shared_markers AS m SET released = NULL WHERE released IS NOT NULL AND NOT (${UNNEEDED_MARKER})`);
    this.releasedQ = db.prepare(`SELECT hash, instance, token FROM shared_markers m WHERE released <= ? AND ${UNNEEDED_MARKER} ORDER BY hash, instance, token LIMIT ?`);
  }

  record(m: MarkerRecord, now: number): void {
    this.ins.run(m.hash, m.instance, m.token, now);
  }

  /** Returns how many records went (0 or 1). */
  forget(m: MarkerRecord): number {
    return this.del.run(m.hash, m.instance, m.token).changes;
  }

  /** Notes when each marker was first found unneeded (and clears the note of one needed again). */
  noteUnneeded(now: number): void {
    this.release.run(now);
    this.unrelease.run();
  }

  /** Markers unneeded since before `cut` (and still unneeded now). */
  released(cut: number, limit: number): MarkerRecord[] {
    return this.releasedQ.all(cut, limit) as MarkerRecord[];
  }
}
