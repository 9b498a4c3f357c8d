import crypto from 'node:crypto';
import os from 'node:os';
import type { Db } from '../meta/db.js';
import type { Statement } from 'better-sqlite3';

/**
 * Leases protect objects a step is writing or relying on before the row
 * that vouches for them commits: an ingest's new blobs, tier's cold copy,
 * a pack being built. A lease is taken in its own committed transaction
 * *before* the object is written; its holder renews it while it works and
 * may publish (commit a reference, switch a row) only in a transaction that
 * finds the lease still there. gc revokes a lease (deletes it, committed)
 * before it deletes what the lease protected, and deletes an object only in
 * a transaction that finds no lease on it at all: so whatever the clocks
 * say, a holder either publishes before the revocation (and gc sees the row)
 * or finds its lease gone and fails, keeping what it had.
 */
export class Leases {
  private readonly ins: Statement;
  private readonly del: Statement;
  private readonly activeQ: Statement;
  private readonly anyQ: Statement;
  private readonly heldQ: Statement;
  private readonly renewQ: Statement;
  private readonly revokeQ: Statement;
  private readonly revokeTokenQ: Statement;
  private readonly expiredQ: Statement;
  private readonly dropExpiredQ: Statement;

  constructor(db: Db) {
    this.ins = db.prepare('INSERT OR REPLACE INTO leases(hash, token, expires) VALUES (?, ?, ?)');
    this.del = db.prepare('DELETE FROM leases WHERE token = ?');
    this.activeQ = db.prepare('SELECT 1 FROM leases WHERE hash = ? AND expires > ? LIMIT 1');
    this.anyQ = db.prepare('SELECT 1 FROM leases WHERE hash = ? LIMIT 1');
    this.heldQ = db.prepare('SELECT count(*) AS n FROM leases WHERE token = ?');
    this.renewQ = db.prepare('UPDATE leases SET expires = max(expires, ?) WHERE token = ?');
    this.revokeQ = db.prepare('DELETE FROM leases WHERE hash = ? AND expires <= ?');
    this.revokeTokenQ = db.prepare('DELETE FROM leases WHERE token = ?');
    this.expiredQ = db.prepare('SELECT DISTINCT hash FROM leases WHERE expires <= ?');
    this.dropExpiredQ = db.prepare('DELETE FROM leases WHERE hash = ? AND expires <= ?');
  }

  static newToken(): string {
    return `${os.hostname()}:${process.pid}:${crypto.randomBytes(6).toString('hex')}`;
  }

  /** Records leases on `hashes` (call inside a write transaction). */
  take(token: string, hashes: Iterable<Buffer>, expires: number): void {
    for (const h of hashes) this.ins.run(h, token, expires);
  }

  /** Releases every lease of `token` (inside the publishing transaction, or after a failed step). */
  release(token: string): void {
    this.del.run(token);
  }

  /** How many leases of `token` still exist (gc revokes a lease before deleting what it protected). */
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

  /** Any lease, expired or not: somebody may still rely on the object (an expired one is revoked first). */
  exists(hash: Buffer): boolean {
    return this.anyQ.get(hash) !== undefined;
  }

  /** Revokes the leases on `hash` that have expired by `now` (gc's clock); returns how many. */
  revokeExpired(hash: Buffer, now: number): number {
    return this.revokeQ.run(hash, now).changes;
  }

  /** Revokes every lease of a builder (a pack gc takes back). */
  revokeToken(token: string): number {
    return this.revokeTokenQ.run(token).changes;
  }

  /** Blobs with a lease that has expired by `now`. */
  expiredHashes(now: number): Buffer[] {
    return (this.expiredQ.all(now) as { hash: Buffer }[]).map((r) => r.hash);
  }

  dropExpired(hash: Buffer, now: number): number {
    return this.dropExpiredQ.run(hash, now).changes;
  }
}
