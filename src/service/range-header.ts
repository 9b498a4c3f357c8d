/**
 * HTTP Range (RFC 9110 14.2) for one byte range: "bytes=A-B", "bytes=A-",
 * "bytes=-N". Several ranges, another unit or a malformed header: ignored
 * (the whole representation is sent, as the RFC allows). A range that starts
 * past the end is unsatisfiable (416).
 */
export type RangeAnswer = { kind: 'whole' } | { kind: 'range'; start: number; end: number } | { kind: 'unsatisfiable' };

export function parseRange(header: string | undefined, size: number): RangeAnswer {
  if (!header) return { kind: 'whole' };
  const m = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header);
  if (!m || (m[1] === '' && m[2] === '')) return { kind: 'whole' };
  if (m[1] === '') {
    // the last N bytes
    const n = Number(m[2]);
    if (!Number.isSafeInteger(n)) return { kind: 'whole' };
    if (n === 0) return { kind: 'unsatisfiable' };
    return { kind: 'range', start: Math.max(0, size - n), end: size };
  }
  const a = Number(m[1]);
  const b = m[2] === '' ? Number.MAX_SAFE_INTEGER : Number(m[2]);
  if (!Number.isSafeInteger(a) || !Number.isSafeInteger(b) || b < a) return { kind: 'whole' };
  if (a >= size) return { kind: 'unsatisfiable' };
  return { kind: 'range', start: a, end: Math.min(b, size - 1) + 1 };
}
