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
  /** Chunk digests of the canonical bytes (blobs over one chunk), or null. */
  chunks: Buffer | null;
  /** This ingest wrote the object or read it back whole: its codec and size are now the truth, and it is not corrupt. */
  confirmed: boolean;
  /**
   * The instance in the bucket a cluster's nodes share that this ingest
   * checked (marker written, no tombstone, object present). The row takes it
   * unless it already vouches for another one (references, not corrupt).
   */
  instance?: string;
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
  private readonly mark: Statement;
  private readonly leavePack: Statement;
  private readonly insertShared: Statement;

  constructor(db: Db) {
    this.insert = db.prepare(
      `INSERT INTO blobs(hash, domain, size, stored, codec, refs, created, zero_since, content_type, corrupt, chunks)
       VALUES (@hash, @domain, @size, @stored, @codec, @count, @now, NULL, @contentType, 0, @chunks)
       ON CONFLICT(hash) DO UPDATE SET refs = refs + excluded.refs, zero_since = NULL,
         codec = CASE WHEN @confirmed THEN excluded.codec ELSE codec END,
         stored = CASE WHEN @confirmed THEN excluded.stored ELSE stored END,
         corrupt = CASE WHEN @confirmed THEN 0 ELSE corrupt END,
         tier = CASE WHEN @confirmed THEN 0 ELSE tier END,
         pack = CASE WHEN @confirmed THEN NULL ELSE pack END,
         pack_offset = CASE WHEN @confirmed THEN NULL ELSE pack_offset END,
         pack_length = CASE WHEN @confirmed THEN NULL ELSE pack_length END,
         frame_offset = CASE WHEN @confirmed THEN NULL ELSE frame_offset END,
         chunks = coalesce(chunks, excluded.chunks)`,
    );
    // (SET expressions see the row as it was: "refs <= 0 OR corrupt" is the old row's)
    this.insertShared = db.prepare(
      `INSERT INTO blobs(hash, domain, size, stored, codec, refs, created, zero_since, content_type, corrupt, chunks, tier, instance)
       VALUES (@hash, @domain, @size, @stored, @codec, @count, @now, NULL, @contentType, 0, @chunks, 2, @instance)
       ON CONFLICT(hash) DO UPDATE SET refs = refs + excluded.refs, zero_since = NULL,
         codec = CASE WHEN refs <= 0 OR corrupt THEN excluded.codec ELSE codec END,
         stored = CASE WHEN refs <= 0 OR corrupt THEN excluded.stored ELSE stored END,
         tier = CASE WHEN refs <= 0 OR corrupt THEN 2 ELSE tier END,
         instance = CASE WHEN refs <= 0 OR corrupt THEN excluded.instance ELSE instance END,
         pack = CASE WHEN refs <= 0 OR corrupt THEN NULL ELSE pack END,
         pack_offset = CASE WHEN refs <= 0 OR corrupt THEN NULL ELSE pack_offset END,
         pack_length = CASE WHEN refs <= 0 OR corrupt THEN NULL ELSE pack_length END,
         frame_offset = CASE WHEN refs <= 0 OR corrupt THEN NULL ELSE frame_offset END,
         settled = CASE WHEN refs <= 0 OR corrupt THEN NULL ELSE settled END,
         corrupt = CASE WHEN refs <= 0 OR corrupt THEN 0 ELSE corrupt END,
         chunks = coalesce(chunks, excluded.chunks)`,
    );
    this.inc = db.prepare('UPDATE blobs SET refs = refs + ?, zero_since = NULL WHERE hash = ?');
    this.dec = db.prepare('UPDATE blobs SET refs = refs - @count, zero_since = CASE WHEN refs - @count <= 0 THEN @now ELSE NULL END WHERE hash = @hash');
    this.getRow = db.prepare(
      `SELECT b.hash, b.domain, b.size, b.stored, b.codec, b.refs, b.corrupt, b.chunks, b.tier, b.pack_offset, b.pack_length, b.frame_offset, b.instance, p.name AS pack_name
       FROM blobs b LEFT JOIN packs p ON p.id = b.pack WHERE b.hash = ?`,
    );
    // a blob written again where new blobs go leaves its old pack entry dead: the pack's live bytes drop
    this.leavePack = db.prepare('UPDATE packs SET live = live - (SELECT stored FROM blobs WHERE hash = @hash) WHERE id = (SELECT pack FROM blobs WHERE hash = @hash)');
    this.mark = db.prepare('UPDATE blobs SET corrupt = 1 WHERE hash = ?');
  }

  /** Call inside the commit transaction. */
  add(refs: Iterable<BlobRefInfo>, now: number): void {
    for (const r of refs) {
      if (r.instance) {
        this.insertShared.run({ hash: r.hash, domain: r.domain, size: r.size, stored: r.stored, codec: r.codec, count: r.count, now, contentType: r.contentType, chunks: r.chunks, instance: r.instance });
        continue;
      }
      if (r.confirmed) this.leavePack.run({ hash: r.hash });
      this.insert.run({ hash: r.hash, domain: r.domain, size: r.size, stored: r.stored, codec: r.codec, count: r.count, now, contentType: r.contentType, chunks: r.chunks, confirmed: r.confirmed ? 1 : 0 });
    }
  }

  /** Call inside the expunge transaction. */
  drop(refs: Iterable<{ hash: Buffer; count: number }>, now: number): void {
    for (const r of refs) this.dec.run({ hash: r.hash, count: r.count, now });
  }

  /** The blob row, or undefined when no committed message ever referenced it (or gc removed it). */
  row(hash: Buffer): BlobRow | undefined {
    return this.getRow.get(hash) as BlobRow | undefined;
  }

  /** Marks a blob whose object a read or scrub found missing or damaged: the next ingest of the same content rewrites it. */
  markCorrupt(hash: Buffer): void {
    this.mark.run(hash);
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
  corrupt: number;
  chunks: Buffer | null;
  tier: number;
  pack_name: string | null;
  pack_offset: number | null;
  frame_offset: number | null;
  pack_length: number | null;
  instance: string | null;
}

/** Where a blob row says its bytes are, for BlobStore.read / scan. */
export function placeOf(row: Pick<BlobRow, 'tier' | 'pack_name' | 'pack_offset' | 'pack_length' | 'frame_offset'> & { instance?: string | null }): {
  tier: number;
  pack: { name: string; offset: number; length: number; frameOffset: number | null } | null;
  instance: string | null;
} {
  return { tier: row.tier, instance: row.instance ?? null, pack: row.pack_name ? { name: row.pack_name, offset: row.pack_offset!, length: row.pack_length!, frameOffset: row.frame_offset ?? null } : null };
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
