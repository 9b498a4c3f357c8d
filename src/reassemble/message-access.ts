import type { Layout, PartSegment } from '../layout/layout.js';
import { MailcasError } from '../errors.js';
import { decodeTree, treeOf, type TreeNode } from '../split/mime-tree.js';
import { tokenize } from '../split/tokenizer.js';
import { Spool } from '../split/spool.js';
import { hashBuffer, newHasher } from '../util/hash.js';
import { coalesce, reassemble } from './reassemble.js';
import { reassembleRange, type RangeBlobReader } from './range.js';

/** Decoded content of a part (IMAP BINARY): its size and its bytes by range. */
export interface Decoded {
  size: number;
  bytes(start: number, end: number): AsyncIterable<Buffer> | Iterable<Buffer>;
}

/** Above this, a part whose transfer encoding was irregular (stored as it came) is not decoded for BINARY. */
const DECODE_IN_MEMORY_MAX = 64 * 1024 * 1024;

/** What a message row says of the message itself. */
export interface MessageFacts {
  id: string;
  size: number;
  /** BLAKE3 of its exact bytes. */
  hash: Buffer;
  /** Received time, unix ms (IMAP INTERNALDATE). */
  received: number;
}

/**
 * One stored message as every reader sees it: its size, its MIME tree (kept
 * with it: no blob read), and its bytes, whole or by range, reading only
 * the blobs (and the parts of them) a range needs. What it serves is
 * checked on this read: blobs by their hashes (the blob reader), the layout
 * and tree by their checksum (before this object exists), each part's
 * length, and a whole read by the message's hash as well.
 */
export class MessageAccess {
  private treeCache: TreeNode | null = null;
  /** Blob reads this message's requests made (whole or ranged) and the canonical bytes they returned. */
  readonly stats = { reads: 0, bytes: 0 };
  private readonly reader: RangeBlobReader;

  readonly id: string;
  readonly size: number;
  /** Received time, unix ms (IMAP INTERNALDATE). */
  readonly received: number;
  private readonly hash: Buffer;

  constructor(
    facts: MessageFacts,
    private readonly layout: Layout,
    private readonly treeBytes: Buffer | null,
    reader: RangeBlobReader,
    private readonly tmpDir: string,
  ) {
    this.id = facts.id;
    this.size = facts.size;
    this.received = facts.received;
    this.hash = facts.hash;
    const stats = this.stats;
    async function* counted(src: AsyncIterable<Buffer> | Iterable<Buffer>): AsyncGenerator<Buffer> {
      stats.reads++;
      for await (const c of src) {
        stats.bytes += c.length;
        yield c;
      }
    }
    this.reader = { read: (h, n) => counted(reader.read(h, n)), readRange: (h, n, a, b) => counted(reader.readRange(h, n, a, b)) };
  }

  private get label(): string {
    return `message ${this.id}`;
  }

  /** The MIME tree; for a message stored before trees were kept, computed once from its bytes (which reads them). */
  async tree(): Promise<TreeNode> {
    if (this.treeCache) return this.treeCache;
    if (this.treeBytes) return (this.treeCache = decodeTree(this.treeBytes));
    const spool = await Spool.from(this.wholeStream(), { tmpDir: this.tmpDir, maxBytes: Number.MAX_SAFE_INTEGER });
    try {
      this.treeCache = treeOf(tokenize(spool.source, { maxParts: Number.MAX_SAFE_INTEGER }).root, spool.source);
    } finally {
      spool.dispose();
    }
    return this.treeCache;
  }

  /** Bytes [start, end) of the message; the whole of it is read as wholeStream reads it. */
  bytes(start: number, end: number): AsyncGenerator<Buffer> {
    if (start <= 0 && end >= this.size) return this.wholeStream();
    return reassembleRange(this.layout, this.reader, Math.max(0, start), Math.min(end, this.size), this.label);
  }

  /**
   * The whole message, streamed with small blobs read ahead (`readAhead`
   * of them) and checked against the message's hash and size as it goes
   * out: a mismatch errors the stream (E_INTEGRITY) after the last byte.
   */
  async *wholeStream(readAhead?: number): AsyncGenerator<Buffer> {
    const h = newHasher();
    let n = 0;
    for await (const c of coalesce(reassemble(this.layout, this.reader, this.label, readAhead))) {
      h.update(c);
      n += c.length;
      yield c;
    }
    if (n !== this.size || !h.digest().equals(this.hash)) {
      throw new MailcasError('E_INTEGRITY', `${this.label}: reassembled bytes do not match the stored hash`);
    }
  }

