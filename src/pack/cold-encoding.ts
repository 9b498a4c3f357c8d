/**
 * The form a deflated hot blob takes in the cold tier: small ones together
 * in brotli frames, large ones brotli on their own, when that is at least 2%
 * smaller (older mail is read rarely and kept for years); else the deflated
 * bytes as they are. Every re-encoding is checked before it is
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
import { hashBuffer, newHasher } from '../util/hash.js';
import { MailcasError } from '../errors.js';
import { removeLater, tempName } from '../util/temp-files.js';
import { FRAME_RAW_BYTES } from '../limits.js';

/** Re-encoding must save at least this fraction to be used. */
const MIN_SAVING = 0.02;

export interface ColdBlob {
  hash: Buffer;
  size: number;
}

/** The canonical bytes of a deflated hot copy, checked against the blob's hash ('damaged' when they do not match). */
export function verifiedCanonical(deflated: Buffer, blob: ColdBlob, domainKey: Buffer | null): Buffer | 'damaged' {
  let canonical: Buffer;
  try {
    canonical = decodeWhole(deflated, BlobCodec.Deflate, blob.size);
  } catch {
    return 'damaged';
  }
  if (canonical.length !== blob.size || !hashBuffer(canonical, domainKey ?? undefined).equals(blob.hash)) return 'damaged';
  return canonical;
}

/** A small blob on its way into a pack: its hot bytes as stored, and (when deflated) its verified canonical bytes. */
export interface PackCandidate {
  hash: Buffer;
  codec: number;
  hot: Buffer;
  canonical: Buffer | null;
}

/** What a pack holds, piece by piece: one blob's bytes, or a frame shared by several. */
export interface PackPiece {
  bytes: Buffer;
  members: { hash: Buffer; codec: number; stored: number; frameOffset: number | null; saved: number }[];
}

function mustDecode(z: Buffer, raw: Buffer, what: string): void {
  if (!decodeWhole(z, BlobCodec.Brotli, raw.length).equals(raw)) throw new MailcasError('E_INTERNAL', `${what}: brotli did not give back its bytes`);
}

/** One blob alone: brotli when that saves enough, else its hot bytes as they are. */
async function single(e: PackCandidate): Promise<PackPiece> {
  if (e.canonical) {
    const b = await brotliEncode(e.canonical);
    if (b.length <= e.hot.length * (1 - MIN_SAVING)) {
      mustDecode(b, e.canonical, `blob ${e.hash.toString('hex')}`);
      return { bytes: b, members: [{ hash: e.hash, codec: BlobCodec.Brotli, stored: b.length, frameOffset: null, saved: e.hot.length - b.length }] };
    }
  }
  return { bytes: e.hot, members: [{ hash: e.hash, codec: e.codec, stored: e.hot.length, frameOffset: null, saved: 0 }] };
}

/** Several blobs in one brotli frame; each member's stored share is proportional to its size (the shares add up to the frame). */
async function frame(es: PackCandidate[]): Promise<PackPiece[]> {
  if (es.length === 1) return [await single(es[0])];
  const raw = Buffer.concat(es.map((e) => e.canonical!));
  const z = await brotliEncode(raw);
  const hot = es.reduce((a, e) => a + e.hot.length, 0);
  if (z.length > hot * (1 - MIN_SAVING)) return Promise.all(es.map(single));
  mustDecode(z, raw, `a frame of ${es.length} blobs`);
  const members: PackPiece['members'] = [];
  let off = 0;
  let given = 0;
  for (const [i, e] of es.entries()) {
    const share = i === es.length - 1 ? z.length - given : Math.floor((z.length * e.canonical!.length) / raw.length);
    members.push({ hash: e.hash, codec: BlobCodec.BrotliFrame, stored: share, frameOffset: off, saved: e.hot.length - share });
    off += e.canonical!.length;
    given += share;
  }
  return [{ bytes: z, members }];
}

/**
 * Turns small blobs (in the order they arrived: neighbours in time share the
 * most) into pack pieces: deflated ones go into brotli frames of up to
 * FRAME_RAW_BYTES decoded, others as they are.
 */
export async function packPieces(entries: PackCandidate[]): Promise<PackPiece[]> {
  const out: PackPiece[] = [];
  let cur: PackCandidate[] = [];
  let raw = 0;
  const close = async () => {
    if (cur.length) out.push(...(await frame(cur)));
    cur = [];
    raw = 0;
  };
  for (const e of entries) {
    if (!e.canonical || e.canonical.length > FRAME_RAW_BYTES) {
      out.push(await single(e));
      continue;
    }
    if (raw + e.canonical.length > FRAME_RAW_BYTES) await close();
    cur.push(e);
    raw += e.canonical.length;
  }
  await close();
  return out;
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
