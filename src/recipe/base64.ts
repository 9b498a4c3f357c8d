import type { Canonicalizer, RecipeEncoder } from './canonicalizer.js';
import { BASE64_TAIL_MAX, PART_MEMORY_BYTES } from '../limits.js';

const LF = 0x0a;
const CR = 0x0d;
const NL = Buffer.from('\n');
const EMPTY = Buffer.alloc(0);

const isWs = (c: number): boolean => c === 0x20 || c === 0x09 || c === CR || c === LF;

/** Lines per processing step (about 64 KiB of encoded text at 76 characters). */
const LINES_PER_STEP = 860;

/**
 * Regular base64 (one line length, one line ending, standard alphabet,
 * padded, zero pad bits) is stored decoded. The decoder is strict: every
 * character must be in the alphabet, every line break exactly where the
 * recorded geometry puts it, padding only in the last group and with zero
 * pad bits. Under those conditions re-encoding with the geometry gives back
 * exactly the input (the final reassembly check on ingest proves it again);
 * anything else means "store as it came".
 */
export const base64Canonicalize: Canonicalizer = (src, start, end, sink) => {
  // trailing whitespace / line breaks after the last data character
  // (read once, scanned backwards in memory)
  const tailFrom = Math.max(start, end - BASE64_TAIL_MAX - 1);
  const tailWin = src.read(tailFrom, end);
  let dataEnd = end;
  while (dataEnd > start && end - dataEnd <= BASE64_TAIL_MAX) {
    if (!isWs(tailWin[dataEnd - 1 - tailFrom])) break;
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
  const eolLen = crlf ? 2 : 1;
  const stride = lineLen + eolLen;
  const len = dataEnd - start;
  if (lineLen > 0) {
    // (n-1) full lines of `stride` bytes, then a last line of 1..lineLen characters
    const last = ((len - 1) % stride) + 1;
    if (last > lineLen || last % 4 !== 0) return null;
  } else if (len % 4 !== 0) {
    return null;
  }
  // steps start at line starts and hold whole lines (whole groups), so each decodes on its own
  const step = lineLen > 0 ? stride * LINES_PER_STEP : 4 * 65536;
  // a part too large to be kept in memory is decoded step by step into one buffer (the sink writes it out
  // and keeps nothing): fresh buffers for every step were garbage in proportion to the part
  const scratch = (len / 4) * 3 > PART_MEMORY_BYTES ? Buffer.allocUnsafe(Math.ceil(step / 4) * 3) : null;
  for (let p = start; p < dataEnd; p += step) {
    const q = Math.min(dataEnd, p + step);
    const decoded = decodeStrict(src.read(p, q), lineLen, crlf, q === dataEnd, scratch);
    if (!decoded) return null;
    sink.write(decoded, scratch !== null);
  }
  return { t: 'base64', lineLen, crlf, tail };
};

/** Character -> 6-bit value; -1 not in the alphabet; -2 the pad character. */
const VALUES = new Int8Array(256).fill(-1);
for (let i = 0; i < 64; i++) VALUES['ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'.charCodeAt(i)] = i;
VALUES[0x3d] = -2;

/**
 * Decodes whole lines of `lineLen` characters separated by the line break
 * (the last line of the data may be shorter and has none), or one unwrapped
 * run when lineLen is 0, into `into` when it is large enough. Returns null
 * on any irregularity.
 */
function decodeStrict(raw: Buffer, lineLen: number, crlf: boolean, lastStep: boolean, into: Buffer | null): Buffer | null {
  const n = raw.length;
  const out = into && into.length >= Math.ceil(n / 4) * 3 ? into : Buffer.allocUnsafe(Math.ceil(n / 4) * 3);
  let o = 0;
  let i = 0;
  while (i < n) {
    const lineEnd = lineLen > 0 ? Math.min(n, i + lineLen) : n;
    for (; i < lineEnd; i += 4) {
      const a = VALUES[raw[i]];
      const b = VALUES[raw[i + 1]];
      const c = VALUES[raw[i + 2]];
      const d = VALUES[raw[i + 3]];
      if ((a | b | c | d) >= 0) {
        const v = (a << 18) | (b << 12) | (c << 6) | d;
        out[o++] = v >> 16;
        out[o++] = (v >> 8) & 255;
        out[o++] = v & 255;
        continue;
      }
      // padding: only in the very last group of the data, with zero pad bits
      if (!lastStep || i + 4 !== n || a < 0 || b < 0) return null;
      if (c === -2 && d === -2) {
        if ((b & 15) !== 0) return null;
        out[o++] = (a << 2) | (b >> 4);
      } else if (c >= 0 && d === -2) {
        if ((c & 3) !== 0) return null;
        const v = (a << 18) | (b << 12) | (c << 6);
        out[o++] = v >> 16;
        out[o++] = (v >> 8) & 255;
      } else {
        return null;
      }
    }
    if (i !== lineEnd) return null; // a line that is not whole groups
    if (i === n) break;
    // the line break, exactly here
    if (crlf) {
      if (raw[i] !== CR || raw[i + 1] !== LF) return null;
      i += 2;
    } else {
      if (raw[i] !== LF) return null;
      i += 1;
    }
    if (i === n && lastStep) return null; // data never ends with a line break (that is the tail)
  }
  return out.subarray(0, o);
}

const ALPHABET = Buffer.from('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/', 'latin1');
/** 12 bits -> two alphabet characters (low byte first). */
const PAIRS = new Uint16Array(4096);
/** Lines encoded per native call in the bulk path (about 39 KB of text for 76-character lines). */
const BULK_LINES = 512;
for (let i = 0; i < 4096; i++) PAIRS[i] = ALPHABET[i >> 6] | (ALPHABET[i & 63] << 8);

/**
 * Streaming base64 encoder with line wrapping (standard alphabet, padded).
 * Emits the line break before every line but the first, so the output never
 * ends with one. A table-driven loop: about 4x faster than encoding to a
 * string and copying it line by line.
 */
export class Base64Wrapper {
  private carry: Buffer = EMPTY;
  /** Characters on the current line; a line break is written lazily before the next group once it reaches lineLen. */
  private col: number;
  private readonly cr: boolean;
  /** `startCol`: characters already on the current line (encoding that starts in the middle of a part). */
  constructor(private readonly lineLen: number, crlf: boolean, startCol = 0) {
    this.cr = crlf;
    this.col = startCol;
  }

  push(b: Buffer): Buffer {
    let head: Buffer | null = null;
    let from = 0;
    if (this.carry.length) {
      // the group the last push left open is completed from this chunk: no copy of the chunk itself
      const need = 3 - this.carry.length;
      if (b.length < need) {
        this.carry = Buffer.concat([this.carry, b]);
        return EMPTY;
      }
      head = Buffer.concat([this.carry, b.subarray(0, need)]);
      from = need;
      this.carry = EMPTY;
    }
    const whole = from + Math.floor((b.length - from) / 3) * 3;
    if (whole < b.length) this.carry = Buffer.from(b.subarray(whole));
    if (!head && whole === 0) return EMPTY;
    return this.encode(head, b, from, whole, false);
  }

  end(): Buffer {
    const c = this.carry;
    this.carry = EMPTY;
    return c.length ? this.encode(null, c, 0, c.length, true) : EMPTY;
  }

  /** Encodes `head` (one whole group, or null) then b[from, to); `last`: the final, padded group may be partial. */
  private encode(head: Buffer | null, b: Buffer, from: number, to: number, last: boolean): Buffer {
    const L = this.lineLen;
    const n = (head ? 3 : 0) + (to - from);
    const groups = Math.ceil(n / 3);
    const chars = groups * 4;
    const eolLen = this.cr ? 2 : 1;
    const breaks = L > 0 ? Math.ceil((chars + this.col) / L) : 0;
    const out = Buffer.allocUnsafe(chars + breaks * eolLen);
    let o = 0;
    let col = this.col;
    const eol = (): void => {
      if (this.cr) out[o++] = 13;
      out[o++] = 10;
      col = 0;
    };
    if (head) {
      if (L > 0 && col === L) eol();
      o = encodeGroups(head, 0, 3, out, o);
      col += 4;
    }
    const full = last ? to - ((to - from) % 3) : to;
    let i = from;
    if (L === 0) {
      o = encodeGroups(b, i, full, out, o);
      i = full;
    } else {
      // whole lines in bulk: Node's native encoder for many lines at once, then the lines moved apart in place
      // to make room for the line breaks (several times the table loop on attachments); in blocks of lines,
      // so each intermediate string is small enough to die young (one string per megabyte cost a fifth of
      // a whole-message FETCH in garbage collection)
      const bpl = (L >> 2) * 3;
      if (L % 4 === 0 && (col === 0 || col === L) && full - i >= 4 * bpl) {
        let nl = Math.floor((full - i) / bpl);
        if (col === L) eol();
        while (nl > 0) {
          const n = Math.min(nl, BULK_LINES);
          const base = o + (n - 1) * eolLen;
          out.write(b.toString('base64', i, i + n * bpl), base, 'latin1');
          for (let k = 0; k < n; k++) {
            const src = base + k * L;
            if (o !== src) out.copyWithin(o, src, src + L);
            o += L;
            if (k < n - 1) eol();
          }
          i += n * bpl;
          nl -= n;
          if (nl > 0) eol();
        }
        col = L;
      }
      while (i < full) {
        if (col === L) eol();
        // as many whole groups as fit on this line
        const take = Math.min(full - i, ((L - col) >> 2) * 3);
        o = encodeGroups(b, i, i + take, out, o);
        i += take;
        col += (take / 3) * 4;
      }
    }
    if (i < to) {
      // final 1 or 2 bytes, padded
      if (L > 0 && col === L) eol();
      const two = to - i === 2;
      const v = (b[i] << 16) | ((two ? b[i + 1] : 0) << 8);
      out[o++] = ALPHABET[v >> 18];
      out[o++] = ALPHABET[(v >> 12) & 63];
      out[o++] = two ? ALPHABET[(v >> 6) & 63] : 0x3d;
      out[o++] = 0x3d;
      col += 4;
    }
    this.col = col;
    return out.subarray(0, o);
  }
}

/** Encodes bytes [from, to) (a multiple of 3) into out at o; returns the new offset. */
function encodeGroups(b: Uint8Array, from: number, to: number, out: Uint8Array, o: number): number {
  for (let i = from; i < to; i += 3) {
    const v = (b[i] << 16) | (b[i + 1] << 8) | b[i + 2];
    const p = PAIRS[v >> 12];
    const q = PAIRS[v & 4095];
    out[o] = p & 255;
    out[o + 1] = p >> 8;
    out[o + 2] = q & 255;
    out[o + 3] = q >> 8;
    o += 4;
  }
  return o;
}

export function base64Encoder(lineLen: number, crlf: boolean, tail: Buffer): RecipeEncoder {
  const w = new Base64Wrapper(lineLen, crlf);
  return {
    push: (b) => w.push(b),
    end: () => (tail.length ? Buffer.concat([w.end(), tail]) : w.end()),
  };
}

/**
 * Bytes [a, b) of a base64 part as it appears in the message, computed from
 * only the canonical bytes they encode: the recorded line geometry maps a raw
 * offset to a character, the character to its 3-byte group. A partial fetch
 * of a large attachment reads (and verifies) that range, not the attachment.
 */
export async function* base64RawRange(
  r: { lineLen: number; crlf: boolean; tail: Buffer },
  size: number,
  a: number,
  b: number,
  read: (start: number, end: number) => AsyncIterable<Buffer> | Iterable<Buffer>,
): AsyncGenerator<Buffer> {
  const L = r.lineLen;
  const e = r.crlf ? 2 : 1;
  const D = Math.ceil(size / 3) * 4; // data characters
  const dataRaw = L > 0 && D > 0 ? D + (Math.ceil(D / L) - 1) * e : D;
  const rawOf = (c: number): number => (L > 0 ? c + Math.floor(c / L) * e : c);
  const charAt = (x: number): number => {
    if (L === 0) return x;
    const k = Math.floor(x / (L + e));
    return k * L + Math.min(x - k * (L + e), L);
  };
  if (a < dataRaw && a < b) {
    const ca = charAt(a);
    const cb = Math.min(D, charAt(Math.min(b, dataRaw) - 1) + 1);
    const g0 = Math.floor(ca / 4);
    const g1 = Math.ceil(cb / 4);
    const c0 = g0 * 4;
    const w = new Base64Wrapper(L, r.crlf, L > 0 ? c0 % L : 0);
    let pos = rawOf(c0);
    const cut = (buf: Buffer): Buffer | null => {
      const from = Math.max(a, pos) - pos;
      const to = Math.min(b, pos + buf.length) - pos;
      pos += buf.length;
      return to > from ? buf.subarray(from, to) : null;
    };
    const end = Math.min(size, 3 * g1);
    for await (const c of read(3 * g0, end)) {
      const o = cut(w.push(c));
      if (o) yield o;
    }
    const last = cut(w.end());
    if (last) yield last;
  }
  if (b > dataRaw) {
    const t = r.tail.subarray(Math.max(0, a - dataRaw), b - dataRaw);
    if (t.length) yield t;
  }
}
