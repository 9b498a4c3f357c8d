import type { TreeNode } from '../split/mime-tree.js';
import { first, last, parseFields, rawParams, type RawField } from './header.js';
import { isGroupStart, parseAddresses } from './address.js';
import type { ImapValue } from './wire.js';

/**
 * What IMAP asks about a message's structure, computed from its MIME tree
 * (byte offsets, kept with the message) and its header blocks (read from
 * the layout: no blob). Pure: the caller supplies header bytes by range.
 */
export interface HeaderSource {
  /** The exact bytes of a header block [start, end) of the message (header blocks only: never a blob read). */
  header(start: number, end: number): Promise<Buffer>;
}

export async function envelope(fields: RawField[]): Promise<ImapValue> {
  // every field of that name counts (three Cc: lines are one list, as Dovecot reads them); a missing local part or
  // domain is named, not left out, so clients never take an address for a group marker
  const addr = (name: string): ImapValue => {
    const vs = fields.filter((f) => f.name === name);
    if (!vs.length) return null;
    const list = vs.flatMap((f) => parseAddresses(f.value));
    return list.length
      ? list.map((a) => {
          const groupMark = a.host === null && a.adl === null && a.name === null && (a.mailbox === null || isGroupStart(a));
          return groupMark ? [a.name, a.adl, a.mailbox, a.host] : [a.name, a.adl, a.mailbox || 'MISSING_MAILBOX', a.host || 'MISSING_DOMAIN'];
        })
      : null;
  };
  const from = addr('from');
  const subject = last(fields, 'subject');
  // the subject with its runs of blanks made one space and no trailing blanks, as Dovecot gives it
  return [last(fields, 'date'), subject === null ? null : subject.replace(/[ \t]+/g, ' ').replace(/ $/, ''), from, addr('sender') ?? from, addr('reply-to') ?? from, addr('to'), addr('cc'), addr('bcc'), last(fields, 'in-reply-to'), last(fields, 'message-id')];
}


/** Content-Type (with the defaults of RFC 2045 and of multipart/digest) as IMAP splits it; type and subtype keep their case. */
function contentType(fields: RawField[], parentDigest: boolean): { type: string; subtype: string; params: [string, string][] } {
  const ct = first(fields, 'content-type');
  const dflt = parentDigest ? { type: 'message', subtype: 'rfc822', params: [] as [string, string][] } : { type: 'text', subtype: 'plain', params: [['charset', 'us-ascii']] as [string, string][] };
  if (ct === null) return dflt;
  const p = rawParams(ct);
  // a bare "text" with no parameters is text with an empty subtype (as Dovecot reads it); other types without a subtype are unreadable
  const m = /^([^/\s;]+)\s*\/\s*([^/\s;]+)$/.exec(p.value) ?? (p.params.length ? null : /^(text)()$/i.exec(p.value));
  if (!m) return { type: '', subtype: '', params: [] }; // present but unreadable: Dovecot answers "" "" with no parameters
  const params = p.params;
  // as Dovecot: a text part that names no charset is us-ascii (RFC 2045 5.2)
  if (m[1].toLowerCase() === 'text' && !params.some(([k]) => k.toLowerCase() === 'charset')) params.push(['charset', 'us-ascii']);
  // message/rfc822 is the one type IMAP always spells in lower case (Dovecot does): clients compare it literally
  if (m[1].toLowerCase() === 'message' && m[2].toLowerCase() === 'rfc822') return { type: 'message', subtype: 'rfc822', params };
  return { type: m[1], subtype: m[2], params };
}

