import { MailcasError, type ErrorCode } from '../errors.js';
import type { SpoolOrigin } from '../split/spool.js';
import { FilePart, MemoryPart } from '../cas/part-data.js';
import type { PrepareOptions, Prepared } from './prepare.js';
import type { PartInfo } from './build-message.js';

/**
 * How a prepared message crosses between threads: plain data (structured
 * clone), blob bytes as copies or temp-file paths. Whoever receives a
 * Prepared owns its temp files.
 */
export interface PrepareJob {
  id: number;
  origin: SpoolOrigin;
  hash: Uint8Array;
  opts: PrepareOptions;
}

export interface WireBlob {
  contentType: string;
  count: number;
  key: Uint8Array;
  digest: Uint8Array;
  size: number;
  chunkDigests: Uint8Array | null;
  bytes: Uint8Array | null;
  file: string | null;
}

export type WirePrepared = Omit<Prepared, 'blobs' | 'dispose'> & { blobs: WireBlob[] };

export type PrepareReply = { id: number; ok: true; prepared: WirePrepared } | { id: number; ok: false; error: { code: string; message: string; transient: boolean; data: Record<string, unknown> } };

/**
 * A view as its own exact-size copy when it shares a larger buffer (a part
 * that is a window of the spool): structured clone copies whole underlying
 * buffers, so sending views would copy the message once per part.
 */
export function exact(u: Uint8Array): Uint8Array;
export function exact(u: Uint8Array | null): Uint8Array | null;
export function exact(u: Uint8Array | null): Uint8Array | null {
  if (!u) return null;
  return u.byteOffset === 0 && u.byteLength === u.buffer.byteLength ? u : Uint8Array.prototype.slice.call(u);
}

export function toWire(p: Prepared): WirePrepared {
  const { dispose: _d, blobs, ...rest } = p;
  return {
    ...rest,
    hash: exact(p.hash) as Buffer,
    tree: exact(p.tree) as Buffer | null,
    packed: { ...p.packed, head: exact(p.packed.head) as Buffer, inline: exact(p.packed.inline) as Buffer | null, sum: exact(p.packed.sum) as Buffer },
    parts: p.parts.map((q) => ({ ...q, hash: exact(q.hash) as Buffer | null })),
    blobs: blobs.map((b) => ({
      contentType: b.contentType,
      count: b.count,
      key: exact(b.data.key),
      digest: exact(b.data.digest),
      size: b.data.size,
      chunkDigests: exact(b.data.chunkDigests),
      bytes: exact(b.data.buffer),
      file: b.data.file,
    })),
  };
}

/**
 * The buffers a reply can move instead of copying: the blobs' bytes, each
 * exactly one whole ArrayBuffer (see exact) and not shared memory.
 */
export function transferables(w: WirePrepared): ArrayBuffer[] {
  const out = new Set<ArrayBuffer>();
  for (const b of w.blobs) if (b.bytes && b.bytes.buffer instanceof ArrayBuffer && b.bytes.byteOffset === 0 && b.bytes.byteLength === b.bytes.buffer.byteLength) out.add(b.bytes.buffer);
  return [...out];
}

const buf = (u: Uint8Array): Buffer => (Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength));
const bufOrNull = (u: Uint8Array | null): Buffer | null => (u ? buf(u) : null);

export function fromWire(w: WirePrepared): Prepared {
  const blobs = w.blobs.map((b) => ({
    contentType: b.contentType,
    count: b.count,
    data: b.bytes
      ? new MemoryPart(buf(b.bytes), null, { key: buf(b.key), digest: buf(b.digest) })
      : new FilePart(b.file!, b.size, buf(b.key), buf(b.digest), bufOrNull(b.chunkDigests)),
  }));
  const packed = w.packed;
  return {
    ...w,
    hash: buf(w.hash),
    tree: bufOrNull(w.tree),
    packed: { ...packed, head: buf(packed.head), inline: bufOrNull(packed.inline), sum: buf(packed.sum) },
    parts: w.parts.map((p: PartInfo) => ({ ...p, hash: bufOrNull(p.hash) })),
    blobs,
    dispose: () => {
      for (const b of blobs) b.data.dispose();
    },
  };
}

export function errorToWire(e: unknown): { code: string; message: string; transient: boolean; data: Record<string, unknown> } {
  if (e instanceof MailcasError) return { code: e.code, message: e.message, transient: e.transient, data: e.data };
  return { code: 'E_INTERNAL', message: `${(e as Error)?.message ?? String(e)}`, transient: false, data: {} };
}

export function errorFromWire(w: { code: string; message: string; transient: boolean; data: Record<string, unknown> }): MailcasError {
  return new MailcasError(w.code as ErrorCode, w.message, { transient: w.transient, data: w.data });
}
