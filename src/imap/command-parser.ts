/**
 * IMAP client commands (RFC 3501 section 9, LITERAL+ from RFC 7888): the
 * framing of a command (a line, or lines joined by literals) and its
 * arguments. Pure: bytes in, values out.
 */

/** An argument: an atom (kept as written, brackets and all), a string (quoted or literal), or a list. */
export type Arg = { atom: string } | { str: string } | Arg[];

export interface Command {
  tag: string;
  name: string;
  args: Arg[];
}

export class CommandError extends Error {
  constructor(
    readonly tag: string | null,
    message: string,
  ) {
    super(message);
  }
}

import { IMAP_COMMAND_MAX_BYTES, IMAP_MAX_SEQUENCE_RANGES } from '../limits.js';

/**
 * Longest command line, and longest literal a command may carry; a whole
 * command is capped too (IMAP_COMMAND_MAX_BYTES). The message of an APPEND
 * is not held: its literal streams out as `append-data` events (the
 * session writes it to a spool file), and the command keeps an empty literal in its place.
 */
export const COMMAND_LINE_MAX = 64 * 1024;
export const COMMAND_LITERAL_MAX = 64 * 1024;

/**
 * Splits a byte stream into commands. A line ending in `{N}` announces a
 * literal of N bytes (the caller sends a continuation first), `{N+}` one the
 * client sends without waiting. Returns what to do next.
 */
export class CommandFramer {
  private buf: Buffer = Buffer.alloc(0);
  private parts: Buffer[] = [];
  private partsBytes = 0;
  private literalLeft = -1;
  /** Bytes of an APPEND's message literal still to pass through as append-data. */
  private streamLeft = -1;

  /** Chunks received behind `buf`, joined to it only when a line or literal needs them (no copy of all input per chunk). */
  private later: Buffer[] = [];
  private laterBytes = 0;

  push(chunk: Buffer): void {
    if (!this.buf.length && !this.later.length) this.buf = chunk;
    else {
      this.later.push(chunk);
      this.laterBytes += chunk.length;
    }
  }

  /** Joins the chunks received since to `buf`; false when there are none. */
  private more(): boolean {
    if (!this.later.length) return false;
    this.buf = Buffer.concat([this.buf, ...this.later], this.buf.length + this.laterBytes);
    this.later = [];
    this.laterBytes = 0;
    return true;
  }

  /** Drops everything held (the connection is over). */
  clear(): void {
    this.buf = Buffer.alloc(0);
    this.later = [];
    this.laterBytes = 0;
    this.parts = [];
    this.partsBytes = 0;
    this.literalLeft = -1;
    this.streamLeft = -1;
  }

  /** Drops the command being framed (its APPEND was refused before the client sent the literal). */
  abortCommand(): void {
    this.parts = [];
    this.partsBytes = 0;
    this.streamLeft = -1;
  }

  /** Bytes received and not yet parsed (the server stops reading past a bound; a command's literals taken so far are not counted: they are bounded by IMAP_COMMAND_MAX_BYTES). */
  get buffered(): number {
    return this.buf.length + this.laterBytes;
  }

