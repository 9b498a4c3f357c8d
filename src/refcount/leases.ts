import crypto from 'node:crypto';
import os from 'node:os';
import type { Db } from '../meta/db.js';
import type { Statement } from 'better-sqlite3';

/**
 * Leases protect blobs an ingest is writing before its message commits:
 * gc never deletes a blob (row or object) that has an unexpired lease.
 * A lease is taken in its own committed transaction *before* the blob is
 * written, and released in the transaction that commits the message.
 */
export class Leases {
  private readonly ins: Statement;
  private readonly del: Statement;
  private readonly activeQ: Statement;
  private readonly anyQ: Statement;
  private readonly heldQ: Statement;
  private readonly renewQ: Statement;

  constructor(private readonly db: Db) {
    this.ins = db.prepare('INSERT OR REPLACE INTO leases(hash, token, expires) VALUES (?, ?, ?)');
    this.del = db.prepare('DELETE FROM leases WHERE token = ?');
    this.activeQ = db.prepare('SELECT 1 FROM leases WHERE hash = ? AND expires > ? LIMIT 1');
    this.anyQ = db.prepare('SELECT 1 FROM leases WHERE hash = ? LIMIT 1');
    this.heldQ = db.prepare('SELECT count(*) AS n FROM leases WHERE token = ?');
    this.renewQ = db.prepare('UPDATE leases SET expires = max(expires, ?) WHERE token = ?');
  }

  static newToken(): string {
    return `${os.hostname()}:${process.pid}:${crypto.randomBytes(6).toString('hex')}`;
  }

  /** Records leases on `hashes` (call inside a write transaction). */
  take(token: string, hashes: Iterable<Buffer>, expires: number): void {
    for (const h of hashes) this.ins.run(h, token, expires);
  }

  /** Releases every lease of `token` (inside the commit transaction, or after a failed ingest). */
  release(token: string): void {
    this.del.run(token);
  }

  /** How many leases of `token` still exist (gc removes a lease with the object it stopped protecting). */
  held(token: string): number {
    return (this.heldQ.get(token) as { n: number }).n;
  }

  /** Extends every lease of `token` that still exists; returns how many do. */
  renew(token: string, expires: number): number {
    return this.renewQ.run(expires, token).changes;
  }

  isActive(hash: Buffer, now: number): boolean {
    return this.activeQ.get(hash, now) !== undefined;
  }

  /** Any lease, expired or not: marks an object left by an ingest that never committed. */
  exists(hash: Buffer): boolean {
    return this.anyQ.get(hash) !== undefined;
  }

  get database(): Db {
    return this.db;
  }
}
