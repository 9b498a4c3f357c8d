/**
 * Lenient parsing of RFC 5322 header blocks and MIME Content-* fields.
 * Parsing never changes stored bytes: it only decides how a message is split.
 */

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
  params: Record<string, string>;
  /** Content-Transfer-Encoding, lower-case, "" when absent. */
  cte: string;
  disposition: string;
  filename: string | undefined;
}

/** Parses `type/subtype; a=b; c="d"` with RFC 2231 continuations folded together. */
export function parseParamValue(v: string): { value: string; params: Record<string, string> } {
  const params: Record<string, string> = {};
  let i = v.indexOf(';');
  const value = (i < 0 ? v : v.slice(0, i)).trim().toLowerCase();
  const cont: Record<string, { parts: string[]; encoded: boolean }> = {};
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
      while (j < v.length && v[j] !== '"') {
        if (v[j] === '\\' && j + 1 < v.length) j++;
        val += v[j++];
      }
      j++;
      const semi = v.indexOf(';', j);
      i = semi;
    } else {
      const semi = v.indexOf(';', j);
      val = (semi < 0 ? v.slice(j) : v.slice(j, semi)).trim();
      i = semi;
    }
    const m = /^([^*]+)\*(\d+)?(\*)?$/.exec(name);
    if (m) {
      const c = (cont[m[1]] ??= { parts: [], encoded: false });
      c.parts[m[2] ? Number(m[2]) : 0] = val;
      if (m[3] || (!m[2] && name.endsWith('*'))) c.encoded = true;
    } else if (!(name in params)) {
      params[name] = val;
    }
  }
  for (const [name, c] of Object.entries(cont)) {
    if (name in params) continue;
    let s = c.parts.filter((p) => p !== undefined).join('');
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
  let params: Record<string, string> = {};
  if (ct !== undefined) {
    const p = parseParamValue(ct);
    if (/^[a-z0-9!#$&^_.+-]+\/[a-z0-9!#$&^_.+-]+$/.test(p.value)) type = p.value;
    else if (p.value.startsWith('multipart')) type = 'multipart/mixed';
    params = p.params;
  }
  const cte = (firstField(fields, 'content-transfer-encoding') ?? '').trim().toLowerCase();
  const cd = firstField(fields, 'content-disposition');
  const disp = cd !== undefined ? parseParamValue(cd) : { value: '', params: {} as Record<string, string> };
  const filename = disp.params['filename'] ?? params['name'];
  return { type, params, cte, disposition: disp.value, filename: filename ? decodeWords(filename) : undefined };
}

/** Decodes RFC 2047 encoded-words (for display in reports only). */
export function decodeWords(s: string): string {
  return s.replace(/=\?([^?]+)\?([bBqQ])\?([^?]*)\?=/g, (all, cs: string, enc: string, text: string) => {
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
