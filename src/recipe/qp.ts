import type { Canonicalizer, RecipeEncoder } from './canonicalizer.js';
import { QP_MAX_BYTES } from '../limits.js';
import { ByteReader, ByteWriter } from '../util/bytes.js';

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
  /** Longest encoded line, soft-break "=" included (0: never wrapped). Used when `breaks` is null. */
  lineMax: number;
  /** Line breaks of the encoded form. */
  crlf: boolean;
  /** Hard line breaks stand for CRLF in the canonical bytes. */
  text: boolean;
  /** Bytes escaped although RFC 2045 allows them literally. */
  extra: Buffer;
  /** Whitespace at the end of a line is left literal (a non-conforming encoder). */
  wsLiteral?: boolean;
  /** Soft breaks at these canonical offsets (delta varints) instead of greedy wrapping. */
  breaks?: Buffer | null;
  /** The data ends with a bare "=". */
  trailingEq?: boolean;
}

/**
 * Quoted-printable is stored decoded only when an encoder with the profile
 * read off the part reproduces it exactly: first greedy wrapping at the
 * longest line, then the recorded soft-break positions. Otherwise it is
 * stored as it came.
 */
export const qpCanonicalize: Canonicalizer = (src, start, end, sink) => {
  if (end - start > QP_MAX_BYTES || end === start) return null;
  const raw = Buffer.from(src.read(start, end));
  const dec = qpDecode(raw);
  if (!dec) return null;
  let profile: QpProfile = { ...dec.profile, breaks: null };
  if (!dec.greedyPossible || !qpEncode(dec.canonical, profile).equals(raw)) {
    profile = { ...dec.profile, lineMax: 0, breaks: dec.breaks };
    if (!qpEncode(dec.canonical, profile).equals(raw)) return null;
  }
  sink.write(dec.canonical);
  return { t: 'qp', lineMax: profile.lineMax, crlf: profile.crlf, text: profile.text, extra: profile.extra, wsLiteral: !!profile.wsLiteral, breaks: profile.breaks ?? null, trailingEq: !!profile.trailingEq };
};

