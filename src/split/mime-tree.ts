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
  const walk = (n: MimeNode): TreeNode => ({
    kind: n.kind,
    headerStart: n.headerStart,
    bodyStart: n.bodyStart,
    bodyEnd: n.bodyEnd,
    // IMAP gives line counts for text and message bodies only: other bodies (a 200 MB attachment) are not scanned
    lines: n.kind === 'message' || (n.kind === 'leaf' && n.info.type.startsWith('text/')) ? countLines(src, n.bodyStart, n.bodyEnd) : 0,
    children: n.children.map(walk),
  });
  return walk(root);
}

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
