import type { Layout, PartSegment } from '../layout/layout.js';
import { MailcasError } from '../errors.js';
import { decodeTree, treeOf, type TreeNode } from '../split/mime-tree.js';
import { tokenize } from '../split/tokenizer.js';
import { Spool } from '../split/spool.js';
import { reassemble } from './reassemble.js';
import { reassembleRange, type RangeBlobReader } from './range.js';

/** Decoded content of a part (IMAP BINARY): its size and its bytes by range. */
export interface Decoded {
  size: number;
  bytes(start: number, end: number): AsyncIterable<Buffer> | Iterable<Buffer>;
}

/** Above this, a part whose transfer encoding was irregular (stored as it came) is not decoded for BINARY. */
const DECODE_IN_MEMORY_MAX = 64 * 1024 * 1024;

/**
 * One stored message as FETCH sees it: its size, its MIME tree (kept with
 * it: no blob read), and its bytes by range, reading only the blobs (and the
 * parts of them) a range needs. Blob reads are counted by the blob store.
 */
export class MessageAccess {
  private treeCache: TreeNode | null = null;
  /** Blob reads this message's requests made (whole or ranged) and the canonical bytes they returned. */
  readonly stats = { reads: 0, bytes: 0 };
  private readonly reader: RangeBlobReader;

  constructor(
    readonly id: string,
    readonly size: number,
    /** Received time, unix ms (IMAP INTERNALDATE). */
    readonly received: number,
    private readonly layout: Layout,
    private readonly treeBytes: Buffer | null,
    reader: RangeBlobReader,
    private readonly tmpDir: string,
  ) {
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
    const spool = await Spool.from(reassemble(this.layout, this.reader, this.label), { tmpDir: this.tmpDir, maxBytes: Number.MAX_SAFE_INTEGER });
    try {
      this.treeCache = treeOf(tokenize(spool.source, { maxParts: Number.MAX_SAFE_INTEGER }).root, spool.source);
    } finally {
      spool.dispose();
    }
    return this.treeCache;
  }

  /** Bytes [start, end) of the message. */
  bytes(start: number, end: number): AsyncGenerator<Buffer> {
    return reassembleRange(this.layout, this.reader, Math.max(0, start), Math.min(end, this.size), this.label);
  }

  async buffer(start: number, end: number): Promise<Buffer> {
    const parts: Buffer[] = [];
    for await (const c of this.bytes(start, end)) parts.push(c);
    return parts.length === 1 ? parts[0] : Buffer.concat(parts);
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