export function qpDecode(raw: Buffer): { canonical: Buffer; profile: QpProfile; breaks: Buffer; greedyPossible: boolean } | null {
  const firstLf = raw.indexOf(LF);
  const crlf = firstLf > 0 && raw[firstLf - 1] === CR;
  const out = Buffer.allocUnsafe(raw.length * 2);
  const breaks = new ByteWriter();
  let lastBreak = 0;
  let o = 0;
  let lineMax = 0;
  let minSoft = Infinity;
  let hard = 0;
  let wsLit = 0;
  let wsEnc = 0;
  let trailingEq = false;
  const encoded = new Uint8Array(256);
  const literal = new Uint8Array(256);
  let lineStart = 0;
  let i = 0;
  const n = raw.length;
  /** whitespace right before a hard break or the end: literal or escaped? */
  const lineEnd = (at: number): void => {
    if (at <= lineStart) return;
    const prev = raw[at - 1];
    if (prev === SP || prev === TAB) wsLit++;
    else if (at - lineStart >= 3 && raw[at - 3] === EQ && (raw[at - 1] === 0x30 || raw[at - 1] === 0x39) && raw[at - 2] === 0x32) wsEnc++;
  };
  while (i < n) {
    const c = raw[i];
    if (c === CR || c === LF) {
      if (c === CR ? !crlf || raw[i + 1] !== LF : crlf) return null;
      lineEnd(i);
      out[o++] = CR; // hard break: CRLF in canonical text
      out[o++] = LF;
      hard++;
      i += c === CR ? 2 : 1;
      lineStart = i;
      continue;
    }
    if (c === EQ) {
      if (i + 1 === n) {
        trailingEq = true;
        lineMax = Math.max(lineMax, i + 1 - lineStart);
        i++;
        continue;
      }
      const a = raw[i + 1];
      if (a === CR || a === LF) {
        // soft break
        if (a === CR ? !crlf || raw[i + 2] !== LF : crlf) return null;
        lineMax = Math.max(lineMax, i + 1 - lineStart);
        minSoft = Math.min(minSoft, i + 1 - lineStart);
        breaks.varint(o - lastBreak);
        lastBreak = o;
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
  lineEnd(n);
  if (wsLit && wsEnc) return null;
  const extra: number[] = [];
  for (let b = 0; b < 256; b++) {
    if (encoded[b] && !mandatory(b) && !literal[b]) {
      if ((b === SP || b === TAB) && !literalMid(raw, b)) {
        // whitespace escaped everywhere (not only at line ends)
        if (!onlyAtLineEnds(raw, b)) extra.push(b);
        continue;
      }
      if (b !== SP && b !== TAB) extra.push(b);
    } else if (encoded[b] && literal[b] && b !== SP && b !== TAB) {
      return null;
    }
  }
  return {
    canonical: Buffer.from(out.subarray(0, o)),
    profile: { lineMax, crlf, text: hard > 0, extra: Buffer.from(extra), wsLiteral: wsLit > 0, trailingEq },
    breaks: breaks.done(),
    // a greedy encoder fills every soft-broken line to within an escape (3) of the longest
    greedyPossible: minSoft === Infinity || minSoft >= lineMax - 3,
  };
}

/** Is whitespace byte b ever literal in the middle of a line? (then it is not an always-escaped byte) */
function literalMid(raw: Buffer, b: number): boolean {
  return raw.indexOf(b) >= 0;
}

/** Is every escape of whitespace byte b right before a line end? */
function onlyAtLineEnds(raw: Buffer, b: number): boolean {
  const esc = Buffer.from(b === SP ? '=20' : '=09', 'latin1');
  for (let p = raw.indexOf(esc); p >= 0; p = raw.indexOf(esc, p + 1)) {
    const next = raw[p + 3];
    if (!(p + 3 === raw.length || next === CR || next === LF || (next === EQ && (raw[p + 4] === CR || raw[p + 4] === LF)))) return false;
  }
  return true;
}

export function qpEncode(canonical: Buffer, p: QpProfile): Buffer {
  const enc = new Uint8Array(256);
  for (let b = 0; b < 256; b++) enc[b] = mandatory(b) ? 1 : 0;
  for (const b of p.extra) enc[b] = 1;
  const crlf = p.crlf;
  const text = p.text;
  const wsLiteral = !!p.wsLiteral;
  const br = p.breaks ? new ByteReader(p.breaks) : null;
  let nextBreak = br && !br.atEnd ? br.varint() : -1;
  const max = br ? 0 : p.lineMax;
  const n = canonical.length;
  const nBreaks = p.breaks ? p.breaks.length : 0;
  // worst case: every byte escaped (3x) plus soft breaks
  const out = Buffer.allocUnsafe(n * 3 + (max > 0 ? Math.ceil((n * 3) / Math.max(1, max - 3)) * 3 : 0) + nBreaks * 3 + n + 16);
  let o = 0;
  let col = 0;
  const soft = (): void => {
    out[o++] = EQ;
    if (crlf) out[o++] = CR;
    out[o++] = LF;
    col = 0;
  };
  for (let i = 0; i < n; i++) {
    while (i === nextBreak) {
      soft();
      nextBreak = br!.atEnd ? -1 : nextBreak + br!.varint();
    }
    const c = canonical[i];
    if (text && c === CR && canonical[i + 1] === LF) {
      if (crlf) out[o++] = CR;
      out[o++] = LF;
      col = 0;
      i++;
      continue;
    }
    const lastOfLine = i + 1 === n || (text && canonical[i + 1] === CR && canonical[i + 2] === LF);
    const e = enc[c] === 1 || (!wsLiteral && (c === SP || c === TAB) && lastOfLine);
    const t = e ? 3 : 1;
    if (max > 0 && col + t > (lastOfLine && !p.trailingEq ? max : max - 1)) soft();
    if (e) {
      out[o++] = EQ;
      out[o++] = HEX[c >> 4];
      out[o++] = HEX[c & 15];
    } else {
      out[o++] = c;
    }
    col += t;
  }
  while (nextBreak === n) {
    soft();
    nextBreak = br!.atEnd ? -1 : nextBreak + br!.varint();
  }
  if (p.trailingEq) out[o++] = EQ;
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
