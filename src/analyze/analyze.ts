import zlib from 'node:zlib';
import os from 'node:os';
import { Spool } from '../split/spool.js';
import { buildMessage, type BuiltMessage } from '../ingest/build-message.js';
import { packMessageLayout } from '../layout/packed-layout.js';
import { trainDictionary } from '../meta/dictionary.js';
import { compressionPromising, DEFAULT_COMPRESSION } from '../cas/blob-store.js';
import { expandSources, type ImportFormat } from '../importer/sources.js';
import { DEFAULT_INLINE_THRESHOLD, DEFAULT_MAX_MESSAGE_BYTES } from '../limits.js';
import { MailcasError } from '../errors.js';
import type { ContentTypeFigure, SharedPart } from '../report/report.js';

export interface AnalyzeOptions {
  format?: ImportFormat;
  inlineThreshold?: number;
  /** Dovecot's mail_attachment_min_size to compare with (default 128 KiB). */
  dovecotMinSize?: number;
  top?: number;
  onProgress?: (bytes: number) => void;
  onError?: (source: string, e: MailcasError) => void;
}

export interface DovecotEstimate {
  minSize: number;
  /** Parts Dovecot would extract: base64, not text/*, at least minSize. */
  attachments: number;
  uniqueAttachments: number;
  /** Message bytes left in the mail files plus distinct decoded attachments (no zlib). */
  storedBytes: number;
  bytesSaved: number;
}

export interface AnalyzeReport {
  messages: number;
  logicalBytes: number;
  /** What a mailcas store would hold: metadata (estimated) plus distinct blobs (compressed where it pays). */
  storedBytes: number;
  metadataBytes: number;
  headerBytes: number;
  inlineBytes: number;
  blobs: number;
  blobBytes: number;
  blobCanonicalBytes: number;
  dedupRatio: number;
  bytesSaved: number;
  byContentType: ContentTypeFigure[];
  topShared: SharedPart[];
  dovecot: DovecotEstimate;
  failed: number;
  seconds: number;
  mbPerSecond: number;
}

/** Metadata overhead per message and per part beyond the compressed layout (measured on the corpus store: rows, indexes, page slack). */
const ROW_OVERHEAD = 700;
const PART_OVERHEAD = 40;

/**
 * "What would mailcas save on my mail?" The same split, canonicalisation
 * and hashing as ingest, without writing anything: memory holds hash sets
 * only (one entry per distinct part).
 */
