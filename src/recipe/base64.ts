import type { Canonicalizer, RecipeEncoder } from './canonicalizer.js';
import { BASE64_TAIL_MAX } from '../limits.js';

const LF = 0x0a;
const CR = 0x0d;
const CRLF = Buffer.from('\r\n');
const NL = Buffer.from('\n');
const EMPTY = Buffer.alloc(0);

const isWs = (c: number): boolean => c === 0x20 || c === 0x09 || c === CR || c === LF;

/** Lines per processing step (about 64 KiB of encoded text at 76 characters). */
const LINES_PER_STEP = 860;

/**
 * Regular base64 (one line length, one line ending, standard alphabet,
 * padded, zero pad bits) is stored decoded. The check is the strongest
 * there is: every step is re-encoded with the recorded geometry and
 * compared with the original bytes; any difference means "store as it came".
 */
export const base64Canonicalize: Canonicalizer = (src, start, end, sink) => {
  // trailing whitespace / line breaks after the last data character
  let dataEnd = end;
  while (dataEnd > start && end - dataEnd <= BASE64_TAIL_MAX) {
    const c = src.read(dataEnd - 1, dataEnd)[0];
    if (!isWs(c)) break;
    dataEnd--;
  }
  if (dataEnd === start || end - dataEnd > BASE64_TAIL_MAX) return null;
  const tail = Buffer.from(src.read(dataEnd, end));
  const lf = src.indexOf(NL, start, dataEnd);
  let lineLen: number;
  let crlf = false;
  if (lf < 0) {
    lineLen = 0;
  } else {
    crlf = lf > start && src.read(lf - 1, lf)[0] === CR;
    lineLen = lf - start - (crlf ? 1 : 0);
    if (lineLen <= 0 || lineLen % 4 !== 0) return null;
  }
  const enc = new Base64Wrapper(lineLen, crlf);
  const eolLen = crlf ? 2 : 1;
  const stride = lineLen + eolLen;
  const len = dataEnd - start;
  if (lineLen > 0) {
    // (n-1) full lines of `stride` bytes, then a last line of 1..lineLen characters
    const last = ((len - 1) % stride) + 1;
    if (last > lineLen) return null;
  }
  const step = lineLen > 0 ? stride * LINES_PER_STEP : 3 * 4 * 16384;
  // Re-encoded output is compared with the original at a running offset (the
  // encoder writes each line break lazily, so its output lags by one break).
  let cmp = start;
  const same = (b: Buffer): boolean => {
    if (!b.length) return true;
    if (cmp + b.length > dataEnd || !src.read(cmp, cmp + b.length).equals(b)) return false;
    cmp += b.length;
    return true;
  };
  for (let p = start; p < dataEnd; p += step) {
    const q = Math.min(dataEnd, p + step);
    // steps start at line starts and lines hold a multiple of 4 characters, so each step decodes on its own
    const decoded = Buffer.from(src.read(p, q).toString('latin1'), 'base64');
    if (!same(enc.push(decoded))) return null;
    sink.write(decoded);
  }
  if (!same(enc.end()) || cmp !== dataEnd) return null;
  return { t: 'base64', lineLen, crlf, tail };
};

/**
 * Streaming base64 encoder with line wrapping. Emits the line break before
 * every line but the first, so the output never ends with one.
 */
export class Base64Wrapper {
  private carry: Buffer = EMPTY;
  /** Characters on the current line; a line break is written lazily before the next character once it reaches lineLen. */
  private col = 0;
  private readonly eol: Buffer;
  constructor(private readonly lineLen: number, crlf: boolean) {
    this.eol = crlf ? CRLF : NL;
  }

  push(b: Buffer): Buffer {
    if (this.carry.length) {
      b = Buffer.concat([this.carry, b]);
      this.carry = EMPTY;
    }
    const whole = b.length - (b.length % 3);
    if (whole < b.length) this.carry = Buffer.from(b.subarray(whole));
    if (whole === 0) return EMPTY;
    return this.wrap(b.subarray(0, whole).toString('base64'));
  }

  end(): Buffer {
    const c = this.carry;
    this.carry = EMPTY;
    return c.length ? this.wrap(c.toString('base64')) : EMPTY;
  }

  private wrap(s: string): Buffer {
    const L = this.lineLen;
    if (L === 0) return Buffer.from(s, 'latin1');
    const eol = this.eol;
    const out = Buffer.allocUnsafe(s.length + (Math.ceil((s.length + this.col) / L) + 1) * eol.length);
    let o = 0;
    let i = 0;
    while (i < s.length) {
      if (this.col === L) {
        o += eol.copy(out, o);
        this.col = 0;
      }
      const n = Math.min(L - this.col, s.length - i);
      o += out.write(i === 0 && n === s.length ? s : s.slice(i, i + n), o, 'latin1');
      i += n;
      this.col += n;
    }
    return out.subarray(0, o);
  }
}

export function base64Encoder(lineLen: number, crlf: boolean, tail: Buffer): RecipeEncoder {
  const w = new Base64Wrapper(lineLen, crlf);
  return {
    push: (b) => w.push(b),
    end: () => (tail.length ? Buffer.concat([w.end(), tail]) : w.end()),
  };
}
