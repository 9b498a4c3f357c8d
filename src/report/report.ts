import { BlobIndexView } from '../blob-index/index-view.js';
import { MessageStats } from '../meta/message-stats.js';
import { dbSize, type Db } from '../meta/db.js';

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
  const msgs = new MessageStats(db);
  const m = msgs.totals();
  const blobs = new BlobIndexView(db);
  const b = blobs.totals();
  // every part as delivered vs canonical, split by where it is stored
  const p = msgs.parts();
  const databaseBytes = dbSize(db);
  const storedBytes = databaseBytes + b.stored;

  const metadataOverhead = Math.max(0, databaseBytes - m.head - m.inl);
  const byComponent: ComponentFigure[] = [
    { component: 'headers', logicalBytes: m.headerBytes, storedBytes: m.head },
    { component: 'inlineBodies', logicalBytes: p.inlRaw, storedBytes: m.inl },
    { component: 'blobs', logicalBytes: p.blobRaw, storedBytes: b.stored },
    { component: 'metadata', logicalBytes: 0, storedBytes: metadataOverhead },
  ];

  const blobTypes = blobs.storedByContentType();
  const inlineRatio = m.inlineRaw > 0 ? m.inl / m.inlineRaw : 1;
  const byContentType = msgs
    .byContentType()
    // inline parts are stored compressed with the rest of their message's inline bodies: each type gets its share of
    // that column at the store's inline compression ratio (blobs: their own stored bytes)
    .map((r) => ({ contentType: r.t || '(raw region)', parts: r.parts, logicalBytes: r.raw, storedBytes: Math.round(r.inl * inlineRatio) + (blobTypes.get(r.t) ?? 0) }))
    .slice(0, opts.contentTypes ?? 30);

  const refBytes = msgs.referencedBlobBytes();
  const byUser = msgs
    .byUser(opts.users ?? 100)
    .map((r) => ({ user: r.user, messages: r.n, logicalBytes: r.bytes, metadataBytes: r.meta, referencedBlobBytes: refBytes.get(r.user) ?? 0 }));

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
    for (const r of msgs.arrivals()) {
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
    splitFallbacks: msgs.splitFallbacks(),
    byComponent,
    byContentType,
    byUser,
    topShared,
    overTime,
  };
}
