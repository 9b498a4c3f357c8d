import type { ByteSource } from './byte-source.js';
import type { MimeNode } from './tokenizer.js';
import { ByteReader, ByteWriter } from '../util/bytes.js';
import { MailcasError } from '../errors.js';

/**
 * The MIME structure of a message as byte offsets into its exact bytes:
 * what IMAP's BODYSTRUCTURE, sections (HEADER, TEXT, MIME, 1.2...) and
 * sizes need, kept with the message so none of them reads a blob. Header
 * fields themselves are read from the stored header blocks when asked.
 */
export interface TreeNode {
  kind: 'leaf' | 'multipart' | 'message';
  headerStart: number;
  /** Where the body starts (the header block ends, blank line included). */
  bodyStart: number;
  bodyEnd: number;
  /** Line feeds in the body (IMAP's body size in lines). */
  lines: number;
  /** multipart: its parts; message: the one encapsulated message. */
  children: TreeNode[];
}

const KINDS = ['leaf', 'multipart', 'message'] as const;

/** The tree of a tokenized message, with its bodies' line counts. */
export function treeOf(root: MimeNode, src: ByteSource): TreeNode {
  const walk = (n: MimeNode): TreeNode => {
    const bodyStart = n.bodyStart - delimiterBlankLine(n, src);
    return {
      // a multipart without a usable boundary is still a multipart (of no parts) to IMAP
      kind: n.kind === 'leaf' && n.info.type.startsWith('multipart/') ? 'multipart' : n.kind,
      headerStart: n.headerStart,
      bodyStart,
      bodyEnd: n.bodyStart === n.bodyEnd ? bodyStart : n.bodyEnd,
      // IMAP gives line counts for text and message bodies only (a message/rfc822 left encoded too): other bodies (a 200 MB attachment) are not scanned
      lines: n.kind === 'message' || (n.kind === 'leaf' && (n.info.type.startsWith('text/') || n.info.type === 'text' || n.info.type.startsWith('message/'))) ? countLines(src, n.bodyStart, n.bodyEnd) : 0,
      children: n.children.map(walk),
    };
  };
  return walk(root);
}

/**
 * An entity with an empty body straight before a delimiter line
 * ("Content-Type: text/plain\r\n\r\n--b", or a header cut off by the
 * delimiter): the line break before a delimiter belongs to the delimiter
 * (RFC 2046 5.1.1), so the header block ends before it (as IMAP servers
 * answer the MIME section). Returns the length of that line break.
 */
function delimiterBlankLine(n: MimeNode, src: ByteSource): number {
  const at = n.bodyStart;
  if (n.bodyEnd !== at || at >= src.size || at - n.headerStart < 1) return 0;
  if (!src.read(at, at + 2).equals(DASHDASH)) return 0;
  const t = src.read(Math.max(n.headerStart, at - 2), at).toString('latin1');
  return t.endsWith('\r\n') ? 2 : t.endsWith('\n') ? 1 : 0;
}

const DASHDASH = Buffer.from('--', 'latin1');

const LF = Buffer.from('\n');

function countLines(src: ByteSource, start: number, end: number): number {
  let n = 0;
  for (let p = src.indexOf(LF, start, end); p >= 0; p = src.indexOf(LF, p + 1, end)) n++;
  return n;
}

/** Compact binary form (preorder; varints). */
export function encodeTree(t: TreeNode): Buffer {
  const w = new ByteWriter();
  w.u8(1);
  const put = (n: TreeNode): void => {
    w.u8(KINDS.indexOf(n.kind)).varint(n.headerStart).varint(n.bodyStart - n.headerStart).varint(n.bodyEnd - n.bodyStart).varint(n.lines).varint(n.children.length);
    for (const c of n.children) put(c);
  };
  put(t);
  return w.done();
}

export function decodeTree(b: Buffer): TreeNode {
  const r = new ByteReader(b);
  if (r.u8() !== 1) throw new MailcasError('E_CORRUPT', 'unknown structure version');
  const get = (depth: number): TreeNode => {
    if (depth > 200) throw new MailcasError('E_CORRUPT', 'structure nested too deep');
    const kind = KINDS[r.u8()];
    if (!kind) throw new MailcasError('E_CORRUPT', 'unknown structure node');
    const headerStart = r.varint();
    const bodyStart = headerStart + r.varint();
    const bodyEnd = bodyStart + r.varint();
    const lines = r.varint();
    const n = r.varint();
    const children: TreeNode[] = [];
    for (let i = 0; i < n; i++) children.push(get(depth + 1));
    return { kind, headerStart, bodyStart, bodyEnd, lines, children };
  };
  return get(0);
}
