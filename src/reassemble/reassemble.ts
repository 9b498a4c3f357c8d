import { MailcasError } from '../errors.js';
import type { Layout } from '../layout/layout.js';
import { encoderFor } from '../recipe/choose.js';

/** The one thing reassembly needs from the blob store: verified canonical bytes by key. */
export interface BlobReader {
  read(hash: Buffer, size: number): AsyncIterable<Buffer> | Iterable<Buffer>;
}

/**
 * Streams a message's exact bytes from its layout. Memory is bounded by the
 * chunk size (quoted-printable parts, which are at most QP_MAX_BYTES, are
 * encoded whole). Each part must produce exactly its recorded raw size.
 */
export async function* reassemble(layout: Layout, blobs: BlobReader, label = 'message'): AsyncGenerator<Buffer> {
  for (const s of layout.segments) {
    if (s.k !== 'part') {
      if (s.bytes.length) yield s.bytes;
      continue;
    }
    const enc = encoderFor(s.recipe);
    let n = 0;
    const src = s.hash ? blobs.read(s.hash, s.size) : [s.inline ?? Buffer.alloc(0)];
    try {
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
