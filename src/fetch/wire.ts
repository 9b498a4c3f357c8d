/**
 * IMAP data as values, and their wire form (RFC 3501 section 4): NIL,
 * numbers, strings (quoted when they can be, else literals) and
 * parenthesized lists. The same values serialize to JSON for the HTTP
 * service. Strings hold bytes as latin1 (one character per byte).
 */
export type ImapValue = null | number | string | ImapValue[] | { atom: string };

export function atom(s: string): { atom: string } {
  return { atom: s };
}

/** A string that can go quoted: no CR, LF, NUL or 8-bit byte, not too long. */
function quotable(s: string): boolean {
  if (s.length > 1024) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0 || c === 10 || c === 13 || c > 127) return false;
  }
  return true;
}

/** The wire form as bytes (a literal's bytes are the string's latin1 bytes). */
export function toWire(v: ImapValue): Buffer {
  const parts: Buffer[] = [];
  const put = (x: ImapValue): void => {
    if (x === null) parts.push(Buffer.from('NIL'));
    else if (typeof x === 'number') parts.push(Buffer.from(String(x)));
    else if (typeof x === 'string') {
      if (quotable(x)) parts.push(Buffer.from(`"${x.replace(/[\\"]/g, (m) => `\\${m}`)}"`, 'latin1'));
      else {
        const b = Buffer.from(x, 'latin1');
        parts.push(Buffer.from(`{${b.length}}\r\n`), b);
      }
    } else if (Array.isArray(x)) {
      parts.push(Buffer.from('('));
      x.forEach((y, i) => {
        if (i) parts.push(Buffer.from(' '));
        put(y);
      });
      parts.push(Buffer.from(')'));
    } else parts.push(Buffer.from(x.atom, 'latin1'));
  };
  put(v);
  return Buffer.concat(parts);
}

/** JSON for the HTTP service: strings are decoded as UTF-8 where they are valid UTF-8, else latin1. */
export function toJson(v: ImapValue): unknown {
  if (v === null || typeof v === 'number') return v;
  if (typeof v === 'string') return utf8OrLatin1(v);
  if (Array.isArray(v)) return v.map(toJson);
  return v.atom;
}

const dec = new TextDecoder('utf-8', { fatal: true });
function utf8OrLatin1(s: string): string {
  try {
    return dec.decode(Buffer.from(s, 'latin1'));
  } catch {
    return s;
  }
}