export async function analyze(paths: string[], opts: AnalyzeOptions = {}): Promise<AnalyzeReport> {
  const t0 = Date.now();
  const inlineThreshold = opts.inlineThreshold ?? DEFAULT_INLINE_THRESHOLD;
  const minSize = opts.dovecotMinSize ?? 128 * 1024;
  const blobs = new Map<string, BlobTally>();
  const dovecotSeen = new Map<string, number>();
  const types = new Map<string, { parts: number; raw: number; stored: number }>();
  let messages = 0;
  let logical = 0;
  let head = 0;
  let inline = 0;
  let meta = 0;
  let dovecotKept = 0;
  let dovecotAtt = 0;
  let failed = 0;
  let dict: { id: number; data: Buffer } | null = null;
  const sample: Buffer[] = [];

  const tmpDir = os.tmpdir();
  for (const src of expandSources(paths, opts.format ?? 'auto')) {
    let spool: Spool;
    try {
      if (src.error) throw src.error;
      spool = await Spool.from(src.input, { tmpDir, maxBytes: DEFAULT_MAX_MESSAGE_BYTES });
    } catch (e) {
      failed++;
      if (e instanceof MailcasError) opts.onError?.(src.label, e);
      opts.onProgress?.(src.size);
      continue;
    }
    let built: BuiltMessage | null = null;
    try {
      built = buildMessage(spool.source, { tmpDir, inlineThreshold, domainKey: null, decode: true, analysis: true });
      messages++;
      logical += spool.size;
      const packed = packMessageLayout(built.layout, dict);
      head += packed.head.length;
      inline += packed.inline?.length ?? 0;
      meta += ROW_OVERHEAD + PART_OVERHEAD * built.parts.length;
      if (!dict && sample.length < 2000) {
        for (const s of built.layout.segments) if (s.k === 'header') sample.push(s.bytes);
        if (messages === 256) dict = { id: 1, data: trainDictionary(sample) };
      }
      for (const p of built.parts) {
        const t = types.get(p.contentType || '(raw region)') ?? { parts: 0, raw: 0, stored: 0 };
        t.parts++;
        t.raw += p.rawSize;
        if (!p.hash) t.stored += p.size;
        types.set(p.contentType || '(raw region)', t);
        // Dovecot: base64 parts of minSize and more, not text/*, deduplicated by decoded content
        if (p.cte === 'base64' && !p.contentType.startsWith('text/') && p.rawSize >= minSize && p.recipe === 'base64') {
          dovecotAtt++;
          const k = p.hash?.toString('hex') ?? `inline:${p.size}`;
          if (!dovecotSeen.has(k)) dovecotSeen.set(k, p.size);
        } else {
          dovecotKept += p.rawSize;
        }
      }
      dovecotKept += built.layout.segments.reduce((a, s) => a + (s.k === 'part' ? 0 : s.bytes.length), 0);
      tallyBlobs(built, blobs, types);
    } catch (e) {
      failed++;
      if (e instanceof MailcasError) opts.onError?.(src.label, e);
      else throw e;
    } finally {
      built?.dispose();
      spool.dispose();
      opts.onProgress?.(src.size);
    }
  }
  let blobBytes = 0;
  let blobCanon = 0;
  for (const b of blobs.values()) {
    blobBytes += b.stored;
    blobCanon += b.size;
  }
  const metadataBytes = meta + head + inline;
  const storedBytes = metadataBytes + blobBytes;
  let dovecotUnique = 0;
  for (const v of dovecotSeen.values()) dovecotUnique += v;
  const dovecotStored = dovecotKept + dovecotUnique + messages * 200;
  const seconds = (Date.now() - t0) / 1000;
  const topShared = [...blobs]
    .filter(([, b]) => b.refs > 1)
    .map(([hash, b]) => ({ hash, size: b.size, refs: b.refs, contentType: b.type, filenames: [...b.names], bytesSaved: b.raw - b.stored }))
    .sort((a, b) => b.bytesSaved - a.bytesSaved)
    .slice(0, opts.top ?? 20);
  return {
    messages,
    logicalBytes: logical,
    storedBytes,
    metadataBytes,
    headerBytes: head,
    inlineBytes: inline,
    blobs: blobs.size,
    blobBytes,
    blobCanonicalBytes: blobCanon,
    dedupRatio: storedBytes ? logical / storedBytes : 0,
    bytesSaved: logical - storedBytes,
    byContentType: [...types]
      .map(([contentType, t]) => ({ contentType, parts: t.parts, logicalBytes: t.raw, storedBytes: t.stored }))
      .sort((a, b) => b.logicalBytes - a.logicalBytes)
      .slice(0, 30),
    topShared,
    dovecot: { minSize, attachments: dovecotAtt, uniqueAttachments: dovecotSeen.size, storedBytes: dovecotStored, bytesSaved: logical - dovecotStored },
    failed,
    seconds,
    mbPerSecond: seconds ? logical / 1e6 / seconds : 0,
  };
}

interface BlobTally {
  size: number;
  stored: number;
  refs: number;
  raw: number;
  type: string;
  names: Set<string>;
}

/** One message's blobs: counted once by content (bytes stored estimated the first time), their references and names every time. */
function tallyBlobs(built: BuiltMessage, blobs: Map<string, BlobTally>, types: Map<string, { parts: number; raw: number; stored: number }>): void {
  for (const [hex, need] of built.blobs) {
    const b = blobs.get(hex);
    const names = built.parts.filter((p) => p.hash?.toString('hex') === hex);
    const raw = names.reduce((a, p) => a + p.rawSize, 0);
    if (b) {
      b.refs += need.count;
      b.raw += raw;
      for (const p of names) if (p.filename && b.names.size < 10) b.names.add(p.filename);
    } else {
      const stored = estimateStored(need.data.buffer ?? need.data.sample ?? null, need.data.size);
      blobs.set(hex, { size: need.data.size, stored, refs: need.count, raw, type: need.contentType, names: new Set(names.map((p) => p.filename).filter((x): x is string => !!x)) });
      const t = types.get(need.contentType)!;
      if (t) t.stored += stored;
    }
  }
}

/** Blob bytes after compression, estimated on a leading sample (the store's own decision rule, within a few percent). */
function estimateStored(buf: Buffer | null, size: number): number {
  const c = DEFAULT_COMPRESSION;
  if (!buf || size < 256 || size > c.maxBytes || !compressionPromising(buf, c.minSaving)) return size;
  const sample = buf.subarray(0, 64 * 1024);
  const ratio = zlib.deflateRawSync(sample, { level: 6 }).length / sample.length;
  return ratio <= 1 - c.minSaving ? Math.round(size * ratio) : size;
}
