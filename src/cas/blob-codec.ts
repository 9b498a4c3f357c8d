/**
 * How a blob's bytes are stored, and how each form is decoded. Recorded per
 * blob in the metadata; every codec stays readable forever.
 *
 * - None: the canonical bytes as they are (already compressed formats, tiny parts).
 * - Deflate: raw deflate, level 6. New hot blobs: cheap to write and the
 *   fastest to inflate, which is what recent mail (read most) wants.
 * - Brotli: quality 5, window up to 4 MiB. Written when blobs move to the
 *   cold tier (older mail: written once, read rarely, kept for years): about
 *   11% smaller than deflate on mail text at the same compression speed, about
 *   15% slower to decode (measured on the dev corpus; docs/BENCHMARKS.md).
 * - BrotliFrame: small blobs packed together in one brotli frame (of about
 *   256 KiB decoded), in the order they arrived: mail sent around the same
 *   time shares templates, signatures and quoted text, which one frame
 *   compresses once (19% smaller than brotli per blob on the corpus). A blob
 *   is read by decoding its frame and cutting it out (the row records the
 *   frame's place in the pack and the blob's offset in the decoded frame).
 */
import zlib from 'node:zlib';
import { promisify } from 'node:util';
import type { Transform } from 'node:stream';

export const BlobCodec = { None: 0, Deflate: 1, Brotli: 2, BrotliFrame: 3 } as const;
export type BlobCodec = (typeof BlobCodec)[keyof typeof BlobCodec];

/** Every codec an object of its own may have (repair and confirmation try them all); BrotliFrame exists only inside packs. */
export const ALL_BLOB_CODECS: readonly BlobCodec[] = [BlobCodec.None, BlobCodec.Deflate, BlobCodec.Brotli];

export function knownCodec(c: number): c is BlobCodec {
  return c === BlobCodec.None || c === BlobCodec.Deflate || c === BlobCodec.Brotli || c === BlobCodec.BrotliFrame;
}

/** A frame decodes to at most this many bytes (frames are built far smaller: FRAME_RAW_BYTES in limits.ts). */
export const FRAME_DECODED_MAX = 16 * 1024 * 1024;

/** A whole frame, decoded. */
export function frameBytes(frame: Buffer): Buffer {
  return zlib.brotliDecompressSync(frame, { maxOutputLength: FRAME_DECODED_MAX });
}

/** Brotli quality for cold entries: 5 compresses as fast as deflate level 6; 6-9 gain under 2% for 2-20x the time. */
export const COLD_BROTLI_QUALITY = 5;

/** Brotli settings for a blob of this canonical size (streams too). */
export function brotliStreamParams(size: number): zlib.BrotliOptions {
  // a window no larger than the input (at least brotli's minimum) keeps the decoder's memory small
  const lgwin = Math.max(zlib.constants.BROTLI_MIN_WINDOW_BITS, Math.min(22, Math.ceil(Math.log2(Math.max(2, size)))));
  return {
    chunkSize: 256 * 1024,
    params: {
      [zlib.constants.BROTLI_PARAM_QUALITY]: COLD_BROTLI_QUALITY,
      [zlib.constants.BROTLI_PARAM_LGWIN]: lgwin,
      [zlib.constants.BROTLI_PARAM_SIZE_HINT]: size,
    },
  };
}

const brotliAsync = promisify(zlib.brotliCompress) as (b: Buffer, o: zlib.BrotliOptions) => Promise<Buffer>;

/** Brotli-compresses canonical bytes; large inputs on the thread pool, so the event loop keeps serving. */
export async function brotliEncode(canonical: Buffer): Promise<Buffer> {
  return canonical.length > 64 * 1024 ? brotliAsync(canonical, brotliStreamParams(canonical.length)) : zlib.brotliCompressSync(canonical, brotliStreamParams(canonical.length));
}

/** Decodes a whole stored form; at most size + 1 bytes come out (enough to know a damaged stream is wrong). */
export function decodeWhole(data: Buffer, codec: BlobCodec, size: number): Buffer {
  // one output buffer of the expected size (plus the byte that shows a stream too long): no chunks to join
  const chunkSize = Math.max(zlib.constants.Z_MIN_CHUNK, size + 1);
  if (codec === BlobCodec.Deflate) return zlib.inflateRawSync(data, { maxOutputLength: size + 1, chunkSize });
  if (codec === BlobCodec.Brotli) return zlib.brotliDecompressSync(data, { maxOutputLength: size + 1, chunkSize });
  return data;
}

/** A streaming decoder for a compressed codec (large blobs). */
export function decoderStream(codec: BlobCodec): Transform {
  if (codec === BlobCodec.Brotli) return zlib.createBrotliDecompress({ chunkSize: 256 * 1024 });
  return zlib.createInflateRaw({ chunkSize: 256 * 1024 });
}
