/**
 * FETCH data items (RFC 3501 6.4.5, BINARY from RFC 3516): parsing an item
 * list and answering each item for one message. Shared by the IMAP front and
 * the HTTP service; no I/O beyond the message's own range reads. Sizes,
 * envelope and structure come from the message's tree and header blocks
 * (metadata); section bytes read only the range asked for.
 */
import { MailcasError } from '../errors.js';
import type { MessageAccess } from '../reassemble/message-access.js';
import type { TreeNode } from '../split/mime-tree.js';
import { filterFields, first, parseFields } from './header.js';
import { bodyStructure, envelope, parseSection, partNode, resolveSection, type Section } from './structure.js';
import type { ImapValue } from './wire.js';

export type FetchItem =
  | { kind: 'meta'; name: 'RFC822.SIZE' | 'INTERNALDATE' | 'ENVELOPE' | 'BODY' | 'BODYSTRUCTURE' | 'UID' | 'FLAGS' | 'MODSEQ' }
  | { kind: 'section'; name: string; section: Section; spec: string; binary: boolean; peek: boolean; partial: { offset: number; length: number } | null }
  | { kind: 'binary-size'; name: string; section: Section; spec: string };

/** What an item answers: a value, or bytes (already cut to the partial range). */
/** An item's answer: a value, or bytes of a known size (streamed, or gathered in one buffer by `buffer` where that costs less). */
export type FetchAnswer = { name: string; value: ImapValue } | { name: string; size: number; bytes: () => AsyncIterable<Buffer>; buffer?: () => Promise<Buffer> };

const META = new Set(['RFC822.SIZE', 'INTERNALDATE', 'ENVELOPE', 'BODY', 'BODYSTRUCTURE', 'UID', 'FLAGS']);
const MACROS: Record<string, string[]> = {
  ALL: ['FLAGS', 'INTERNALDATE', 'RFC822.SIZE', 'ENVELOPE'],
  FAST: ['FLAGS', 'INTERNALDATE', 'RFC822.SIZE'],
  FULL: ['FLAGS', 'INTERNALDATE', 'RFC822.SIZE', 'ENVELOPE', 'BODY'],
};
/** Items per request, and field names per HEADER.FIELDS: a request is small; more is refused. */
export const FETCH_ITEMS_MAX = 64;

const bad = (msg: string): MailcasError => new MailcasError('E_USAGE', msg);

/**
 * Parses a FETCH item list: one item, a macro, or "(item item ...)", e.g.
 * `(UID RFC822.SIZE BODY.PEEK[HEADER.FIELDS (From Subject)] BINARY[2]<0.1024>)`.
 */
export function parseFetchItems(text: string): FetchItem[] {
  let s = text.trim();
  if (s.startsWith('(')) {
    if (!s.endsWith(')')) throw bad('unbalanced parentheses in the item list');
    s = s.slice(1, -1).trim();
  }
  const words: string[] = [];
  let i = 0;
  while (i < s.length) {
    if (s[i] === ' ') {
      i++;
      continue;
    }
    let j = i;
    let depth = 0;
    while (j < s.length && (depth > 0 || s[j] !== ' ')) {
      if (s[j] === '[' || s[j] === '(') depth++;
      else if (s[j] === ']' || s[j] === ')') depth--;
      if (depth < 0) throw bad(`unbalanced brackets in "${s}"`);
      j++;
    }
    if (depth) throw bad(`unbalanced brackets in "${s}"`);
    words.push(s.slice(i, j));
    i = j;
  }
  if (!words.length) throw bad('no fetch items');
  const out: FetchItem[] = [];
  for (const w of words) {
    const macro = MACROS[w.toUpperCase()];
    if (macro && words.length === 1) out.push(...macro.map((m) => parseItem(m)));
    else out.push(parseItem(w));
  }
  if (out.length > FETCH_ITEMS_MAX) throw bad(`too many fetch items (the limit is ${FETCH_ITEMS_MAX})`);
  return out;
}

function parseItem(w: string): FetchItem {
  const up = w.toUpperCase();
  if (META.has(up)) return { kind: 'meta', name: up as 'RFC822.SIZE' };
  if (up === 'RFC822') return sectionItem('BODY', '', false, false, null, 'RFC822');
  if (up === 'RFC822.HEADER') return sectionItem('BODY', 'HEADER', false, true, null, 'RFC822.HEADER');
  if (up === 'RFC822.TEXT') return sectionItem('BODY', 'TEXT', false, false, null, 'RFC822.TEXT');
  const m = /^(BODY|BODY\.PEEK|BINARY|BINARY\.PEEK|BINARY\.SIZE)\[([^\]]*)\](?:<(\d+)\.(\d+)>)?$/i.exec(w);
  if (!m) throw bad(`unknown fetch item "${w}"`);
  const kind = m[1].toUpperCase();
  const spec = m[2];
  const partial = m[3] !== undefined ? { offset: Number(m[3]), length: Number(m[4]) } : null;
  if (partial && (!Number.isSafeInteger(partial.offset) || !Number.isSafeInteger(partial.length))) throw bad(`partial range out of bounds in "${w}"`);
  if (kind === 'BINARY.SIZE') {
    if (partial) throw bad('BINARY.SIZE takes no partial range');
    return { kind: 'binary-size', name: `BINARY.SIZE[${spec}]`, section: binarySection(spec, w), spec };
  }
  if (kind.startsWith('BINARY')) {
    binarySection(spec, w);
    return sectionItem('BINARY', spec, true, kind.endsWith('PEEK'), partial, null);
  }
  return sectionItem('BODY', spec, false, kind.endsWith('PEEK'), partial, null);
}

