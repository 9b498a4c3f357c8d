import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { pipeline, Transform } from 'node:stream';
import { pipeline as pipelineAsync } from 'node:stream/promises';
import { promisify } from 'node:util';
import { MailcasError, isMailcasError } from '../errors.js';
import type { BlobBackend, PutOptions, PutSource } from '../backend/backend.js';
import { bufferSource } from '../backend/backend.js';
import { HASH_BYTES, hashBuffer, newHasher, toHex } from '../util/hash.js';
import { ChunkHasher, type PartData } from './part-data.js';
import { VERIFY_CHUNK_BYTES } from '../limits.js';
import { removeLater, tempName } from '../util/temp-files.js';
import { crashPoint } from '../util/crash-points.js';
import { BlobCodec, decodeWhole, decoderStream, frameBytes, knownCodec } from './blob-codec.js';
import { FrameCache } from './frame-cache.js';

export { BlobCodec, ALL_BLOB_CODECS } from './blob-codec.js';
export { Tier, objectKey, type BlobLocation, type PackEntry } from './blob-location.js';
import { Tier, objectKey, type BlobLocation, type PackEntry } from './blob-location.js';
import { rangedChunks } from './ranged-read.js';
export { DEFAULT_COMPRESSION, fileChunks, compressionPromising, type CompressionPolicy } from './compression-policy.js';
import { DEFAULT_COMPRESSION, compressionPromising, compressionPromisingAsync, readHead, fileChunks, type CompressionPolicy } from './compression-policy.js';



const deflateRaw = promisify(zlib.deflateRaw);

/** Blobs up to this canonical size on a local backend are read in one synchronous call (backend.readWhole). */
const WHOLE_READ_MAX = 1024 * 1024;

/** Compressed blobs up to this canonical size are inflated in one synchronous call; larger ones stream. */
const SYNC_INFLATE_MAX = 4 * 1024 * 1024;

async function* decodeCollected(s: AsyncIterable<Buffer> | Iterable<Buffer>, codec: BlobCodec, size: number): AsyncGenerator<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of s) parts.push(c);
  // one byte over the canonical size is enough to know it is wrong (and bounds a damaged stream)
  yield decodeWhole(parts.length === 1 ? parts[0] : Buffer.concat(parts), codec, size);
}






/**
 * The content-addressed layer over a backend: blobs are named by the hash
 * of their canonical bytes, optionally stored deflated, and every read is
 * verified before its bytes are handed on: a blob of one chunk against its
 * name, a larger one chunk by chunk against the digests recorded at ingest.
 * A byte that does not match never leaves this class.
 */
export class BlobStore {
  constructor(
    /** The primary backend: every new blob is written here (the hot tier of a tiered store). */
    readonly backend: BlobBackend,
    private readonly compression: CompressionPolicy = DEFAULT_COMPRESSION,
    /** Where large blobs are deflated to before they are stored (streaming, bounded memory). */
    private readonly tmpDir: string = os.tmpdir(),
    /** The cold tier (objects and packs), when the store is tiered. */
    readonly cold: BlobBackend | null = null,
    /** The instance objects nodes of a cluster share (large blobs), when the store is a node. */
    readonly shared: BlobBackend | null = null,
  ) {}

  /** Backend reads (GET requests) and the bytes they returned, since the store opened: what a FETCH costs. */
  readonly stats = { reads: 0, bytes: 0 };

  /** Decoded cold frames (8 MiB: 32 frames of 256 KiB). */
  private readonly frames = new FrameCache(8 * 1024 * 1024);

  /** The backend of a tier. */
  tierBackend(tier: number): BlobBackend {
    if (tier === Tier.Shared) {
      if (!this.shared) throw new MailcasError('E_STORE', 'a blob is recorded in the bucket shared by a cluster\'s nodes but this store is not a node of one');
      return this.shared;
    }
    if (tier === Tier.Cold) {
      if (!this.cold) throw new MailcasError('E_STORE', 'a blob is recorded in the cold tier but this store has none configured');
      return this.cold;
    }
    return this.backend;
  }

