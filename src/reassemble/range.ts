import { MailcasError } from '../errors.js';
import type { Layout } from '../layout/layout.js';
import { encoderFor } from '../recipe/choose.js';
import { base64RawRange } from '../recipe/base64.js';
import type { BlobReader } from './reassemble.js';

/** What a range read needs from the blob store: verified canonical bytes of a blob, or a range of them. */
export interface RangeBlobReader extends BlobReader {
  readRange(hash: Buffer, size: number, start: number, end: number): AsyncIterable<Buffer>;
}

/**
 * Bytes [start, end) of a message, reading only what they need: header
 * blocks and literals come from the layout (no blob read), a part's range
 * from its blob's range where the recipe allows random access (stored as
 * is: the same offsets; base64: through the recorded line geometry), and
 * from the part's start otherwise (line-ending and quoted-printable parts).
 */
export async function* reassembleRange(layout: Layout, blobs: RangeBlobReader, start: number, end: number, label = 'message'): AsyncGenerator<Buffer> {
  let pos = 0;
  for (const s of layout.segments) {
    const len = s.k === 'part' ? s.rawSize : s.bytes.length;
    const segEnd = pos + len;
    if (segEnd <= start || len === 0) {
      pos = segEnd;
      continue;
    }
    if (pos >= end) return;
    const a = Math.max(start, pos) - pos;
    const b = Math.min(end, segEnd) - pos;
    if (s.k !== 'part') {
      yield s.bytes.subarray(a, b);
    } else {
      try {
        yield* partRange(s, blobs, a, b);
      } catch (e) {
        if (e instanceof MailcasError) throw new MailcasError(e.code, `${label}, part ${s.path || '(raw)'}: ${e.message}`, { cause: e, transient: e.transient, data: e.data });
        throw e;
      }
    }
    pos = segEnd;
  }
}

type PartSeg = Extract<Layout['segments'][number], { k: 'part' }>;

async function* partRange(s: PartSeg, blobs: RangeBlobReader, a: number, b: number): AsyncGenerator<Buffer> {
  const read = (from: number, to: number): AsyncIterable<Buffer> | Iterable<Buffer> =>
    s.hash ? blobs.readRange(s.hash, s.size, from, to) : [(s.inline ?? Buffer.alloc(0)).subarray(from, to)];
  if (s.recipe.t === 'identity') {
    yield* read(a, b);
    return;
  }
  if (s.recipe.t === 'base64') {
    yield* base64RawRange(s.recipe, s.size, a, b, read);
    return;
  }
  // no random access (line endings and quoted-printable change lengths along the way): encode from the start up to b
  const enc = encoderFor(s.recipe);
  let pos = 0;
  const cut = function* (o: Buffer): Generator<Buffer> {
    const from = Math.max(a, pos) - pos;
    const to = Math.min(b, pos + o.length) - pos;
    pos += o.length;
    if (to > from) yield o.subarray(from, to);
  };
  for await (const c of read(0, s.size)) {
    yield* cut(enc.push(c));
    if (pos >= b) return;
  }
  yield* cut(enc.end());
}

/** Raw byte offset of each segment's start, and the message size. */
export function segmentOffsets(layout: Layout): { starts: number[]; size: number } {
  const starts: number[] = [];
  let pos = 0;
  for (const s of layout.segments) {
    starts.push(pos);
    pos += s.k === 'part' ? s.rawSize : s.bytes.length;
  }
  return { starts, size: pos };
}
