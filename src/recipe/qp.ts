import type { Canonicalizer, RecipeEncoder } from './canonicalizer.js';
import { QP_MAX_BYTES } from '../limits.js';

const LF = 0x0a;
const CR = 0x0d;
const EQ = 0x3d;
const SP = 0x20;
const TAB = 0x09;
const HEX = Buffer.from('0123456789ABCDEF', 'latin1');

/** Bytes RFC 2045 requires to be encoded anywhere in a line. */
const mandatory = (b: number): boolean => b === EQ || b > 0x7e || (b < 0x20 && b !== TAB);

function hexVal(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  return -1; // lower-case hex is not reproduced: stored as it came
}

export interface QpProfile {
  lineMax: number;
  crlf: boolean;
  extra: Buffer;
}

/**
 * Quoted-printable is stored decoded only when the greedy encoder with the
 * profile read off the part (line length, line ending, set of optionally
 * encoded bytes) reproduces it exactly; otherwise it is stored as it came.
 */
export const qpCanonicalize: Canonicalizer = (src, start, end, sink) => {
  if (end - start > QP_MAX_BYTES || end === start) return null;
  const raw = Buffer.from(src.read(start, end));
  const dec = qpDecode(raw);
  if (!dec) return null;
  const again = qpEncode(dec.canonical, dec.profile);
  if (!again.equals(raw)) return null;
  sink.write(dec.canonical);
  return { t: 'qp', lineMax: dec.profile.lineMax, crlf: dec.profile.crlf, extra: dec.profile.extra };
};

export function qpDecode(raw: Buffer): { canonical: Buffer; profile: QpProfile } | null {
  const firstLf = raw.indexOf(LF);
  const crlf = firstLf > 0 && raw[firstLf - 1] === CR;
  const out = Buffer.allocUnsafe(raw.length);
  let o = 0;
  let lineMax = 0;
  const encoded = new Uint8Array(256);
  const literal = new Uint8Array(256);
  let lineStart = 0;
  let i = 0;
  const n = raw.length;
  while (i < n) {
    const c = raw[i];
    if (c === CR) {
      if (!crlf || raw[i + 1] !== LF) return null;
      out[o++] = LF; // hard break
      i += 2;
      lineStart = i;
      continue;
    }
    if (c === LF) {
      if (crlf) return null;
      out[o++] = LF;
      i++;
      lineStart = i;
      continue;
    }
    if (c === EQ) {
      const a = raw[i + 1];
      if (i + 1 < n && (a === CR || a === LF)) {
        // soft break
        if (a === CR && (!crlf || raw[i + 2] !== LF)) return null;
        if (a === LF && crlf) return null;
        lineMax = Math.max(lineMax, i + 1 - lineStart);
        i += a === CR ? 3 : 2;
        lineStart = i;
        continue;
      }
      if (i + 2 >= n) return null;
      const h = hexVal(a);
      const l = hexVal(raw[i + 2]);
      if (h < 0 || l < 0) return null;
      const b = (h << 4) | l;
      encoded[b] = 1;
      out[o++] = b;
      i += 3;
      continue;
    }
    if (mandatory(c)) return null;
    literal[c] = 1;
    out[o++] = c;
    i++;
  }
  const extra: number[] = [];
  for (let b = 0; b < 256; b++) {
    if (encoded[b] && !mandatory(b) && b !== SP && b !== TAB) {
      if (literal[b]) return null;
      extra.push(b);
    }
  }
  return { canonical: Buffer.from(out.subarray(0, o)), profile: { lineMax, crlf, extra: Buffer.from(extra) } };
}

export function qpEncode(canonical: Buffer, p: QpProfile): Buffer {
  const enc = new Uint8Array(256);
  for (let b = 0; b < 256; b++) enc[b] = mandatory(b) ? 1 : 0;
  for (const b of p.extra) enc[b] = 1;
  const crlf = p.crlf;
  const max = p.lineMax;
  const n = canonical.length;
  // worst case: every byte encoded (3x) plus a soft break per output line
  const out = Buffer.allocUnsafe(n * 3 + (max > 0 ? Math.ceil((n * 3) / Math.max(1, max - 3)) * 3 : 0) + n + 16);
  let o = 0;
  let col = 0;
  for (let i = 0; i < n; i++) {
    const c = canonical[i];
    if (c === LF) {
      if (crlf) out[o++] = CR;
      out[o++] = LF;
      col = 0;
      continue;
    }
    const lastOfLine = i + 1 === n || canonical[i + 1] === LF;
    const e = enc[c] === 1 || ((c === SP || c === TAB) && lastOfLine);
    const t = e ? 3 : 1;
    if (max > 0 && col + t > (lastOfLine ? max : max - 1)) {
      out[o++] = EQ;
      if (crlf) out[o++] = CR;
      out[o++] = LF;
      col = 0;
    }
    if (e) {
      out[o++] = EQ;
      out[o++] = HEX[c >> 4];
      out[o++] = HEX[c & 15];
    } else {
      out[o++] = c;
    }
    col += t;
  }
  return out.subarray(0, o);
}

/** Encoding needs the whole part (parts are at most QP_MAX_BYTES): canonical bytes are gathered, then encoded at the end. */
export function qpEncoder(p: QpProfile): RecipeEncoder {
  const parts: Buffer[] = [];
  return {
    push(b) {
      parts.push(Buffer.from(b));
      return EMPTY;
    },
    end: () => qpEncode(Buffer.concat(parts), p),
  };
}

const EMPTY = Buffer.alloc(0);
