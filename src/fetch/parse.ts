import type { ImapValue } from './wire.js';

/**
 * Reads IMAP data (RFC 3501 section 4) from bytes: atoms, numbers, NIL,
 * quoted strings, literals and parenthesized lists, up to the end of the
 * line. Used to read responses (the Dovecot oracle in the tests) and
 * command arguments (the IMAP front). Strings come back latin1.
 */
export class ImapReader {
  pos = 0;
  constructor(private readonly b: Buffer) {}

  get done(): boolean {
    return this.pos >= this.b.length;
  }

  private peek(): number {
    return this.b[this.pos];
  }

  skipSpaces(): void {
    while (this.pos < this.b.length && this.b[this.pos] === 0x20) this.pos++;
  }

  /** At the end of a line (CRLF consumed). */
  atEol(): boolean {
    this.skipSpaces();
    if (this.b[this.pos] === 0x0d && this.b[this.pos + 1] === 0x0a) {
      this.pos += 2;
      return true;
    }
    return this.pos >= this.b.length;
  }

  /** The rest of the current line (without CRLF), consumed. */
  restOfLine(): string {
    const e = this.b.indexOf('\r\n', this.pos);
    const end = e < 0 ? this.b.length : e;
    const s = this.b.toString('latin1', this.pos, end);
    this.pos = e < 0 ? end : end + 2;
    return s;
  }

  /** One value: a list, a string, NIL, a number or an atom (atoms keep [ ] < > . so BODY[1.2]<0> is one atom). */
  value(): ImapValue {
    this.skipSpaces();
    const c = this.peek();
    if (c === 0x28) {
      this.pos++;
      const out: ImapValue[] = [];
      for (;;) {
        this.skipSpaces();
        if (this.peek() === 0x29) {
          this.pos++;
          return out;
        }
        if (this.pos >= this.b.length) return out;
        out.push(this.value());
      }
    }
    if (c === 0x22) {
      let s = '';
      for (this.pos++; this.pos < this.b.length && this.b[this.pos] !== 0x22; this.pos++) {
        if (this.b[this.pos] === 0x5c) this.pos++;
        s += String.fromCharCode(this.b[this.pos]);
      }
      this.pos++;
      return s;
    }
    if (c === 0x7b) {
      const close = this.b.indexOf('}', this.pos);
      const n = Number(this.b.toString('latin1', this.pos + 1, close).replace('+', ''));
      const start = close + 3; // }\r\n
      this.pos = start + n;
      return this.b.toString('latin1', start, start + n);
    }
    let e = this.pos;
    let depth = 0;
    while (e < this.b.length) {
      const x = this.b[e];
      if (x === 0x5b) depth++;
      else if (x === 0x5d) depth--;
      else if (depth === 0 && (x === 0x20 || x === 0x28 || x === 0x29 || x === 0x0d || x === 0x0a)) break;
      e++;
    }
    const word = this.b.toString('latin1', this.pos, e);
    this.pos = e;
    if (word.toUpperCase() === 'NIL') return null;
    if (/^\d+$/.test(word)) return Number(word);
    return { atom: word };
  }
}

/** Splits a FETCH item list's (name value) pairs into a map of upper-cased names. */
export function fetchPairs(list: ImapValue): Map<string, ImapValue> {
  const m = new Map<string, ImapValue>();
  if (!Array.isArray(list)) return m;
  for (let i = 0; i + 1 < list.length; i += 2) {
    const k = list[i];
    m.set((typeof k === 'object' && k && 'atom' in k ? k.atom : String(k)).toUpperCase(), list[i + 1]);
  }
  return m;
}
