/**
 * Header blocks as IMAP reads them: fields with their exact bytes (for
 * HEADER.FIELDS) and their unfolded values (for ENVELOPE and BODYSTRUCTURE).
 * Pure functions over bytes.
 */
export interface RawField {
  /** Lower-cased name. */
  name: string;
  /** The field's bytes: its first line and continuation lines, line endings included. */
  raw: Buffer;
  /** Unfolded value (line breaks removed, the rest kept), latin1 (bytes preserved 1:1). */
  value: string;
}

export function parseFields(block: Buffer): RawField[] {
  const out: RawField[] = [];
  let cur: { name: string; start: number; end: number } | null = null;
  const close = (): void => {
    if (!cur) return;
    const raw = block.subarray(cur.start, cur.end);
    const text = raw.toString('latin1');
    const colon = text.indexOf(':');
    // unfolded as Dovecot does: blanks after the colon on the first line are the separator; then line breaks are
    // removed and the whitespace that starts each next line is kept (so a value that starts on the next line
    // starts with it); trailing blanks belong to the value
    out.push({ name: cur.name, raw, value: text.slice(colon + 1).replace(/^[ \t]+/, '').replace(/\r?\n/g, '').replace(/\r$/, '') });
    cur = null;
  };
  for (let p = 0; p < block.length; ) {
    const lf = block.indexOf(0x0a, p);
    const end = lf < 0 ? block.length : lf + 1;
    const first = block[p];
    const content = block.subarray(p, lf < 0 ? end : lf > p && block[lf - 1] === 0x0d ? lf - 1 : lf);
    if (content.length === 0) {
      close();
      break; // the blank line
    }
    if ((first === 0x20 || first === 0x09) && cur) {
      cur.end = end;
    } else {
      close();
      const colon = content.indexOf(0x3a);
      if (colon > 0) cur = { name: content.subarray(0, colon).toString('latin1').trim().toLowerCase(), start: p, end };
    }
    p = end;
  }
  close();
  return out;
}

export function first(fields: RawField[], name: string): string | null {
  for (const f of fields) if (f.name === name) return f.value;
  return null;
}

/** The last field of that name (a header repeated by mistake: the envelope takes the last, as Dovecot does). */
export function last(fields: RawField[], name: string): string | null {
  for (let i = fields.length - 1; i >= 0; i--) if (fields[i].name === name) return fields[i].value;
  return null;
}

/**
 * HEADER.FIELDS / HEADER.FIELDS.NOT: the matching fields as they are, then
 * the blank line (RFC 3501 6.4.5), in the block's own line ending.
 */
export function filterFields(block: Buffer, names: string[], not: boolean): Buffer {
  const want = new Set(names.map((n) => n.toLowerCase()));
  const kept = parseFields(block).filter((f) => want.has(f.name) !== not);
  const lf = block.indexOf(0x0a);
  const eol = lf > 0 && block[lf - 1] === 0x0d ? '\r\n' : lf >= 0 ? '\n' : '\r\n';
  return Buffer.concat([...kept.map((f) => withEol(f.raw, eol)), Buffer.from(eol)]);
}

/** A field's bytes ending with a line break (the last field of a block cut by a boundary may have none). */
function withEol(raw: Buffer, eol: string): Buffer {
  return raw.length && raw[raw.length - 1] === 0x0a ? raw : Buffer.concat([raw, Buffer.from(eol)]);
}

/**
 * A structured field value as IMAP lists it: the value before the first
 * ';', and its parameters in order, names and values as written (quoted
 * values unquoted; RFC 2231 names like title*0* kept as they are, as Dovecot lists them).
 */
export function rawParams(v: string): { value: string; params: [string, string][] } {
  const params: [string, string][] = [];
  let i = v.indexOf(';');
  const value = (i < 0 ? v : v.slice(0, i)).trim();
  while (i >= 0 && i < v.length) {
    i++;
    while (i < v.length && (v[i] === ' ' || v[i] === '\t' || v[i] === ';')) i++;
    const eq = v.indexOf('=', i);
    const semi = v.indexOf(';', i);
    if (eq < 0 || (semi >= 0 && semi < eq)) {
      i = semi;
      continue;
    }
    const name = v.slice(i, eq).trim();
    let j = eq + 1;
    while (j < v.length && (v[j] === ' ' || v[j] === '\t')) j++;
    let val = '';
    if (v[j] === '"') {
      for (j++; j < v.length && v[j] !== '"'; j++) {
        if (v[j] === '\\' && j + 1 < v.length) j++;
        val += v[j];
      }
      i = v.indexOf(';', j);
    } else {
      // an unquoted value is one token: what follows a space up to the ';' is not part of it (as Dovecot reads it)
      const end = v.indexOf(';', j);
      val = (end < 0 ? v.slice(j) : v.slice(j, end)).trim().split(/[ \t]/)[0];
      i = end;
    }
    if (name) params.push([name, val]);
  }
  return { value, params: joinContinuations(params) };
}

/** RFC 2231 sections (name*0*, name*1, ...) joined into one name* (or name) entry, raw, at the first section's place. */
function joinContinuations(params: [string, string][]): [string, string][] {
  const out: [string, string][] = [];
  const groups = new Map<string, { at: number; encoded: boolean; parts: Map<number, string> }>();
  for (const [name, val] of params) {
    const m = /^(.+)\*(\d+)(\*?)$/.exec(name);
    if (!m) {
      out.push([name, val]);
      continue;
    }
    const key = m[1].toLowerCase();
    let g = groups.get(key);
    if (!g) {
      g = { at: out.length, encoded: false, parts: new Map() };
      groups.set(key, g);
      out.push([m[1], '']);
    }
    if (m[3] && m[2] === '0') g.encoded = true;
    if (!g.parts.has(Number(m[2]))) g.parts.set(Number(m[2]), val);
  }
  for (const [, g] of groups) {
    const base = out[g.at][0];
    out[g.at] = [g.encoded ? `${base}*` : base, [...g.parts].sort((a, b) => a[0] - b[0]).map((p) => p[1]).join('')];
  }
  return out;
}