  /**
   * Writes a part's canonical bytes under its key unless present (or, with
   * `overwrite`, in place of an object that does not read back); the codec
   * is a function of the bytes (see compressionPromising). Durable when it resolves.
   */
  async put(part: PartData, opts: PutOptions = {}, target?: { backend: BlobBackend; key: (codec: BlobCodec) => string }): Promise<{ codec: BlobCodec; stored: number; created: boolean }> {
    const backend = target?.backend ?? this.backend;
    const keyOf = target?.key ?? (() => toHex(part.key));
    const c = this.compression;
    if (c.enabled && part.size >= 256 && part.size <= c.maxBytes) {
      if (part.buffer) {
        const whole = part.buffer;
        // (deflated on the thread pool, not on the event loop that serves every other session)
        const z = (await compressionPromisingAsync(whole, c.minSaving)) ? await deflateRaw(whole, { level: 6 }) : null;
        if (z && z.length <= part.size * (1 - c.minSaving)) {
          const created = await backend.put(keyOf(BlobCodec.Deflate), bufferSource(z), { size: z.length, digest: hashBuffer(z) }, opts);
          return { codec: BlobCodec.Deflate, stored: z.length, created };
        }
      } else if (part.file && compressionPromising(readHead(part.file, 64 * 1024), c.minSaving)) {
        const r = await this.putDeflatedFile(backend, keyOf(BlobCodec.Deflate), part, opts);
        if (r) return r;
      }
    }
    const src = { size: part.size, open: () => part.chunks(), ...(part.file ? { file: part.file } : {}) };
    const created = await backend.put(keyOf(BlobCodec.None), src, { size: part.size, digest: part.digest }, opts);
    crashPoint('blob-written');
    return { codec: BlobCodec.None, stored: part.size, created };
  }

  /** A large part deflated from its temp file to another (on the thread pool), stored when that saves enough; null when it does not. */
  private async putDeflatedFile(backend: BlobBackend, key: string, part: PartData, opts: PutOptions): Promise<{ codec: BlobCodec; stored: number; created: boolean } | null> {
    fs.mkdirSync(this.tmpDir, { recursive: true });
    const out = path.join(this.tmpDir, tempName('deflate'));
    try {
      const h = newHasher();
      let n = 0;
      await pipelineAsync(
        fs.createReadStream(part.file!, { highWaterMark: 256 * 1024 }),
        zlib.createDeflateRaw({ level: 6 }),
        new Transform({
          transform(c: Buffer, _e, cb) {
            h.update(c);
            n += c.length;
            cb(null, c);
          },
        }),
        fs.createWriteStream(out, { flags: 'wx', mode: 0o600 }),
      );
      if (n > part.size * (1 - this.compression.minSaving)) return null;
      const src: PutSource = { size: n, open: () => fileChunks(out, n), file: out };
      const created = await backend.put(key, src, { size: n, digest: h.digest() }, opts);
      return { codec: BlobCodec.Deflate, stored: n, created };
    } finally {
      removeLater(out);
    }
  }

  /**
   * Reads the whole object and checks it against its name: ok false when it
   * is missing or does not match (corrupt); backend failures (I/O errors,
   * outages) are thrown, never taken for corruption. Gives the chunk digests
   * of blobs over one chunk (for rows that lack them).
   */
  async scan(loc: Omit<BlobLocation, 'chunks'>): Promise<{ ok: true; chunks: Buffer | null } | { ok: false; why: string }> {
    // (an object read from where its row says it is: the primary backend unless loc names the cold tier)
    try {
      const chunks = await this.learnChunks(loc);
      return { ok: true, chunks: loc.size > VERIFY_CHUNK_BYTES ? chunks : null };
    } catch (e) {
      if (isMailcasError(e, 'E_INTEGRITY')) return { ok: false, why: e.message };
      throw e;
    }
  }

  /**
   * Streams canonical bytes; each chunk is verified before it is yielded
   * (E_INTEGRITY with data.key when the object is missing, short, long or
   * not what its name says; E_BACKEND when the backend fails).
   */
  read(loc: BlobLocation): AsyncGenerator<Buffer> {
    return loc.codec === BlobCodec.BrotliFrame ? this.readFramed(loc) : this.readVerified(loc);
  }

  /** A framed blob: a cut that fails its check drops the cached frame, so the next read fetches it again. */
  private async *readFramed(loc: BlobLocation): AsyncGenerator<Buffer> {
    try {
      yield* this.readVerified(loc);
    } catch (e) {
      if (isMailcasError(e, 'E_INTEGRITY')) this.forget(loc);
      throw e;
    }
  }

