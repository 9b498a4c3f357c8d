import type { ByteSource } from './byte-source.js';
import { contentInfo, parseHeaderBlock, type ContentInfo, type HeaderField } from './header-fields.js';
import {
  BOUNDARY_MAX_BYTES,
  DELIMITER_PADDING_MAX,
  HEADER_BLOCK_MAX_BYTES,
  HEADER_LINE_MAX_BYTES,
  HEADER_PARSE_BYTES,
  MAX_MIME_DEPTH,
  DEFAULT_MAX_PARTS,
} from '../limits.js';
import { MailcasError } from '../errors.js';

/** One entity of the MIME tree: a header block and a body. */
export interface MimeNode {
  /** IMAP part number ("" for the message itself, "1", "1.2", ...). */
  path: string;
  depth: number;
  kind: 'leaf' | 'multipart' | 'message';
  headerStart: number;
  headerEnd: number;
  fields: HeaderField[];
  info: ContentInfo;
  bodyStart: number;
  bodyEnd: number;
  children: MimeNode[];
}

/**
 * A contiguous byte range of the input. Segments cover the input exactly,
 * in order, with no gaps or overlaps: header blocks, leaf bodies, and
 * literal structure (preamble, delimiter lines with their padding and the
 * line break before them, epilogue, junk).
 */
export interface Segment {
  kind: 'header' | 'body' | 'literal';
  start: number;
  end: number;
  node?: MimeNode;
}

export interface Tokenized {
  root: MimeNode;
  segments: Segment[];
}

interface Hit {
  /** Where the delimiter segment starts (includes the line break before the line, when it belongs to the region). */
  segStart: number;
  lineStart: number;
  lineEnd: number;
  level: number;
  close: boolean;
}

const LF = 0x0a;
const CR = 0x0d;
const DASH = 0x2d;

/**
 * Splits a message into a MIME tree and an exact segment list. Never throws
 * on malformed input; refuses (E_TOO_LARGE, naming the limit) a message with
 * more than `maxParts` MIME entities, as soon as it sees the one too many.
 */
export function tokenize(src: ByteSource, opts: { maxParts?: number; maxDepth?: number } = {}): Tokenized {
  return new Tokenizer(src, opts.maxParts ?? DEFAULT_MAX_PARTS, opts.maxDepth ?? null).run();
}

class Tokenizer {
  private readonly segments: Segment[] = [];
  /** Active delimiters ("--" + boundary), outermost first. */
  private readonly bounds: Buffer[] = [];
  private maxBound = 0;
  private nodes = 0;
  /** Per active level: its "\n" + delimiter needle, and where it was last found (from where). */
  private needles: (Buffer | undefined)[] = [];
  private found: ({ from: number; at: number } | undefined)[] = [];

  constructor(
    private readonly src: ByteSource,
    private readonly maxParts: number,
    /** Refuse (E_TOO_LARGE) nesting deeper than this; null: keep what is deeper than MAX_MIME_DEPTH as opaque bytes. */
    private readonly maxDepth: number | null,
  ) {}

  run(): Tokenized {
    const root = this.parseNode('', 0, 0, 'text/plain');
    const size = this.src.size;
    if (root.bodyEnd < size) this.literal(root.bodyEnd, size);
    // invariant: contiguous cover of [0, size)
    let pos = 0;
    for (const s of this.segments) {
      if (s.start !== pos || s.end < s.start) throw new MailcasError('E_INTERNAL', `tokenizer gap at ${pos}`);
      pos = s.end;
    }
    if (pos !== size) throw new MailcasError('E_INTERNAL', `tokenizer covered ${pos} of ${size} bytes`);
    return { root, segments: this.segments };
  }

  private push(kind: Segment['kind'], start: number, end: number, node?: MimeNode): void {
    if (end <= start && kind === 'literal') return;
    if (kind === 'literal') {
      const last = this.segments[this.segments.length - 1];
      if (last && last.kind === 'literal' && last.end === start) {
        last.end = end;
        return;
      }
    }
    this.segments.push({ kind, start, end, node });
  }
  private literal(start: number, end: number): void {
    this.push('literal', start, end);
  }

  /** Parses one entity starting at pos. Returns the node; `this.lastHit` holds the delimiter that ended it (or null at EOF). */
  private lastHit: Hit | null = null;

