import type { Db } from '../meta/db.js';
import type { Statement } from 'better-sqlite3';

/** A blob referenced by a message being committed. */
export interface BlobRefInfo {
  hash: Buffer;
  /** References from this message (a blob used twice counts twice). */
  count: number;
  domain: string;
  size: number;
  stored: number;
  codec: number;
  contentType: string;
}

/**
 * Reference counts of blobs, kept in SQLite and changed only inside the
 * transaction that commits or expunges the message holding the references.
 */
export class Refcounts {
  private readonly insert: Statement;
  private readonly inc: Statement;
  private readonly dec: Statement;
  private readonly getRow: Statement;

  constructor(db: Db) {
    this.insert = db.prepare(
      `INSERT INTO blobs(hash, domain, size, stored, codec, refs, created, zero_since, content_type)
       VALUES (@hash, @domain, @size, @stored, @codec, @count, @now, NULL, @contentType)
       ON CONFLICT(hash) DO UPDATE SET refs = refs + excluded.refs, zero_since = NULL`,
    );
    this.inc = db.prepare('UPDATE blobs SET refs = refs + ?, zero_since = NULL WHERE hash = ?');
    this.dec = db.prepare('UPDATE blobs SET refs = refs - @count, zero_since = CASE WHEN refs - @count <= 0 THEN @now ELSE NULL END WHERE hash = @hash');
    this.getRow = db.prepare('SELECT hash, domain, size, stored, codec, refs FROM blobs WHERE hash = ?');
  }

  /** Call inside the commit transaction. */
  add(refs: Iterable<BlobRefInfo>, now: number): void {
    for (const r of refs) this.insert.run({ ...r, now });
  }

  /** Call inside the expunge transaction. */
  drop(refs: Iterable<{ hash: Buffer; count: number }>, now: number): void {
    for (const r of refs) this.dec.run({ hash: r.hash, count: r.count, now });
  }

  /** The blob row, or undefined when no committed message ever referenced it (or gc removed it). */
  row(hash: Buffer): BlobRow | undefined {
    return this.getRow.get(hash) as BlobRow | undefined;
  }

  /** Adds `by` to a blob that is known to exist (repair). */
  adjust(hash: Buffer, by: number): void {
    this.inc.run(by, hash);
  }
}

export interface BlobRow {
  hash: Buffer;
  domain: string;
  size: number;
  stored: number;
  codec: number;
  refs: number;
}

/** Counts references per blob key (hex) from a list of blob keys. */
export function countRefs(hashes: Buffer[]): Map<string, { hash: Buffer; count: number }> {
  const m = new Map<string, { hash: Buffer; count: number }>();
  for (const h of hashes) {
    const k = h.toString('hex');
    const e = m.get(k);
    if (e) e.count++;
    else m.set(k, { hash: h, count: 1 });
  }
  return m;
}
