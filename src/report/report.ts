import { BlobIndexView } from '../blob-index/index-view.js';
import type { Db } from '../meta/db.js';

/** A component of what the store occupies. */
export interface ComponentFigure {
  component: 'headers' | 'inlineBodies' | 'blobs' | 'metadata';
  /** What it held before compression/decoding (for blobs: the bytes its references stood for in the messages). */
  logicalBytes: number;
  storedBytes: number;
}

export interface ContentTypeFigure {
  contentType: string;
  parts: number;
  /** Bytes these parts took in the messages as delivered. */
  logicalBytes: number;
  /** Bytes stored for them: distinct blobs (after compression) plus inline canonical bytes. */
  storedBytes: number;
}

export interface UserFigure {
  user: string;
  messages: number;
  logicalBytes: number;
  /** Metadata this user's messages hold (compressed layouts and inline bodies). */
  metadataBytes: number;
  /** Canonical bytes of the blobs their messages reference (shared blobs counted for each user). */
  referencedBlobBytes: number;
}

export interface SharedPart {
  hash: string;
  /** Canonical size. */
  size: number;
  refs: number;
  contentType: string;
  filenames: string[];
  /** Bytes these references took in the messages minus what the one stored copy takes. */
  bytesSaved: number;
}

export interface TimePoint {
  /** Messages received up to this point. */
  until: string;
  messages: number;
  logicalBytes: number;
  /** Bytes the store had added by then (layouts, inline bodies and new blobs). */
  storedBytes: number;
}

export interface StorageReport {
  messages: number;
  users: number;
  /** Sum of message sizes as delivered. */
  logicalBytes: number;
  /** Everything the store occupies: database files plus blob bytes. */
  storedBytes: number;
  databaseBytes: number;
  inlineBytes: number;
  blobs: number;
  /** Bytes the blobs occupy in the backend (after compression). */
  blobBytes: number;
  /** Canonical (decoded, uncompressed) bytes of the blobs. */
  blobCanonicalBytes: number;
  /** logicalBytes / storedBytes; null for an empty store (nothing to compare). */
  dedupRatio: number | null;
  /** logicalBytes - storedBytes. */
  bytesSaved: number;
  /** Of the saving: bytes not stored because the same canonical content was already there. */
  dedupSaved: number;
  /** Of the saving: bytes removed by transfer-decoding (base64, quoted-printable) before storing. */
  decodeSaved: number;
  /** Of the saving: bytes removed by compression (headers with the trained dictionary, inline bodies, text blobs). */
  compressionSaved: number;
  splitFallbacks: number;
  /** Tiered stores: referenced blobs still only in the hot tier (the write-behind backlog), and their stored bytes. */
  pendingUploads?: number;
  pendingBytes?: number;
  byComponent: ComponentFigure[];
  byContentType: ContentTypeFigure[];
  byUser: UserFigure[];
  topShared: SharedPart[];
  overTime: TimePoint[];
}

export interface ReportOptions {
  top?: number;
  users?: number;
  contentTypes?: number;
}

