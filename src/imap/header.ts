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
    out.push({ name: cur.name, raw, value: text.slice(colon + 1).replace(/\r?\n/g, '').replace(/^[ \t]+/, '').replace(/[ \t\r]+$/, '') });
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
