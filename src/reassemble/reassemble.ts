import { MailcasError } from '../errors.js';
import type { Layout } from '../layout/layout.js';
import { encoderFor } from '../recipe/choose.js';

/** The one thing reassembly needs from the blob store: verified canonical bytes by key. */
export interface BlobReader {
  read(hash: Buffer, size: number): AsyncIterable<Buffer> | Iterable<Buffer>;
}

/** Blobs up to this size are read ahead (whole, verified) while earlier parts go out. */
const PREFETCH_MAX_BYTES = 1024 * 1024;
/** How many blobs are read ahead at most. */
const PREFETCH_WINDOW = 8;

async function collect(src: AsyncIterable<Buffer> | Iterable<Buffer>): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for await (const c of src) out.push(c);
  return out;
}

/**
 * Streams a message's exact bytes from its layout. Memory is bounded by the
 * chunk size (quoted-printable parts, which are at most QP_MAX_BYTES, are
 * encoded whole) plus a read-ahead of up to PREFETCH_WINDOW small blobs, so
 * a message of many parts on high-latency storage costs one round trip, not
 * one per part. Each part must produce exactly its recorded raw size.
 */
export async function* reassemble(layout: Layout, blobs: BlobReader, label = 'message', window = PREFETCH_WINDOW): AsyncGenerator<Buffer> {
  const segs = layout.segments;
  const ahead = new Map<number, Promise<Buffer[]>>();
  let scan = 0;
  const fill = (): void => {
    for (; scan < segs.length && ahead.size < window; scan++) {
      const s = segs[scan];
      if (s.k !== 'part' || !s.hash || s.size > PREFETCH_MAX_BYTES) continue;
      const p = collect(blobs.read(s.hash, s.size));
      p.catch(() => {}); // observed when its turn comes (or never, if the reader stops first)
      ahead.set(scan, p);
    }
  };
  for (let i = 0; i < segs.length; i++) {
    const s = segs[i];
    if (window > 0) fill();
    if (s.k !== 'part') {
      if (s.bytes.length) yield s.bytes;
      continue;
    }
    const enc = encoderFor(s.recipe);
    let n = 0;
    const pre = ahead.get(i);
    ahead.delete(i);
    try {
      const src = pre ? await pre : s.hash ? blobs.read(s.hash, s.size) : [s.inline ?? Buffer.alloc(0)];
      for await (const c of src) {
        const o = enc.push(c);
        if (o.length) {
          n += o.length;
          yield o;
        }
      }
    } catch (e) {
      // name the message and the part: an operator must know what is damaged, not only which blob
      if (e instanceof MailcasError) throw new MailcasError(e.code, `${label}, part ${s.path || '(raw)'}: ${e.message}`, { cause: e, transient: e.transient, data: e.data });
      throw e;
    }
    const e = enc.end();
    if (e.length) {
      n += e.length;
      yield e;
    }
    if (n !== s.rawSize) {
      throw new MailcasError('E_INTEGRITY', `${label}, part ${s.path || '(raw)'}: re-encoded to ${n} bytes, ${s.rawSize} expected`);
    }
  }
}

/** Gathers small chunks into writes of about `size` bytes (fewer syscalls downstream). */
export async function* coalesce(src: AsyncIterable<Buffer>, size = 64 * 1024): AsyncGenerator<Buffer> {
  let parts: Buffer[] = [];
  let n = 0;
  for await (const c of src) {
    if (c.length >= size && n === 0) {
      yield c;
      continue;
    }
    parts.push(c);
    n += c.length;
    if (n >= size) {
      yield parts.length === 1 ? parts[0] : Buffer.concat(parts, n);
      parts = [];
      n = 0;
    }
  }
  if (n) yield parts.length === 1 ? parts[0] : Buffer.concat(parts, n);
}
