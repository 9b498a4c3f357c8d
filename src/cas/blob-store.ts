import zlib from 'node:zlib';
import { pipeline } from 'node:stream';
import { promisify } from 'node:util';
import { MailcasError } from '../errors.js';
import type { BlobBackend } from '../backend/backend.js';
import { bufferSource } from '../backend/backend.js';
import { hashBuffer, newHasher, toHex } from './hash.js';
import type { PartData } from './part-data.js';

/** How a blob's bytes are stored. Recorded per blob in the metadata. */
export const BlobCodec = { None: 0, Deflate: 1 } as const;
export type BlobCodec = (typeof BlobCodec)[keyof typeof BlobCodec];

export interface CompressionPolicy {
  enabled: boolean;
  /** Store compressed only when it saves at least this fraction. */
  minSaving: number;
  /** Only parts up to this size are considered (compression is done in memory). */
  maxBytes: number;
}

export const DEFAULT_COMPRESSION: CompressionPolicy = { enabled: true, minSaving: 0.05, maxBytes: 16 * 1024 * 1024 };

const deflateRaw = promisify(zlib.deflateRaw);

/** Compressed blobs up to this canonical size are inflated in one synchronous call; larger ones stream. */
const SYNC_INFLATE_MAX = 4 * 1024 * 1024;

async function* inflateWhole(s: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of s) parts.push(c);
  yield zlib.inflateRawSync(parts.length === 1 ? parts[0] : Buffer.concat(parts));
}

/** Formats that are compressed already, recognised by their leading bytes (never by the declared type). */
const MAGIC: Buffer[] = [
  [0xff, 0xd8, 0xff], // JPEG
  [0x50, 0x4b, 0x03, 0x04], // ZIP, and docx/xlsx/odt/jar inside it
  [0x1f, 0x8b], // gzip
  [0x37, 0x7a, 0xbc, 0xaf, 0x27, 0x1c], // 7z
  [0x52, 0x61, 0x72, 0x21, 0x1a, 0x07], // RAR
  [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00], // xz
  [0x42, 0x5a, 0x68], // bzip2
  [0x28, 0xb5, 0x2f, 0xfd], // zstd
].map((b) => Buffer.from(b));

function compressedFormat(b: Buffer): boolean {
  return MAGIC.some((m) => b.length >= m.length && b.compare(m, 0, m.length, 0, m.length) === 0);
}

/**
 * Whether to store a blob deflated is decided from its bytes alone, never
 * from the part's declared type: the same content arriving as "image/png"
 * in one message and "application/octet-stream" in another, at the same
 * moment, must get the same answer, since both ingests may write it.
 * A quick deflate of a leading sample rules out what is compressed already.
 */
export function compressionPromising(whole: Buffer, minSaving: number): boolean {
  if (compressedFormat(whole)) return false;
  if (whole.length <= 64 * 1024) return true;
  const sample = whole.subarray(0, 64 * 1024);
  return zlib.deflateRawSync(sample, { level: 1 }).length <= sample.length * (1 - minSaving);
}

/**
 * The content-addressed layer over a backend: blobs are named by the hash
 * of their canonical bytes, optionally stored deflated, and every read is
 * re-hashed and fails loudly when the bytes are not what their name says.
 */
export class BlobStore {
  constructor(readonly backend: BlobBackend, private readonly compression: CompressionPolicy = DEFAULT_COMPRESSION) {}

  /**
   * Writes a part's canonical bytes under its key unless present; the codec
   * is a function of the bytes (see compressionPromising). Durable when it resolves.
   */
  async put(part: PartData): Promise<{ codec: BlobCodec; stored: number; created: boolean }> {
    const key = toHex(part.key);
    const c = this.compression;
    if (c.enabled && part.size >= 256 && part.size <= c.maxBytes) {
      // parts that spilled to a temp file are read back whole: at most maxBytes, so memory stays bounded
      const whole = part.buffer ?? Buffer.concat([...part.chunks()], part.size);
      // the thread pool deflates large blobs while this thread goes on decoding the next message
      const z = !compressionPromising(whole, c.minSaving) ? null : whole.length >= 256 * 1024 ? await deflateRaw(whole, { level: 6 }) : zlib.deflateRawSync(whole, { level: 6 });
      if (z && z.length <= part.size * (1 - c.minSaving)) {
        const created = await this.backend.put(key, bufferSource(z), { size: z.length, digest: hashBuffer(z) });
        return { codec: BlobCodec.Deflate, stored: z.length, created };
      }
    }
    const src = { size: part.size, open: () => part.chunks(), ...(part.file ? { file: part.file } : {}) };
    const created = await this.backend.put(key, src, { size: part.size, digest: part.digest });
    return { codec: BlobCodec.None, stored: part.size, created };
  }

  /** Whether the object reads back, with this codec and domain key, as the blob its key names. */
  async readsBackAs(key: Buffer, codec: number, size: number, domainKey: Buffer | null): Promise<boolean> {
    try {
      for await (const c of this.read(key, codec, size, domainKey)) void c;
      return true;
    } catch {
      return false;
    }
  }

  /** Streams canonical bytes, verifying size and hash at the end (E_INTEGRITY on mismatch, also when missing). */
  async *read(key: Buffer, codec: number, size: number, domainKey: Buffer | null): AsyncIterable<Buffer> {
    const hex = toHex(key);
    const s = await this.backend.get(hex);
    if (!s) throw new MailcasError('E_INTEGRITY', `blob ${hex} is missing from the ${this.backend.properties.name} backend`, { data: { key: hex } });
    const h = newHasher(domainKey ?? undefined);
    let n = 0;
    if (codec !== BlobCodec.None && codec !== BlobCodec.Deflate) {
      s.destroy();
      throw new MailcasError('E_CORRUPT', `blob ${hex}: unknown codec ${codec}`);
    }
    let src: AsyncIterable<Buffer> | Iterable<Buffer> = s;
    if (codec === BlobCodec.Deflate) {
      // small blobs (most text) inflate synchronously: no thread-pool round trip
      src = size <= SYNC_INFLATE_MAX ? inflateWhole(s) : pipeline(s, zlib.createInflateRaw({ chunkSize: 256 * 1024 }), () => {});
    }
    try {
      for await (const chunk of src) {
        n += chunk.length;
        if (n > size) break;
        h.update(chunk);
        yield chunk;
      }
    } catch (e) {
      if (e instanceof MailcasError) throw e;
      throw new MailcasError(codec ? 'E_INTEGRITY' : 'E_BACKEND', `reading blob ${hex}: ${(e as Error).message}`, { cause: e });
    } finally {
      s.destroy();
    }
    if (n !== size) throw new MailcasError('E_INTEGRITY', `blob ${hex}: ${n > size ? 'more than ' : ''}${n} bytes read, ${size} expected`, { data: { key: hex } });
    if (!h.digest().equals(key)) throw new MailcasError('E_INTEGRITY', `blob ${hex}: content does not match its hash`, { data: { key: hex } });
  }
}
