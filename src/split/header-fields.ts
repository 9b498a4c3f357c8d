/**
 * Lenient parsing of RFC 5322 header blocks and MIME Content-* fields.
 * Parsing never changes stored bytes: it only decides how a message is split.
 */
import { RFC2231_MAX_SECTION } from '../limits.js';

export interface HeaderField {
  /** Field name, lower-cased. */
  name: string;
  /** Unfolded value, leading/trailing whitespace trimmed, decoded as latin1 (bytes preserved 1:1). */
  value: string;
}

/** Is this line (without its line ending) a header field start? Printable ASCII name, optional WSP, colon. */
export function isFieldLine(line: Buffer): boolean {
  let i = 0;
  for (; i < line.length; i++) {
    const c = line[i];
    if (c === 0x3a) break;
    if (c < 0x21 || c > 0x7e) {
      if (c === 0x20 || c === 0x09) {
        // "Name :" is tolerated: only whitespace may follow before the colon
        let j = i;
        while (j < line.length && (line[j] === 0x20 || line[j] === 0x09)) j++;
        return i > 0 && j < line.length && line[j] === 0x3a;
      }
      return false;
    }
  }
  return i > 0 && i < line.length;
}

export function parseHeaderBlock(block: Buffer): HeaderField[] {
  const out: HeaderField[] = [];
  const text = block.toString('latin1');
  const lines = text.split('\n');
  let cur: { name: string; value: string } | null = null;
  for (let raw of lines) {
    if (raw.endsWith('\r')) raw = raw.slice(0, -1);
    if (raw === '') break;
    if ((raw[0] === ' ' || raw[0] === '\t') && cur) {
      cur.value += ' ' + raw.trim();
      continue;
    }
    const colon = raw.indexOf(':');
    if (colon <= 0) {
      cur = null;
      continue;
    }
    cur = { name: raw.slice(0, colon).trim().toLowerCase(), value: raw.slice(colon + 1).trim() };
    out.push(cur);
  }
  return out;
}

export function firstField(fields: HeaderField[], name: string): string | undefined {
  for (const f of fields) if (f.name === name) return f.value;
  return undefined;
}

export interface ContentInfo {
  /** e.g. "text/plain" (lower-case); defaults per RFC 2045 / 2046. */
  type: string;
  params: Params;
  /** Content-Transfer-Encoding, lower-case, "" when absent. */
  cte: string;
  disposition: string;
  filename: string | undefined;
}

/** A map from parameter names (which come from mail) to values that inherits nothing: `__proto__`, `constructor` and `toString` are names like any other. */
export type Params = Record<string, string>;

export function emptyParams(): Params {
  return Object.create(null) as Params;
}

/**
 * Parses `type/subtype; a=b; c="d"` with RFC 2231 continuations folded
 * together. Section numbers above RFC2231_MAX_SECTION are not continuations
 * (the parameter is kept under its literal name): a section index is never
 * a range to walk, whatever the sender wrote.
 */
export function parseParamValue(v: string): { value: string; params: Params } {
  const params = emptyParams();
  let i = v.indexOf(';');
  const value = (i < 0 ? v : v.slice(0, i)).trim().toLowerCase();
  const cont = new Map<string, { parts: Map<number, string>; encoded: boolean }>();
  while (i >= 0 && i < v.length) {
    i++;
    while (i < v.length && (v[i] === ' ' || v[i] === '\t' || v[i] === ';')) i++;
    const eq = v.indexOf('=', i);
    if (eq < 0) break;
    const name = v.slice(i, eq).trim().toLowerCase();
    let j = eq + 1;
    while (j < v.length && (v[j] === ' ' || v[j] === '\t')) j++;
    let val = '';
    if (v[j] === '"') {
      j++;
      const start = j;
      const chunks: string[] = [];
      let from = start;
      while (j < v.length && v[j] !== '"') {
        if (v[j] === '\\' && j + 1 < v.length) {
          chunks.push(v.slice(from, j));
          j++;
          from = j;
        }
        j++;
      }
      chunks.push(v.slice(from, j));
      val = chunks.join('');
      j++;
      i = v.indexOf(';', j);
    } else {
      const semi = v.indexOf(';', j);
      val = (semi < 0 ? v.slice(j) : v.slice(j, semi)).trim();
      i = semi;
    }
    const m = /^([^*]+)\*(\d{1,9})?(\*)?$/.exec(name);
    const section = m?.[2] !== undefined ? Number(m[2]) : 0;
    if (m && section <= RFC2231_MAX_SECTION) {
      let c = cont.get(m[1]);
      if (!c) cont.set(m[1], (c = { parts: new Map(), encoded: false }));
      if (!c.parts.has(section)) c.parts.set(section, val);
      if (m[3] || (m[2] === undefined && name.endsWith('*'))) c.encoded = true;
    } else if (!(name in params)) {
      params[name] = val;
    }
  }
  for (const [name, c] of cont) {
    if (name in params) continue;
    let s = [...c.parts].sort((a, b) => a[0] - b[0]).map((p) => p[1]).join('');
    if (c.encoded) {
      const m = /^([^']*)'[^']*'(.*)$/.exec(s);
      const raw = m ? m[2] : s;
      try {
        const bytes = Buffer.from(raw.replace(/%([0-9a-fA-F]{2})/g, (_, h) => String.fromCharCode(parseInt(h, 16))), 'latin1');
        s = m && /utf-?8/i.test(m[1]) ? bytes.toString('utf8') : bytes.toString('latin1');
      } catch {
        s = raw;
      }
    }
    params[name] = s;
  }
  return { value, params };
}

export function contentInfo(fields: HeaderField[], defaultType = 'text/plain'): ContentInfo {
  const ct = firstField(fields, 'content-type');
  let type = defaultType;
  let params = emptyParams();
  if (ct !== undefined) {
    const p = parseParamValue(ct);
    if (/^[a-z0-9!#$&^_.+-]+\/[a-z0-9!#$&^_.+-]+$/.test(p.value)) type = p.value;
    else if (p.value.startsWith('multipart')) type = 'multipart/mixed';
    params = p.params;
  }
  const cte = (firstField(fields, 'content-transfer-encoding') ?? '').trim().toLowerCase();
  const cd = firstField(fields, 'content-disposition');
  const disp = cd !== undefined ? parseParamValue(cd) : { value: '', params: emptyParams() };
  const filename = disp.params['filename'] ?? params['name'];
  return { type, params, cte, disposition: disp.value, filename: filename ? decodeWords(filename) : undefined };
}

/** Decodes RFC 2047 encoded-words (for display in reports only); whitespace between two adjacent encoded-words is dropped (RFC 2047 section 6.2). */
export function decodeWords(s: string): string {
  const word = /=\?[^?]+\?[bBqQ]\?[^?]*\?=/.source;
  const joined = s.replace(new RegExp(`(${word})[ \\t\\r\\n]+(?=${word})`, 'g'), '$1');
  return joined.replace(/=\?([^?]+)\?([bBqQ])\?([^?]*)\?=/g, (all, cs: string, enc: string, text: string) => {
    try {
      const bytes =
        enc.toUpperCase() === 'B'
          ? Buffer.from(text, 'base64')
          : Buffer.from(text.replace(/_/g, ' ').replace(/=([0-9a-fA-F]{2})/g, (_, h) => String.fromCharCode(parseInt(h, 16))), 'latin1');
      return /utf-?8/i.test(cs) ? bytes.toString('utf8') : bytes.toString('latin1');
    } catch {
      return all;
    }
  });
}