  private async *readVerified(loc: BlobLocation): AsyncGenerator<Buffer> {
    let chunks = loc.chunks;
    const n = Math.ceil(loc.size / VERIFY_CHUNK_BYTES);
    if (loc.size > VERIFY_CHUNK_BYTES && (!chunks || chunks.length !== n * HASH_BYTES)) {
      // no digests recorded (a row recreated by repair): one verifying pass learns them, then the bytes go out
      chunks = await this.learnChunks(loc);
    }
    const hex = toHex(loc.key);
    let pending: Buffer[] = [];
    let fill = 0;
    let index = 0;
    let total = 0;
    // a blob of one chunk is checked against its key (keyed in a dedup domain), a larger one chunk by chunk
    const single = loc.size <= VERIFY_CHUNK_BYTES;
    /** The pieces of the chunk now complete, checked against its digest (hashed piece by piece: no copy of the chunk). */
    const verified = (): Buffer[] => {
      const pieces = pending;
      const key = single ? (loc.domainKey ?? undefined) : undefined;
      let digest: Buffer;
      if (pieces.length === 1) {
        digest = hashBuffer(pieces[0], key);
      } else {
        const h = newHasher(key);
        for (const p of pieces) h.update(p);
        digest = h.digest();
      }
      const ok = digest.equals(single ? loc.key : chunks!.subarray(index * HASH_BYTES, (index + 1) * HASH_BYTES));
      if (!ok) throw integrity(hex, `content does not match its hash (chunk ${index} at byte ${index * VERIFY_CHUNK_BYTES})`);
      pending = [];
      fill = 0;
      index++;
      return pieces;
    };
    for await (let c of this.canonical(loc)) {
      total += c.length;
      if (total > loc.size) throw integrity(hex, `more than ${loc.size} bytes`);
      while (c.length) {
        const take = Math.min(c.length, VERIFY_CHUNK_BYTES - fill);
        pending.push(take === c.length ? c : c.subarray(0, take));
        fill += take;
        c = c.subarray(take);
        if (fill === VERIFY_CHUNK_BYTES) yield* verified();
      }
    }
    if (total !== loc.size) throw integrity(hex, `${total} bytes read, ${loc.size} expected`);
    if (fill > 0) yield* verified();
    else if (loc.size === 0) {
      verified();
      yield Buffer.alloc(0);
    }
  }

  /**
   * Canonical bytes [start, end) of a blob, verified. A stored-as-is blob
   * over one chunk is read with one ranged GET of just the chunks that cover
   * the range, each verified against its recorded digest; a blob of one chunk
   * or a compressed one is read from its start (verified as read) up to end.
   */
  async *readRange(loc: BlobLocation, start: number, end: number): AsyncGenerator<Buffer> {
    end = Math.min(end, loc.size);
    if (end <= start) return;
    const n = Math.ceil(loc.size / VERIFY_CHUNK_BYTES);
    if (loc.codec === BlobCodec.None && loc.size > VERIFY_CHUNK_BYTES && loc.chunks && loc.chunks.length === n * HASH_BYTES) {
      this.stats.reads++;
      yield* rangedChunks(this.tierBackend(loc.tier ?? 0), loc, start, end, (s) => this.counted(s));
      return;
    }
    let at = 0;
    for await (const c of this.read(loc)) {
      const from = Math.max(start, at) - at;
      const to = Math.min(end, at + c.length) - at;
      at += c.length;
      if (to > from) yield c.subarray(from, to);
      if (at >= end) return; // the rest is not read
    }
  }

  /** Counts the bytes a backend stream returns. */
  private async *counted(s: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
    for await (const c of s) {
      this.stats.bytes += c.length;
      yield c;
    }
  }

  /** One pass over the object: checks it against its name and returns the chunk digests of its canonical bytes. */
  private async learnChunks(loc: Omit<BlobLocation, 'chunks'>): Promise<Buffer> {
    try {
      return await this.hashAll(loc);
    } catch (e) {
      if (isMailcasError(e, 'E_INTEGRITY')) this.forget(loc);
      throw e;
    }
  }

  private async hashAll(loc: Omit<BlobLocation, 'chunks'>): Promise<Buffer> {
    const hex = toHex(loc.key);
    const h = newHasher(loc.domainKey ?? undefined);
    const ch = new ChunkHasher();
    let n = 0;
    for await (const c of this.canonical(loc)) {
      n += c.length;
      if (n > loc.size) throw integrity(hex, `more than ${loc.size} bytes`);
      h.update(c);
      ch.update(c);
    }
    if (n !== loc.size) throw integrity(hex, `${n} bytes read, ${loc.size} expected`);
    if (!h.digest().equals(loc.key)) throw integrity(hex, 'content does not match its hash');
    return ch.finish();
  }