/** The storage report, from metadata only: never reads a blob. */
export function buildReport(db: Db, opts: ReportOptions = {}): StorageReport {
  const top = opts.top ?? 20;
  const m = db
    .prepare(
      `SELECT count(*) AS n, count(DISTINCT user) AS users, coalesce(sum(size), 0) AS bytes,
              coalesce(sum(length(layout)), 0) AS head, coalesce(sum(length(inline)), 0) AS inl,
              coalesce(sum(header_bytes), 0) AS headerBytes, coalesce(sum(layout_raw), 0) AS layoutRaw, coalesce(sum(inline_raw), 0) AS inlineRaw
       FROM messages`,
    )
    .get() as { n: number; users: number; bytes: number; head: number; inl: number; headerBytes: number; layoutRaw: number; inlineRaw: number };
  const blobs = new BlobIndexView(db);
  const b = blobs.totals();
  // every part as delivered vs canonical, split by where it is stored
  const p = db
    .prepare(
      `SELECT coalesce(sum(raw_size), 0) AS raw, coalesce(sum(size), 0) AS canon,
              coalesce(sum(CASE WHEN hash IS NULL THEN raw_size END), 0) AS inlRaw,
              coalesce(sum(CASE WHEN hash IS NOT NULL THEN raw_size END), 0) AS blobRaw,
              coalesce(sum(CASE WHEN hash IS NOT NULL THEN size END), 0) AS blobRefCanon
       FROM parts`,
    )
    .get() as { raw: number; canon: number; inlRaw: number; blobRaw: number; blobRefCanon: number };
  const databaseBytes = dbSize(db);
  const storedBytes = databaseBytes + b.stored;
  const fb = db.prepare("SELECT value FROM counters WHERE name = 'split_fallbacks'").get() as { value: number } | undefined;

  const metadataOverhead = Math.max(0, databaseBytes - m.head - m.inl);
  const byComponent: ComponentFigure[] = [
    { component: 'headers', logicalBytes: m.headerBytes, storedBytes: m.head },
    { component: 'inlineBodies', logicalBytes: p.inlRaw, storedBytes: m.inl },
    { component: 'blobs', logicalBytes: p.blobRaw, storedBytes: b.stored },
    { component: 'metadata', logicalBytes: 0, storedBytes: metadataOverhead },
  ];

  const blobTypes = blobs.storedByContentType();
  const byContentType = (
    db
      .prepare(
        `SELECT content_type AS t, count(*) AS parts, sum(raw_size) AS raw, coalesce(sum(CASE WHEN hash IS NULL THEN size END), 0) AS inl
         FROM parts GROUP BY content_type ORDER BY raw DESC`,
      )
      .all() as { t: string; parts: number; raw: number; inl: number }[]
  )
    .map((r) => ({ contentType: r.t || '(raw region)', parts: r.parts, logicalBytes: r.raw, storedBytes: r.inl + (blobTypes.get(r.t) ?? 0) }))
    .slice(0, opts.contentTypes ?? 30);

  const refBytes = new Map<string, number>();
  for (const r of db
    .prepare('SELECT m.user AS user, coalesce(sum(p.size), 0) AS s FROM parts p JOIN messages m ON m.id = p.message_id WHERE p.hash IS NOT NULL GROUP BY m.user')
    .all() as { user: string; s: number }[])
    refBytes.set(r.user, r.s);
  const byUser = (
    db
      .prepare(
        `SELECT user, count(*) AS n, sum(size) AS bytes, sum(length(layout)) + coalesce(sum(length(inline)), 0) AS meta
         FROM messages GROUP BY user ORDER BY bytes DESC LIMIT ?`,
      )
      .all(opts.users ?? 100) as { user: string; n: number; bytes: number; meta: number }[]
  ).map((r) => ({ user: r.user, messages: r.n, logicalBytes: r.bytes, metadataBytes: r.meta, referencedBlobBytes: refBytes.get(r.user) ?? 0 }));

  const topShared = blobs.topShared(top).map((r) => ({
    hash: r.hash.toString('hex'),
    size: r.size,
    refs: r.refs,
    contentType: r.ct ?? '',
    filenames: r.names ? [...new Set(r.names.split(','))].slice(0, 10) : [],
    bytesSaved: r.raw - r.stored,
  }));

  // dedup over time: ~40 points over the messages in id (arrival) order
  const overTime: TimePoint[] = [];
  if (m.n) {
    const step = Math.max(1, Math.ceil(m.n / 40));
    let acc = { messages: 0, logical: 0, stored: 0 };
    let i = 0;
    for (const r of db.prepare('SELECT received, size, length(layout) + coalesce(length(inline), 0) + new_bytes AS added FROM messages ORDER BY id').iterate() as IterableIterator<{
      received: number;
      size: number;
      added: number;
    }>) {
      acc = { messages: acc.messages + 1, logical: acc.logical + r.size, stored: acc.stored + r.added };
      if (++i % step === 0 || i === m.n) overTime.push({ until: new Date(r.received).toISOString(), messages: acc.messages, logicalBytes: acc.logical, storedBytes: acc.stored });
    }
  }

  const dedupSaved = Math.max(0, p.blobRefCanon - b.size);
  const decodeSaved = Math.max(0, p.raw - p.canon);
  const compressionSaved = Math.max(0, b.size - b.stored) + Math.max(0, m.layoutRaw - m.head) + Math.max(0, m.inlineRaw - m.inl);
  return {
    messages: m.n,
    users: m.users,
    logicalBytes: m.bytes,
    storedBytes,
    databaseBytes,
    inlineBytes: m.inl,
    blobs: b.n,
    blobBytes: b.stored,
    blobCanonicalBytes: b.size,
    // an empty store saves nothing (its empty database is not a loss) and has no ratio
    dedupRatio: m.n && storedBytes ? m.bytes / storedBytes : null,
    bytesSaved: m.n ? m.bytes - storedBytes : 0,
    dedupSaved,
    decodeSaved,
    compressionSaved,
    splitFallbacks: fb?.value ?? 0,
    byComponent,
    byContentType,
    byUser,
    topShared,
    overTime,
  };
}

/**
 * Bytes the database occupies: its pages in use in the committed state
 * (what the file holds once the WAL is checkpointed). Free-list pages are
 * reusable space and not counted; the WAL file is transient and not counted.
 */
export function dbSize(db: Db): number {
  const pageSize = db.pragma('page_size', { simple: true }) as number;
  const pages = db.pragma('page_count', { simple: true }) as number;
  const free = db.pragma('freelist_count', { simple: true }) as number;
  return (pages - free) * pageSize;
}
