import type { Statement } from 'better-sqlite3';
import { statementCache, type Db } from '../meta/db.js';
import { UNNEEDED_MARKER } from './markers.js';
import type { PackRow } from './packs.js';

/** A blob row as check and report read it (with its pack's name). */
export interface IndexedBlob {
  hash: Buffer;
  refs: number;
  codec: number;
  size: number;
  stored: number;
  domain: string;
  corrupt: number;
  tier: number;
  pack_name: string | null;
  pack_offset: number | null;
  frame_offset: number | null;
  pack_length: number | null;
  instance: string | null;
}

/** A referenced blob still only in the hot tier, as tier picks them. */
export interface HotCandidate {
  hash: Buffer;
  created: number;
  size: number;
  stored: number;
  codec: number;
  domain: string;
}

/**
 * Read-only questions about the blob tables, on any connection: the
 * store's own, or a read-only snapshot (check). Every SELECT on blobs,
 * packs, leases and shared_markers outside the index's transitions is here.
 */
export class BlobIndexView {
  private readonly q: (sql: string) => Statement;
  constructor(readonly db: Db) {
    this.q = statementCache(db);
  }


  /** Every blob row with its pack's name. */
  rows(): IterableIterator<IndexedBlob> {
    return this.q(
      'SELECT b.hash, b.refs, b.codec, b.size, b.stored, b.domain, b.corrupt, b.tier, b.pack_offset, b.pack_length, b.frame_offset, b.instance, p.name AS pack_name FROM blobs b LEFT JOIN packs p ON p.id = b.pack',
    ).iterate() as IterableIterator<IndexedBlob>;
  }

  count(): number {
    return (this.q('SELECT count(*) AS n FROM blobs').get() as { n: number }).n;
  }

  /** Live packs whose live-byte figure differs from the stored bytes of the rows in them. */
  packDrift(): { pack: string; live: number; actual: number }[] {
    return (
      this.q('SELECT p.name AS pack, p.live, coalesce((SELECT sum(stored) FROM blobs b WHERE b.pack = p.id), 0) AS actual FROM packs p WHERE p.retired IS NULL AND p.token IS NULL').all() as {
        pack: string;
        live: number;
        actual: number;
      }[]
    ).filter((p) => p.live !== p.actual);
  }

  packNames(): Set<string> {
    return new Set((this.q('SELECT name FROM packs').all() as { name: string }[]).map((p) => p.name));
  }

  /** Any lease on the blob, expired or not. */
  leased(hash: Buffer): boolean {
    return this.q('SELECT 1 FROM leases WHERE hash = ? LIMIT 1').get(hash) !== undefined;
  }

  /** Node of a cluster: whether this node has a marker on record for the instance. */
  marked(hash: Buffer, instance: string): boolean {
    return this.q('SELECT 1 FROM shared_markers WHERE hash = ? AND instance = ? LIMIT 1').get(hash, instance) !== undefined;
  }

  markerTokens(hash: Buffer, instance: string): string[] {
    return (this.q('SELECT token FROM shared_markers WHERE hash = ? AND instance = ?').all(hash, instance) as { token: string }[]).map((r) => r.token);
  }

  unneededMarkers(): number {
    return (this.q(`SELECT count(*) AS n FROM shared_markers m WHERE ${UNNEEDED_MARKER}`).get() as { n: number }).n;
  }

  /** The dedup domains blobs were stored in. */
  domains(): string[] {
    return (this.q('SELECT DISTINCT domain FROM blobs').all() as { domain: string }[]).map((r) => r.domain);
  }

  /** Referenced blobs still in the hot tier (the write-behind backlog). */
  pending(): { blobs: number; bytes: number } {
    const r = this.q('SELECT count(*) AS n, coalesce(sum(stored), 0) AS b FROM blobs WHERE tier = 0 AND refs > 0').get() as { n: number; b: number };
    return { blobs: r.n, bytes: r.b };
  }