function binarySection(spec: string, w: string): Section {
  if (!/^((\d+\.)*\d+)?$/.test(spec)) throw bad(`BINARY takes part numbers only, not "${w}"`);
  return parseSection(spec)!;
}

function sectionItem(base: 'BODY' | 'BINARY', spec: string, binary: boolean, peek: boolean, partial: { offset: number; length: number } | null, alias: string | null): FetchItem {
  const section = parseSection(spec);
  if (!section) throw bad(`malformed section "${spec}"`);
  if (section.fields.length > FETCH_ITEMS_MAX) throw bad(`too many header field names (the limit is ${FETCH_ITEMS_MAX})`);
  // the response names the section as the request did, minus .PEEK, with the partial's origin only (RFC 3501 7.4.2)
  const canonical = `${section.part.join('.')}${section.part.length && section.text ? '.' : ''}${section.text}${section.fields.length ? ` (${section.fields.join(' ')})` : ''}`;
  const name = alias ?? `${base}[${canonical}]${partial ? `<${partial.offset}>` : ''}`;
  return { kind: 'section', name, section, spec, binary, peek, partial };
}

/** INTERNALDATE as IMAP writes it ("17-Jul-1996 02:44:25 +0000"). */
export function internalDate(ms: number): string {
  const d = new Date(ms);
  const mon = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'][d.getUTCMonth()];
  const p2 = (n: number) => String(n).padStart(2, '0');
  return `${p2(d.getUTCDate())}-${mon}-${d.getUTCFullYear()} ${p2(d.getUTCHours())}:${p2(d.getUTCMinutes())}:${p2(d.getUTCSeconds())} +0000`;
}

/** The answer to one item for one message (UID and FLAGS are the front's: answered by the caller). */
export async function answerItem(m: MessageAccess, item: FetchItem): Promise<FetchAnswer> {
  const tree = await m.tree();
  const src = { header: (a: number, b: number) => m.buffer(a, b) };
  if (item.kind === 'meta') {
    switch (item.name) {
      case 'RFC822.SIZE':
        return { name: item.name, value: m.size };
      case 'INTERNALDATE':
        return { name: item.name, value: internalDate(m.received) };
      case 'ENVELOPE':
        return { name: item.name, value: await envelope(parseFields(await m.buffer(tree.headerStart, tree.bodyStart))) };
      case 'BODY':
      case 'BODYSTRUCTURE':
        return { name: item.name, value: await bodyStructure(tree, src, item.name === 'BODYSTRUCTURE') };
      default:
        throw bad(`${item.name} is answered by the front, not by the store`);
    }
  }
  if (item.kind === 'binary-size') {
    const d = await decodedOf(m, tree, item.section);
    return { name: item.name, value: d.size };
  }
  if (item.binary) {
    const d = await decodedOf(m, tree, item.section);
    const [a, b] = cut(d.size, item.partial);
    return { name: item.name, size: b - a, bytes: () => toAsync(d.bytes(a, b)) };
  }
  const t = resolveSection(tree, m.size, item.section);
  if (!t) throw new MailcasError('E_NOT_FOUND', `no section ${item.spec || '(whole message)'} in message ${m.id}`);
  if (t.kind === 'fields') {
    const b = filterFields(await m.buffer(t.start, t.end), t.names, t.not);
    const [x, y] = cut(b.length, item.partial);
    return { name: item.name, size: y - x, bytes: () => toAsync([b.subarray(x, y)]) };
  }
  const [x, y] = cut(t.end - t.start, item.partial);
  return { name: item.name, size: y - x, bytes: () => m.bytes(t.start + x, t.start + y), buffer: () => m.buffer(t.start + x, t.start + y) };
}

/** The decoded content of a leaf part (BINARY); the whole message or a message part as it is. */
async function decodedOf(m: MessageAccess, tree: TreeNode, section: Section): Promise<{ size: number; bytes: (a: number, b: number) => AsyncIterable<Buffer> | Iterable<Buffer> }> {
  if (!section.part.length) return { size: m.size, bytes: (a, b) => m.bytes(a, b) };
  const node = partNode(tree, section.part);
  if (!node) throw new MailcasError('E_NOT_FOUND', `no part ${section.part.join('.')} in message ${m.id}`);
  if (node.kind === 'multipart') throw new MailcasError('E_REFUSED', `part ${section.part.join('.')} is a multipart: BINARY takes a single part`, { data: { imap: 'CANNOT' } });
  const fields = parseFields(await m.buffer(node.headerStart, node.bodyStart));
  const cte = (first(fields, 'content-transfer-encoding') ?? '7bit').trim().toLowerCase();
  if (!['7bit', '8bit', 'binary', 'base64', 'quoted-printable', ''].includes(cte)) {
    throw new MailcasError('E_REFUSED', `part ${section.part.join('.')} has a transfer encoding mailcas cannot decode (${cte})`, { data: { imap: 'UNKNOWN-CTE' } });
  }
  return m.binary(node, cte);
}

/** [start, end) of a partial range over a body of `size` bytes (an origin past the end: empty). */
function cut(size: number, partial: { offset: number; length: number } | null): [number, number] {
  if (!partial) return [0, size];
  const a = Math.min(partial.offset, size);
  return [a, Math.min(size, a + partial.length)];
}

async function* toAsync(it: AsyncIterable<Buffer> | Iterable<Buffer>): AsyncGenerator<Buffer> {
  yield* it;
}
