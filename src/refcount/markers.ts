import type { Db } from '../meta/db.js';
import type { Statement } from 'better-sqlite3';

/** A node's reference marker on an instance in the shared bucket, as one ingest (its lease token) wrote it. */
export interface MarkerRecord {
  hash: Buffer;
  instance: string;
  token: string;
}

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

  constructor(db: Db) {
    this.ins = db.prepare('INSERT OR IGNORE INTO shared_markers(hash, instance, token, created) VALUES (?, ?, ?, ?)');
    this.del = db.prepare('DELETE FROM shared_markers WHERE hash = ? AND instance = ? AND token = ?');
  }

  record(m: MarkerRecord, now: number): void {
    this.ins.run(m.hash, m.instance, m.token, now);
  }

  /** Returns how many records went (0 or 1). */
  forget(m: MarkerRecord): number {
    return this.del.run(m.hash, m.instance, m.token).changes;
  }
}