  /** Hot blobs tier may move, in the order they arrived, after (created, hash). */
  hotCandidates(cut: number, minSize: number, after: { created: number; hash: Buffer }, limit: number): HotCandidate[] {
    return this.q(
      `SELECT hash, created, size, stored, codec, domain FROM blobs
       WHERE tier = 0 AND refs > 0 AND corrupt = 0 AND created <= ? AND size >= ? AND (created, hash) > (?, ?) ORDER BY created, hash LIMIT ?`,
    ).all(cut, minSize, after.created, after.hash, limit) as HotCandidate[];
  }

  /** Unreferenced rows past `cut` without a lease active by `now`, after `after`. */
  unreferenced(cut: number, after: Buffer, now: number, limit: number): { hash: Buffer; stored: number; tier: number; pack: number | null }[] {
    return this.q(
      `SELECT hash, stored, tier, pack FROM blobs b WHERE refs <= 0 AND zero_since <= ? AND hash > ?
         AND NOT EXISTS (SELECT 1 FROM leases l WHERE l.hash = b.hash AND l.expires > ?)
       ORDER BY hash LIMIT ?`,
    ).all(cut, after, now, limit) as { hash: Buffer; stored: number; tier: number; pack: number | null }[];
  }

  /** Unreferenced rows past `cut` kept by a lease active by `now`. */
  leasedUnreferenced(cut: number, now: number): number {
    return (
      this.q(
        `SELECT count(*) AS n FROM blobs b WHERE refs <= 0 AND zero_since <= ?
           AND EXISTS (SELECT 1 FROM leases l WHERE l.hash = b.hash AND l.expires > ?)`,
      ).get(cut, now) as { n: number }
    ).n;
  }

  /** Whether an object named `key` in `tier` is wanted: a pack on record, or a blob whose row says it is there as an object of its own. */
  wanted(tier: number, key: string, packNameLength: number): boolean {
    if (key.length === packNameLength) return this.q('SELECT 1 FROM packs WHERE name = ?').get(key) !== undefined;
    return this.q('SELECT 1 FROM blobs WHERE hash = ? AND tier = ? AND pack IS NULL').get(Buffer.from(key, 'hex'), tier) !== undefined;
  }

  /** Live packs mostly dead, past `cut`. */
  sparsePacks(cut: number, below: number): PackRow[] {
    return this.q(`SELECT id, name, size, live FROM packs WHERE retired IS NULL AND token IS NULL AND live < size * ? AND created <= ?`).all(below, cut) as PackRow[];
  }

  /** Node of a cluster: referenced shared blobs not yet settled on the instance all nodes converge on. */
  unsettledShared(after: Buffer, limit: number): { hash: Buffer; instance: string; created: number; size: number }[] {
    return this.q('SELECT hash, instance, created, size FROM blobs WHERE tier = 2 AND refs > 0 AND corrupt = 0 AND settled IS NULL AND hash > ? ORDER BY hash LIMIT ?').all(after, limit) as {
      hash: Buffer;
      instance: string;
      created: number;
      size: number;
    }[];
  }

  // ---- the storage report (metadata only)

  totals(): { n: number; stored: number; size: number } {
    return this.q('SELECT count(*) AS n, coalesce(sum(stored), 0) AS stored, coalesce(sum(size), 0) AS size FROM blobs').get() as { n: number; stored: number; size: number };
  }

  storedByContentType(): Map<string, number> {
    const m = new Map<string, number>();
    for (const r of this.q("SELECT coalesce(content_type, '') AS t, sum(stored) AS s FROM blobs GROUP BY 1").all() as { t: string; s: number }[]) m.set(r.t, r.s);
    return m;
  }

  /** The blobs referenced more than once that save the most (with the parts that reference them). */
  topShared(limit: number): { hash: Buffer; size: number; stored: number; ct: string | null; refs: number; raw: number; names: string | null }[] {
    return this.q(
      `SELECT b.hash AS hash, b.size AS size, b.stored AS stored, b.content_type AS ct,
              count(*) AS refs, sum(p.raw_size) AS raw, group_concat(DISTINCT p.filename) AS names
       FROM blobs b JOIN parts p ON p.hash = b.hash
       WHERE b.refs > 1
       GROUP BY b.hash
       ORDER BY sum(p.raw_size) - b.stored DESC
       LIMIT ?`,
    ).all(limit) as { hash: Buffer; size: number; stored: number; ct: string | null; refs: number; raw: number; names: string | null }[];
  }
}
