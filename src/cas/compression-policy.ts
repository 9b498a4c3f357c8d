import fs from 'node:fs';
import zlib from 'node:zlib';
import { promisify } from 'node:util';

const deflateRaw = promisify(zlib.deflateRaw);

export interface CompressionPolicy {
  enabled: boolean;
  /** Store compressed only when it saves at least this fraction. */
  minSaving: number;
  /** Only parts up to this size are considered (large ones are deflated streaming, file to file). */
  maxBytes: number;
}

export const DEFAULT_COMPRESSION: CompressionPolicy = { enabled: true, minSaving: 0.05, maxBytes: 1024 * 1024 * 1024 };

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
  const sample = sampleToTry(whole);
  return typeof sample === 'boolean' ? sample : zlib.deflateRawSync(sample, { level: 1 }).length <= sample.length * (1 - minSaving);
}

/** compressionPromising with the sample deflated on the thread pool (an ingest's event loop serves other sessions meanwhile). */
export async function compressionPromisingAsync(whole: Buffer, minSaving: number): Promise<boolean> {
  const sample = sampleToTry(whole);
  return typeof sample === 'boolean' ? sample : (await deflateRaw(sample, { level: 1 })).length <= sample.length * (1 - minSaving);
}

/** The answer when the bytes alone give it, else the leading sample to deflate. */
function sampleToTry(whole: Buffer): boolean | Buffer {
  if (compressedFormat(whole)) return false;
  if (whole.length <= 64 * 1024) return true;
  return whole.subarray(0, 64 * 1024);
}

/** The first bytes of a file (the sample that decides compression). */
export function readHead(file: string, n: number): Buffer {
  const fd = fs.openSync(file, 'r');
  try {
    const b = Buffer.allocUnsafe(n);
    const got = fs.readSync(fd, b, 0, n, 0);
    return b.subarray(0, got);
  } finally {
    fs.closeSync(fd);
  }
}

/** A file's first size bytes, 256 KiB at a time (synchronous reads: for put sources). */
export function* fileChunks(file: string, size: number): Generator<Buffer> {
  const fd = fs.openSync(file, 'r');
  try {
    for (let pos = 0; pos < size; ) {
      const b = Buffer.allocUnsafe(Math.min(256 * 1024, size - pos));
      const n = fs.readSync(fd, b, 0, b.length, pos);
      if (n === 0) break;
      pos += n;
      yield b.subarray(0, n);
    }
  } finally {
    fs.closeSync(fd);
  }
}