  private parseNode(path: string, pos: number, depth: number, defaultType: string): MimeNode {
    if (++this.nodes > this.maxParts) {
      throw new MailcasError('E_TOO_LARGE', `message has more than ${this.maxParts} MIME parts (the limit is ${this.maxParts})`, { data: { limit: this.maxParts, what: 'parts' } });
    }
    const src = this.src;
    const size = src.size;
    // ---- header block
    const headerStart = pos;
    let p = pos;
    let bodyStart = -1;
    let hit: Hit | null = null;
    while (p < size) {
      if (this.bounds.length && src.read(p, p + 2).equals(DASHDASH)) {
        hit = this.delimiterAt(p, p);
        if (hit) break;
      }
      const lf = src.indexOf(LF_BUF, p, Math.min(size, p + HEADER_LINE_MAX_BYTES));
      const lineEnd = lf < 0 ? size : lf + 1;
      if (lf < 0 && size - p > HEADER_LINE_MAX_BYTES) {
        bodyStart = p;
        break;
      }
      const contentEnd = lf < 0 ? size : lf > p && src.read(lf - 1, lf)[0] === CR ? lf - 1 : lf;
      if (contentEnd === p) {
        bodyStart = lineEnd; // blank separator line belongs to the header block
        break;
      }
      if (lineEnd - headerStart > HEADER_BLOCK_MAX_BYTES) {
        bodyStart = p;
        break;
      }
      // every line up to the blank line belongs to the header block, a malformed one too (as Dovecot and
      // RFC 5322 readers take it): only a blank line, a delimiter or a limit ends it
      p = lineEnd;
    }
    if (hit) bodyStart = hit.lineStart;
    if (bodyStart < 0) bodyStart = size;
    const headerEnd = hit ? hit.lineStart : bodyStart;
    const headerBytes = src.read(headerStart, Math.min(headerEnd, headerStart + HEADER_PARSE_BYTES));
    const fields = parseHeaderBlock(headerBytes);
    const info = contentInfo(fields, defaultType);
    const node: MimeNode = {
      path,
      depth,
      kind: 'leaf',
      headerStart,
      headerEnd,
      fields,
      info,
      bodyStart,
      bodyEnd: bodyStart,
      children: [],
    };
    this.push('header', headerStart, headerEnd, node);
    if (hit) {
      this.push('body', bodyStart, bodyStart, node);
      this.lastHit = hit;
      return node;
    }

    // ---- body
    const boundary = info.params['boundary'];
    if (this.maxDepth !== null && depth > this.maxDepth) {
      throw new MailcasError('E_TOO_LARGE', `MIME parts nested deeper than ${this.maxDepth} levels (the limit is ${this.maxDepth})`, { data: { limit: this.maxDepth, what: 'depth' } });
    }
    const canNest = depth < MAX_MIME_DEPTH && bodyStart < size;
    if (info.type.startsWith('multipart/') && boundary && boundary.length <= BOUNDARY_MAX_BYTES && canNest) {
      node.kind = 'multipart';
      this.parseMultipart(node, Buffer.from('--' + boundary, 'latin1'));
    } else if (
      (info.type === 'message/rfc822' || info.type === 'message/global') &&
      (info.cte === '' || info.cte === '7bit' || info.cte === '8bit' || info.cte === 'binary') &&
      canNest
    ) {
      node.kind = 'message';
      const child = this.parseNode(path, bodyStart, depth + 1, 'text/plain');
      node.children.push(child);
      node.bodyEnd = child.bodyEnd;
    } else {
      const h = this.nextDelimiter(bodyStart);
      node.bodyEnd = h ? h.segStart : size;
      this.push('body', bodyStart, node.bodyEnd, node);
      this.lastHit = h;
    }
    return node;
  }