/** Content-Transfer-Encoding as written; absent, empty or not a token: 7bit (as Dovecot answers). */
function transferEncoding(fields: RawField[]): string {
  const v = (first(fields, 'content-transfer-encoding') ?? '').trim();
  return /^[!#$%&'*+\-.0-9A-Z^_`a-z{|}~]+$/.test(v) ? v : '7bit';
}

const plist = (params: [string, string][]): ImapValue => (params.length ? params.flatMap(([k, v]) => [k, v]) : null);

function disposition(fields: RawField[]): ImapValue {
  const cd = first(fields, 'content-disposition');
  if (cd === null) return null;
  const p = rawParams(cd);
  // a disposition that is not a token (empty, an encoded word) is answered "" (as Dovecot does)
  return [/^[!#$%&'*+\-.0-9A-Z^_`a-z{|}~]+$/.test(p.value) ? p.value : '', plist(p.params)];
}

function language(fields: RawField[]): ImapValue {
  const l = first(fields, 'content-language');
  if (l === null) return null;
  const langs = l.split(',').map((x) => x.trim()).filter(Boolean);
  return langs.length === 0 ? null : langs; // always a list, one language too (as Dovecot sends it)
}

/**
 * BODYSTRUCTURE (extensible) or BODY (without extension data) of the
 * entity `node`. `role`: a message (the top or an encapsulated one), a
 * part, or a part of multipart/digest (its default type is message/rfc822).
 */
export async function bodyStructure(node: TreeNode, src: HeaderSource, extensible: boolean, role: 'message' | 'part' | 'digest-part' = 'message'): Promise<ImapValue> {
  let fields = parseFields(await src.header(node.headerStart, node.bodyStart));
  // a message with neither MIME-Version nor Content-Type is not MIME: its other Content-* fields are not read (as Dovecot does)
  if (role === 'message' && !fields.some((f) => f.name === 'mime-version' || f.name === 'content-type')) fields = [];
  const parentDigest = role === 'digest-part';
  const ct = contentType(fields, parentDigest);
  const ext = (...more: ImapValue[]): ImapValue[] => (extensible ? [...more, disposition(fields), language(fields), first(fields, 'content-location')] : []);
  if (node.kind === 'multipart' || ct.type.toLowerCase() === 'multipart') {
    const digest = ct.subtype.toLowerCase() === 'digest';
    const kids: ImapValue[] = [];
    if (node.kind === 'multipart') for (const c of node.children) kids.push(await bodyStructure(c, src, extensible, digest ? 'digest-part' : 'part'));
    // a multipart with no parts (no delimiter, or no boundary at all) has one empty text part, as Dovecot shows it
    if (!kids.length) kids.push(['text', 'plain', ['charset', 'us-ascii'], null, null, '7bit', 0, 0, ...(extensible ? [null, null, null, null] : [])]);
    return [...kids, ct.subtype, ...(extensible ? ext(plist(ct.params)) : [])];
  }
  const size = node.bodyEnd - node.bodyStart;
  const basic: ImapValue[] = [ct.type, ct.subtype, plist(ct.params), first(fields, 'content-id'), first(fields, 'content-description'), transferEncoding(fields), size];
  const t = ct.type.toLowerCase();
  if (node.kind === 'message' && node.children[0]) {
    const inner = node.children[0];
    const innerFields = parseFields(await src.header(inner.headerStart, inner.bodyStart));
    basic.push(await envelope(innerFields), await bodyStructure(inner, src, extensible), node.lines);
  } else if (t === 'message' && ct.subtype.toLowerCase() === 'rfc822') {
    // a message/rfc822 body that is not parsed (transfer-encoded): IMAP still wants an envelope, a body and lines;
    // an empty envelope and an empty text part (as Dovecot answers)
    const emptyText: ImapValue[] = ['text', 'plain', ['charset', 'us-ascii'], null, null, '7bit', 0, 0, ...(extensible ? [null, null, null, null] : [])];
    basic.push(Array(10).fill(null), emptyText, node.lines);
  } else if (t === 'text') {
    basic.push(node.lines);
  }
  return extensible ? [...basic, ...ext(first(fields, 'content-md5'))] : basic;
}

/** A section of a message as a byte range of it, or a header block to filter. */
export type SectionTarget = { kind: 'range'; start: number; end: number } | { kind: 'fields'; start: number; end: number; names: string[]; not: boolean };

export interface Section {
  /** Part numbers: [] for the message itself. */
  part: number[];
  text: '' | 'HEADER' | 'TEXT' | 'MIME' | 'HEADER.FIELDS' | 'HEADER.FIELDS.NOT';
  fields: string[];
}

/** Parses a section spec ("", "1.2", "HEADER", "2.MIME", "3.HEADER.FIELDS (From To)"); null when malformed. */
export function parseSection(spec: string): Section | null {
  const m = /^((?:\d+\.)*\d+)?(?:\.?(HEADER\.FIELDS\.NOT|HEADER\.FIELDS|HEADER|TEXT|MIME))?(?:\s*\(([^)]*)\))?$/i.exec(spec.trim());
  if (!m) return null;
  const part = m[1] ? m[1].split('.').map(Number) : [];
  if (part.some((n) => !Number.isSafeInteger(n) || n < 1)) return null;
  const text = (m[2] ?? '').toUpperCase() as Section['text'];
  if (text === 'MIME' && !part.length) return null;
  if (spec.trim().length && !m[1] && !m[2]) return null;
  const fields = (m[3] ?? '').split(/\s+/).filter(Boolean);
  if (text.startsWith('HEADER.FIELDS') !== fields.length > 0) return null;
  return { part, text, fields };
}

/**
 * Where a section is (RFC 3501 6.4.5): part numbers walk the tree (a
 * non-multipart entity has one part, itself; a message/rfc822 part's
 * numbers continue into the message it encapsulates); null when there is
 * no such part.
 */
export function resolveSection(root: TreeNode, size: number, s: Section): SectionTarget | null {
  const node = partNode(root, s.part);
  if (!node) return null;
  const range = (start: number, end: number): SectionTarget => ({ kind: 'range', start, end });
  if (!s.part.length) {
    if (s.text === '') return range(0, size);
    if (s.text === 'HEADER') return range(root.headerStart, root.bodyStart);
    if (s.text === 'TEXT') return range(root.bodyStart, size);
    return { kind: 'fields', start: root.headerStart, end: root.bodyStart, names: s.fields, not: s.text === 'HEADER.FIELDS.NOT' };
  }
  if (s.text === '') return range(node.bodyStart, node.bodyEnd);
  if (s.text === 'MIME') return range(node.headerStart, node.bodyStart);
  // HEADER / TEXT / HEADER.FIELDS of a part: of the message it encapsulates
  const inner = node.kind === 'message' ? node.children[0] : null;
  if (!inner) return null;
  if (s.text === 'HEADER') return range(inner.headerStart, inner.bodyStart);
  if (s.text === 'TEXT') return range(inner.bodyStart, node.bodyEnd);
  return { kind: 'fields', start: inner.headerStart, end: inner.bodyStart, names: s.fields, not: s.text === 'HEADER.FIELDS.NOT' };
}

/** The tree node a part number names ([]: the message itself); null when there is no such part. */
export function partNode(root: TreeNode, part: number[]): TreeNode | null {
  let node = root;
  let top = true;
  for (const n of part) {
    const holder = node.kind === 'message' && !top ? node.children[0] : node; // numbers continue inside an encapsulated message
    if (!holder) return null;
    if (holder.kind === 'multipart' && !holder.children.length) {
      // a multipart of no parts shows one empty part (see bodyStructure)
      if (n !== 1) return null;
      node = { kind: 'leaf', headerStart: holder.bodyEnd, bodyStart: holder.bodyEnd, bodyEnd: holder.bodyEnd, lines: 0, children: [] };
    } else if (holder.kind === 'multipart') {
      const c = holder.children[n - 1];
      if (!c) return null;
      node = c;
    } else {
      if (n !== 1) return null;
      node = holder;
    }
    top = false;
  }
  return node;
}
