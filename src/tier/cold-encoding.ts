/**
 * The form a deflated hot blob takes in the cold tier: brotli when that is
 * at least 2% smaller (older mail is read rarely and kept for years), else
 * the deflated bytes as they are. Every re-encoding is checked before it is
 * used: the bytes read now must decode to the blob's own hash, and the brotli
 * form must decode back to them. 'damaged' means the hot copy read now does
 * not decode to the blob (it did when tier scanned it): the blob stays hot and
 * the next run, or a read, finds out.
 */
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { PutSource } from '../backend/backend.js';
import { BlobCodec, brotliEncode, brotliStreamParams, decodeWhole } from '../cas/blob-codec.js';
import { fileChunks } from '../cas/blob-store.js';
import { hashBuffer, newHasher } from '../cas/hash.js';
import { MailcasError } from '../errors.js';
import { removeLater, tempName } from '../util/temp-files.js';

/** Re-encoding must save at least this fraction to be used. */
const MIN_SAVING = 0.02;

export interface ColdBlob {
  hash: Buffer;
  size: number;
}

/** A small entry (read whole, for a pack). */
export async function coldEntry(deflated: Buffer, blob: ColdBlob, domainKey: Buffer | null): Promise<Buffer | null | 'damaged'> {
  let canonical: Buffer;
  try {
    canonical = decodeWhole(deflated, BlobCodec.Deflate, blob.size);
  } catch {
    return 'damaged';
  }
  if (canonical.length !== blob.size || !hashBuffer(canonical, domainKey ?? undefined).equals(blob.hash)) return 'damaged';
  const b = await brotliEncode(canonical);
  if (b.length > deflated.length * (1 - MIN_SAVING)) return null;
  if (!decodeWhole(b, BlobCodec.Brotli, blob.size).equals(canonical)) throw new MailcasError('E_INTERNAL', `blob ${blob.hash.toString('hex')}: brotli did not give back its bytes`);
  return b;
}

/** A brotli form written to a temp file (large blobs: bounded memory); remove() when done with it. */
export interface ColdFile {
  source: PutSource;
  size: number;
  digest: Buffer;
  remove(): void;
}

/** Passes chunks through, feeding them to a hasher and counting them. */
function tap(h: { update(b: Buffer): void }, count: (n: number) => void): Transform {
  return new Transform({
    transform(c: Buffer, _e, cb) {
      h.update(c);
      count(c.length);
      cb(null, c);
    },
  });
}

/** A large object's cold form: streamed from the hot copy through inflate and brotli into a temp file. */
export async function coldFile(deflated: () => AsyncIterable<Buffer>, storedSize: number, blob: ColdBlob, domainKey: Buffer | null, tmpDir: string): Promise<ColdFile | null | 'damaged'> {
  fs.mkdirSync(tmpDir, { recursive: true });
  const out = path.join(tmpDir, tempName('brotli'));
  const remove = () => removeLater(out);
  try {
    const canon = newHasher(domainKey ?? undefined);
    const packed = newHasher();
    let n = 0;
    let m = 0;
    try {
      await pipeline(
        deflated(),
        zlib.createInflateRaw({ chunkSize: 256 * 1024 }),
        tap(canon, (k) => (n += k)),
        zlib.createBrotliCompress(brotliStreamParams(blob.size)),
        tap(packed, (k) => (m += k)),
        fs.createWriteStream(out, { flags: 'wx', mode: 0o600 }),
      );
    } catch (e) {
      if ((e as NodeJS.ErrnoException).syscall) throw e; // the disk, not the data
      remove();
      return 'damaged';
    }
    if (n !== blob.size || !canon.digest().equals(blob.hash)) {
      remove();
      return 'damaged';
    }
    if (m > storedSize * (1 - MIN_SAVING)) {
      remove();
      return null;
    }
    // the file decodes back to the blob
    const back = newHasher(domainKey ?? undefined);
    let k = 0;
    await pipeline(fs.createReadStream(out), zlib.createBrotliDecompress({ chunkSize: 256 * 1024 }), tap(back, (x) => (k += x)), async function* (s) {
      for await (const _ of s) void _;
    });
    if (k !== blob.size || !back.digest().equals(blob.hash)) throw new MailcasError('E_INTERNAL', `blob ${blob.hash.toString('hex')}: brotli did not give back its bytes`);
    return { source: { size: m, open: () => fileChunks(out, m), file: out }, size: m, digest: packed.digest(), remove };
  } catch (e) {
    remove();
    throw e;
  }
}
