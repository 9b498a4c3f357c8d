import type { Db } from './db.js';
import { counter } from './db.js';

/**
 * The storage report's questions about messages and parts (aggregates, from
 * the metadata alone): every statement on those tables lives in meta/.
 */
export class MessageStats {
  constructor(private readonly db: Db) {}

  totals(): { n: number; users: number; bytes: number; head: number; inl: number; headerBytes: number; layoutRaw: number; inlineRaw: number } {
    return this.db
      .prepare(
        `SELECT count(*) AS n, count(DISTINCT user) AS users, coalesce(sum(size), 0) AS bytes,
                coalesce(sum(length(layout)), 0) AS head, coalesce(sum(length(inline)), 0) AS inl,
                coalesce(sum(header_bytes), 0) AS headerBytes, coalesce(sum(layout_raw), 0) AS layoutRaw, coalesce(sum(inline_raw), 0) AS inlineRaw
         FROM messages`,
      )
      .get() as { n: number; users: number; bytes: number; head: number; inl: number; headerBytes: number; layoutRaw: number; inlineRaw: number };
  }

  /** Every part as delivered vs canonical, split by where it is stored. */
  parts(): { raw: number; canon: number; inlRaw: number; blobRaw: number; blobRefCanon: number } {
    return this.db
      .prepare(
        `SELECT coalesce(sum(raw_size), 0) AS raw, coalesce(sum(size), 0) AS canon,
                coalesce(sum(CASE WHEN hash IS NULL THEN raw_size END), 0) AS inlRaw,
                coalesce(sum(CASE WHEN hash IS NOT NULL THEN raw_size END), 0) AS blobRaw,
                coalesce(sum(CASE WHEN hash IS NOT NULL THEN size END), 0) AS blobRefCanon
         FROM parts`,
      )
      .get() as { raw: number; canon: number; inlRaw: number; blobRaw: number; blobRefCanon: number };
  }

  splitFallbacks(): number {
    return counter(this.db, 'split_fallbacks');
  }

  byContentType(): { t: string; parts: number; raw: number; inl: number }[] {
    return this.db
      .prepare(
        `SELECT content_type AS t, count(*) AS parts, sum(raw_size) AS raw, coalesce(sum(CASE WHEN hash IS NULL THEN size END), 0) AS inl
         FROM parts GROUP BY content_type ORDER BY raw DESC`,
      )
      .all() as { t: string; parts: number; raw: number; inl: number }[];
  }

  /** Canonical bytes of the blobs each user's messages reference. */
  referencedBlobBytes(): Map<string, number> {
    const m = new Map<string, number>();
    for (const r of this.db.prepare('SELECT m.user AS user, coalesce(sum(p.size), 0) AS s FROM parts p JOIN messages m ON m.id = p.message_id WHERE p.hash IS NOT NULL GROUP BY m.user').all() as {
      user: string;
      s: number;
    }[])
      m.set(r.user, r.s);
    return m;
  }

  byUser(limit: number): { user: string; n: number; bytes: number; meta: number }[] {
    return this.db
      .prepare(
        `SELECT user, count(*) AS n, sum(size) AS bytes, sum(length(layout)) + coalesce(sum(length(inline)), 0) AS meta
         FROM messages GROUP BY user ORDER BY bytes DESC LIMIT ?`,
      )
      .all(limit) as { user: string; n: number; bytes: number; meta: number }[];
  }

  /** Each message's received time, size and the bytes its ingest added, in arrival (id) order. */
  arrivals(): IterableIterator<{ received: number; size: number; added: number }> {
    return this.db.prepare('SELECT received, size, length(layout) + coalesce(length(inline), 0) + new_bytes AS added FROM messages ORDER BY id').iterate() as IterableIterator<{
      received: number;
      size: number;
      added: number;
    }>;
  }
}