  /**
   * The whole message in memory, checked against its size and hash before it
   * is returned: gathered into one buffer of its size and hashed in one call
   * (no intermediate concatenation, no per-chunk hashing).
   */
  async whole(readAhead?: number): Promise<Buffer> {
    const out = await gather(reassemble(this.layout, this.reader, this.label, readAhead), this.size, this.label);
    if (!hashBuffer(out).equals(this.hash)) throw new MailcasError('E_INTEGRITY', `${this.label}: reassembled bytes do not match the stored hash`);
    return out;
  }

  /** Bytes [start, end) in one buffer; the whole message as whole() reads it. */
  async buffer(start: number, end: number): Promise<Buffer> {
    const a = Math.max(0, start);
    const b = Math.min(end, this.size);
    if (a === 0 && b === this.size) return this.whole();
    return gather(this.bytes(a, b), Math.max(0, b - a), this.label);
  }

  /**
   * The transfer-decoded content of a leaf part (IMAP BINARY, RFC 3516): the
   * canonical bytes the store keeps when the part was decoded at ingest; the
   * bytes themselves for 7bit/8bit/binary parts; decoded here for an
   * irregular base64 or quoted-printable part (stored as it came).
   */
  async binary(node: TreeNode, cte: string): Promise<Decoded> {
    const seg = this.segmentAt(node.bodyStart, node.bodyEnd);
    const enc = cte.toLowerCase();
    if (seg && (seg.recipe.t === 'base64' || seg.recipe.t === 'qp')) {
      const s = seg;
      return {
        size: s.size,
        bytes: (a, b) => (s.hash ? this.reader.readRange(s.hash, s.size, a, b) : [(s.inline ?? Buffer.alloc(0)).subarray(a, b)]),
      };
    }
    if (enc !== 'base64' && enc !== 'quoted-printable') {
      return { size: node.bodyEnd - node.bodyStart, bytes: (a, b) => this.bytes(node.bodyStart + a, node.bodyStart + b) };
    }
    if (node.bodyEnd - node.bodyStart > DECODE_IN_MEMORY_MAX) throw new MailcasError('E_TOO_LARGE', `part is too large to decode here (${node.bodyEnd - node.bodyStart} bytes)`);
    const raw = await this.buffer(node.bodyStart, node.bodyEnd);
    const decoded = enc === 'base64' ? Buffer.from(raw.toString('latin1').replace(/[^A-Za-z0-9+/=]/g, ''), 'base64') : qpLenient(raw);
    return { size: decoded.length, bytes: (a, b) => [decoded.subarray(a, b)] };
  }

  /** The stored part whose bytes are exactly [start, end) of the message, if the layout has one. */
  private segmentAt(start: number, end: number): PartSegment | null {
    let pos = 0;
    for (const s of this.layout.segments) {
      const len = s.k === 'part' ? s.rawSize : s.bytes.length;
      if (s.k === 'part' && pos === start && len === end - start) return s;
      if (pos > start) return null;
      pos += len;
    }
    return null;
  }
}

/** The chunks of a read of exactly `size` bytes, copied into one buffer of that size (E_INTEGRITY when they are more or fewer). */
async function gather(src: AsyncIterable<Buffer>, size: number, label: string): Promise<Buffer> {
  const out = Buffer.allocUnsafe(size);
  let n = 0;
  for await (const c of src) {
    if (n + c.length > size) throw new MailcasError('E_INTEGRITY', `${label}: reassembled to more than its ${size} bytes`);
    c.copy(out, n);
    n += c.length;
  }
  if (n !== size) throw new MailcasError('E_INTEGRITY', `${label}: reassembled to ${n} bytes, ${size} expected`);
  return out;
}

/** Quoted-printable decoded leniently (soft breaks removed, =XX decoded, anything else kept), for parts stored as they came. */
function qpLenient(raw: Buffer): Buffer {
  const out = Buffer.allocUnsafe(raw.length);
  let o = 0;
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i];
    if (c !== 0x3d) {
      out[o++] = c;
      continue;
    }
    if (raw[i + 1] === 0x0a) {
      i += 1;
      continue;
    }
    if (raw[i + 1] === 0x0d && raw[i + 2] === 0x0a) {
      i += 2;
      continue;
    }
    const h = raw.toString('latin1', i + 1, i + 3);
    if (/^[0-9A-Fa-f]{2}$/.test(h)) {
      out[o++] = parseInt(h, 16);
      i += 2;
    } else out[o++] = c;
  }
  return out.subarray(0, o);
}