  private parseMultipart(node: MimeNode, delim: Buffer): void {
    const level = this.bounds.length;
    this.bounds.push(delim);
    this.needles[level] = undefined;
    this.found[level] = undefined;
    const prevMax = this.maxBound;
    this.maxBound = Math.max(this.maxBound, delim.length);
    const size = this.src.size;
    const childType = node.info.type === 'multipart/digest' ? 'message/rfc822' : 'text/plain';
    let h = this.nextDelimiter(node.bodyStart);
    this.literal(node.bodyStart, h ? h.segStart : size); // preamble
    let n = 0;
    let end = h ? h.segStart : size; // an ancestor's delimiter before any of its own ends it there
    while (h && h.level === level) {
      this.literal(h.segStart, h.lineEnd);
      if (h.close) {
        this.bounds.length = level;
        const e = this.nextDelimiter(h.lineEnd);
        end = e ? e.segStart : size;
        this.literal(h.lineEnd, end); // epilogue
        h = e;
        break;
      }
      n++;
      const child = this.parseNode(node.path ? `${node.path}.${n}` : String(n), h.lineEnd, node.depth + 1, childType);
      node.children.push(child);
      h = this.lastHit;
      end = h ? h.segStart : size;
    }
    // closed implicitly by an ancestor's delimiter or by the end of input
    this.bounds.length = level;
    this.maxBound = prevMax;
    node.bodyEnd = end;
    this.lastHit = h;
  }

  /**
   * Finds the next delimiter line of any active boundary at or after a line
   * start `from`. Each level searches for its own "\n--boundary" and
   * remembers where it found it, so the input is scanned about once per
   * level whatever it holds (lines of "--x" that are no delimiter cost
   * nothing more than any other line).
   */
  private nextDelimiter(from: number): Hit | null {
    if (!this.bounds.length) return null;
    const src = this.src;
    if (src.read(from, from + 2).equals(DASHDASH)) {
      const h = this.delimiterAt(from, from);
      if (h) return h;
    }
    let p = from;
    for (;;) {
      let best = -1;
      for (let level = 0; level < this.bounds.length; level++) {
        const i = this.nextCandidate(level, p);
        if (i >= 0 && (best < 0 || i < best)) best = i;
      }
      if (best < 0) return null;
      const h = this.delimiterAt(best + 1, from);
      if (h) return h;
      p = best + 1;
    }
  }

  /** Position of the next "\n" + delimiter of `level` at or after p (cached per level; searches only move forward). */
  private nextCandidate(level: number, p: number): number {
    const c = this.found[level];
    if (c && c.from <= p && (c.at < 0 || c.at >= p)) return c.at;
    let needle = this.needles[level];
    if (!needle) needle = this.needles[level] = Buffer.concat([LF_BUF, this.bounds[level]]);
    const at = this.src.indexOf(needle, p);
    this.found[level] = { from: p, at };
    return at;
  }

  /** Checks whether the line starting at q is a delimiter of an active boundary (innermost first). */
  private delimiterAt(q: number, regionStart: number): Hit | null {
    const src = this.src;
    const size = src.size;
    const win = src.read(q, Math.min(size, q + this.maxBound + DELIMITER_PADDING_MAX + 4));
    for (let level = this.bounds.length - 1; level >= 0; level--) {
      const d = this.bounds[level];
      if (win.length < d.length || win.compare(d, 0, d.length, 0, d.length) !== 0) continue;
      let lf = win.indexOf(LF, d.length);
      let lineEnd: number;
      if (lf < 0) {
        if (q + win.length < size) continue; // line too long to be a delimiter
        lf = win.length;
        lineEnd = size;
      } else {
        lineEnd = q + lf + 1;
      }
      let restEnd = lf;
      if (restEnd > d.length && win[restEnd - 1] === CR) restEnd--;
      let close = false;
      let ok = true;
      if (restEnd - d.length >= 2 && win[d.length] === DASH && win[d.length + 1] === DASH) {
        close = true;
      } else {
        for (let k = d.length; k < restEnd; k++) {
          const c = win[k];
          if (c !== 0x20 && c !== 0x09) {
            ok = false;
            break;
          }
        }
      }
      if (!ok) continue;
      let segStart = q;
      if (q > regionStart && q >= 1 && src.read(q - 1, q)[0] === LF) {
        segStart = q - 1;
        if (q - 1 > regionStart && src.read(q - 2, q - 1)[0] === CR) segStart = q - 2;
      }
      return { segStart, lineStart: q, lineEnd, level, close };
    }
    return null;
  }
}

const DASHDASH = Buffer.from('--', 'latin1');
const LF_BUF = Buffer.from('\n', 'latin1');