  /**
   * The next event: a whole command's bytes, a request to send "+ ..." for a
   * synchronizing literal, an error (line or literal over the limit: the
   * connection should be closed), or null when more bytes are needed.
   */
  next():
    | { kind: 'command'; bytes: Buffer }
    | { kind: 'continue' }
    | { kind: 'error'; message: string }
    | { kind: 'append'; tag: string; size: number; sync: boolean }
    | { kind: 'append-data'; bytes: Buffer }
    | null {
    for (;;) {
      if (this.streamLeft >= 0) {
        if (this.streamLeft === 0) {
          this.streamLeft = -1;
          continue;
        }
        if (!this.buf.length && !this.more()) return null;
        const n = Math.min(this.streamLeft, this.buf.length);
        const bytes = this.buf.subarray(0, n);
        this.buf = this.buf.subarray(n);
        this.streamLeft -= n;
        return { kind: 'append-data', bytes };
      }
      if (this.partsBytes > IMAP_COMMAND_MAX_BYTES) return { kind: 'error', message: `command longer than ${IMAP_COMMAND_MAX_BYTES} bytes (lines and literals together)` };
      if (this.literalLeft >= 0) {
        if (this.buf.length < this.literalLeft) {
          if (this.more()) continue;
          if (!this.buf.length) return null;
          this.add(this.buf);
          this.literalLeft -= this.buf.length;
          this.buf = Buffer.alloc(0);
          return null;
        }
        this.add(this.buf.subarray(0, this.literalLeft));
        this.buf = this.buf.subarray(this.literalLeft);
        this.literalLeft = -1;
        continue;
      }
      const lf = this.buf.indexOf(0x0a);
      if (lf < 0) {
        if (this.more()) continue;
        if (this.buf.length > COMMAND_LINE_MAX) return { kind: 'error', message: `command line longer than ${COMMAND_LINE_MAX} bytes` };
        return null;
      }
      const line = this.buf.subarray(0, lf + 1);
      this.buf = this.buf.subarray(lf + 1);
      if (line.length > COMMAND_LINE_MAX) return { kind: 'error', message: `command line longer than ${COMMAND_LINE_MAX} bytes` };
      this.add(line);
      const text = line.toString('latin1').replace(/\r?\n$/, '');
      const lit = /\{(\d+)(\+?)\}$/.exec(text);
      if (lit && this.isAppendMessage(text.slice(0, lit.index))) {
        // the message itself: an empty literal stands in for it, its bytes stream out
        this.parts.pop();
        this.partsBytes -= line.length;
        this.add(Buffer.from(`${text.slice(0, lit.index)}{0}\r\n`, 'latin1'));
        this.streamLeft = Number(lit[1]);
        const tag = /^\S+/.exec(Buffer.concat(this.parts).toString('latin1'))?.[0] ?? '*';
        return { kind: 'append', tag, size: this.streamLeft, sync: !lit[2] };
      }
      if (lit) {
        const n = Number(lit[1]);
        if (n > COMMAND_LITERAL_MAX) return { kind: 'error', message: `literal of ${n} bytes is over the limit of ${COMMAND_LITERAL_MAX}` };
        if (this.partsBytes + n > IMAP_COMMAND_MAX_BYTES) return { kind: 'error', message: `command longer than ${IMAP_COMMAND_MAX_BYTES} bytes (lines and literals together)` };
        this.literalLeft = n;
        if (!lit[2]) return { kind: 'continue' };
        continue;
      }
      const bytes = Buffer.concat(this.parts);
      this.parts = [];
      this.partsBytes = 0;
      return { kind: 'command', bytes };
    }
  }

  /** Whether a literal announced after `before` (this line's text) is an APPEND's message: the mailbox named already. */
  private isAppendMessage(before: string): boolean {
    const head = this.parts.length > 1 ? Buffer.concat(this.parts.slice(0, -1)).toString('latin1') + before : before;
    const m = /^\S+ +APPEND +(.*)$/is.exec(head);
    return !!m && m[1].trim() !== '';
  }

  private add(b: Buffer): void {
    this.parts.push(Buffer.from(b));
    this.partsBytes += b.length;
  }
}