  /** The object's canonical bytes, unverified (inflated when stored deflated). */
  private async *canonical(loc: Omit<BlobLocation, 'chunks'>): AsyncGenerator<Buffer> {
    const hex = toHex(loc.key);
    if (!knownCodec(loc.codec)) throw new MailcasError('E_CORRUPT', `blob ${hex}: unknown codec ${loc.codec}`);
    const backend = this.tierBackend(loc.tier ?? 0);
    const where = loc.pack ? `pack ${loc.pack.name} of the ${backend.properties.name} backend` : `the ${backend.properties.name} backend`;
    if (loc.codec === BlobCodec.BrotliFrame && loc.pack) {
      // its frame, fetched and decoded once for all the blobs in it that are read around the same time
      const pack = loc.pack;
      const frame = await this.frames.get(frameKey(pack), async () => {
        this.stats.reads++;
        let s: Awaited<ReturnType<BlobBackend['get']>>;
        try {
          s = await backend.get(pack.name, { start: pack.offset, end: pack.offset + pack.length });
        } catch (e) {
          if (e instanceof MailcasError) throw e;
          throw new MailcasError('E_BACKEND', `reading blob ${hex}: ${(e as Error).message}`, { cause: e, transient: true });
        }
        if (!s) throw new MailcasError('E_INTEGRITY', `blob ${hex} is missing from ${where}`, { data: { key: hex, missing: true } });
        const parts: Buffer[] = [];
        try {
          for await (const c of this.counted(s)) parts.push(c);
        } catch (e) {
          if (e instanceof MailcasError) throw e;
          throw new MailcasError('E_BACKEND', `reading blob ${hex}: ${(e as Error).message}`, { cause: e, transient: true });
        } finally {
          s.destroy();
        }
        try {
          return frameBytes(parts.length === 1 ? parts[0] : Buffer.concat(parts));
        } catch (e) {
          throw integrity(hex, `its frame does not decode: ${(e as Error).message}`, e);
        }
      });
      const at = pack.frameOffset ?? 0;
      if (frame.length < at + loc.size) {
        this.frames.drop(frameKey(pack));
        throw integrity(hex, `its frame ends before byte ${at + loc.size}`);
      }
      yield frame.subarray(at, at + loc.size);
      return;
    }
    this.stats.reads++;
    // a small object on this machine's disk: one synchronous read, no stream (stored bytes are at most the canonical size)
    const whole = !loc.pack && backend.readWhole && loc.size <= WHOLE_READ_MAX ? backend.readWhole(objectKey(loc), WHOLE_READ_MAX) : undefined;
    if (whole) this.stats.bytes += whole.length;
    const s = whole !== undefined ? null : loc.pack ? await backend.get(loc.pack.name, { start: loc.pack.offset, end: loc.pack.offset + loc.pack.length }) : await backend.get(objectKey(loc));
    if (!whole && !s) throw new MailcasError('E_INTEGRITY', `blob ${hex} is missing from ${where}`, { data: { key: hex, missing: true } });
    let src: AsyncIterable<Buffer> | Iterable<Buffer> = whole ? [whole] : this.counted(s!);
    if (loc.codec !== BlobCodec.None) {
      // small blobs (most text) decode synchronously: no thread-pool round trip
      src = loc.size <= SYNC_INFLATE_MAX ? decodeCollected(src, loc.codec, loc.size) : pipeline(src, decoderStream(loc.codec), () => {});
    }
    try {
      for await (const c of src) yield c;
    } catch (e) {
      if (e instanceof MailcasError) throw e;
      // a stream that does not inflate is damaged data; a failing read of a raw object is the backend's
      if (loc.codec !== BlobCodec.None && !(e as NodeJS.ErrnoException).syscall) throw integrity(hex, `does not inflate: ${(e as Error).message}`, e);
      throw new MailcasError('E_BACKEND', `reading blob ${hex}: ${(e as Error).message}`, { cause: e, transient: true });
    } finally {
      s?.destroy();
    }
  }

  /** A blob cut from a cached frame failed its check: the frame is read again next time. */
  private forget(loc: Omit<BlobLocation, 'chunks'>): void {
    if (loc.codec === BlobCodec.BrotliFrame && loc.pack) this.frames.drop(frameKey(loc.pack));
  }
}

function frameKey(p: PackEntry): string {
  return `${p.name}@${p.offset}`;
}

function integrity(hex: string, what: string, cause?: unknown): MailcasError {
  return new MailcasError('E_INTEGRITY', `blob ${hex}: ${what}`, { data: { key: hex }, cause });
}