/** Parses one command's bytes (as framed above, literals inline). */
export function parseCommand(bytes: Buffer): Command {
  const s = bytes.toString('latin1');
  let i = 0;
  const word = (): string => {
    const j = i;
    while (i < s.length && s[i] !== ' ' && s[i] !== '\r' && s[i] !== '\n') i++;
    return s.slice(j, i);
  };
  const tag = word();
  if (!tag || /[(){%*"\\\]]/.test(tag)) throw new CommandError(null, 'missing or malformed tag');
  if (s[i] !== ' ') throw new CommandError(tag, 'missing command');
  i++;
  let name = word().toUpperCase();
  if (name === 'UID') {
    if (s[i] !== ' ') throw new CommandError(tag, 'UID needs a command');
    i++;
    name = `UID ${word().toUpperCase()}`;
  }
  if (!name) throw new CommandError(tag, 'missing command');
  const args: Arg[] = [];
  const stack: Arg[][] = [args];
  const top = (): Arg[] => stack[stack.length - 1];
  while (i < s.length) {
    const c = s[i];
    if (c === ' ') {
      i++;
    } else if (c === '\r' || c === '\n') {
      i++;
    } else if (c === '(') {
      const l: Arg[] = [];
      top().push(l);
      stack.push(l);
      i++;
    } else if (c === ')') {
      if (stack.length === 1) throw new CommandError(tag, 'unbalanced parentheses');
      stack.pop();
      i++;
    } else if (c === '"') {
      let v = '';
      for (i++; i < s.length && s[i] !== '"'; i++) {
        if (s[i] === '\\') i++;
        if (s[i] === '\r' || s[i] === '\n') throw new CommandError(tag, 'line break in a quoted string');
        v += s[i];
      }
      if (s[i] !== '"') throw new CommandError(tag, 'unterminated quoted string');
      i++;
      top().push({ str: v });
    } else if (c === '{' || (c === '~' && s[i + 1] === '{')) {
      const m = /^~?\{(\d+)\+?\}\r?\n/.exec(s.slice(i, i + 32));
      if (!m) throw new CommandError(tag, 'malformed literal');
      const n = Number(m[1]);
      i += m[0].length;
      if (i + n > s.length) throw new CommandError(tag, 'literal shorter than announced');
      top().push({ str: s.slice(i, i + n) });
      i += n;
    } else {
      // an atom; brackets may hold spaces (BODY[HEADER.FIELDS (From To)]<0.10>)
      const j = i;
      let depth = 0;
      while (i < s.length) {
        const d = s[i];
        if (d === '[') depth++;
        else if (d === ']') depth--;
        else if (depth <= 0 && (d === ' ' || d === '(' || d === ')' || d === '\r' || d === '\n')) break;
        else if (depth > 0 && (d === '\r' || d === '\n')) break;
        i++;
      }
      if (depth > 0) throw new CommandError(tag, 'unbalanced brackets');
      top().push({ atom: s.slice(j, i) });
    }
  }
  if (stack.length !== 1) throw new CommandError(tag, 'unbalanced parentheses');
  return { tag, name, args };
}

/** The text of an atom or string argument; null for a list or nothing. */
export function argText(a: Arg | undefined): string | null {
  if (!a || Array.isArray(a)) return null;
  return 'atom' in a ? a.atom : a.str;
}

/** An argument as IMAP text again (for FETCH item lists). */
export function argSource(a: Arg): string {
  if (Array.isArray(a)) return `(${a.map(argSource).join(' ')})`;
  return 'atom' in a ? a.atom : `"${a.str.replace(/["\\]/g, (m) => `\\${m}`)}"`;
}

/**
 * A sequence set ("1:*", "2,4:7,9") as ranges over 1..max (`*` is max),
 * merged: ascending, disjoint, never expanded (a set that names the whole
 * mailbox ten thousand times is one range). null when malformed;
 * 'too-many' over IMAP_MAX_SEQUENCE_RANGES ranges.
 */
export function parseSequenceSet(text: string, max: number): [number, number][] | null | 'too-many' {
  const parts = text.split(',');
  if (parts.length > IMAP_MAX_SEQUENCE_RANGES) return 'too-many';
  const out: [number, number][] = [];
  for (const p of parts) {
    const m = /^(\d+|\*)(?::(\d+|\*))?$/.exec(p);
    if (!m) return null;
    const v = (x: string): number => (x === '*' ? max : Number(x));
    const a = v(m[1]);
    const b = m[2] === undefined ? a : v(m[2]);
    if (!Number.isSafeInteger(a) || !Number.isSafeInteger(b) || (m[1] !== '*' && a === 0) || (m[2] !== undefined && m[2] !== '*' && b === 0)) return null;
    out.push(a <= b ? [a, b] : [b, a]);
  }
  return mergeRanges(out);
}

/** Ranges sorted and merged where they overlap or touch. */
export function mergeRanges(ranges: [number, number][]): [number, number][] {
  if (ranges.length < 2) return ranges;
  const sorted = [...ranges].sort((x, y) => x[0] - y[0]);
  const out: [number, number][] = [[sorted[0][0], sorted[0][1]]];
  for (let i = 1; i < sorted.length; i++) {
    const last = out[out.length - 1];
    const [a, b] = sorted[i];
    if (a <= last[1] + 1) last[1] = Math.max(last[1], b);
    else out.push([a, b]);
  }
  return out;
}

/** Whether v lies in one of the merged ranges (binary search: a search over a large set costs log of it per message). */
export function inRanges(ranges: [number, number][], v: number): boolean {
  let lo = 0;
  let hi = ranges.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (v < ranges[mid][0]) hi = mid - 1;
    else if (v > ranges[mid][1]) lo = mid + 1;
    else return true;
  }
  return false;
}
