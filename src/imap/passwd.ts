import crypto from 'node:crypto';
import { MailcasError } from '../errors.js';
import { readOperatorFile } from '../util/operator-file.js';

/**
 * The IMAP front's password file: lines `user:password`, the password plain
 * or `{SCHEME}value` as Dovecot writes them: {PLAIN}, {SHA512-CRYPT} and
 * {SHA256-CRYPT} (`$6$` / `$5$` from `doveadm pw` or `openssl passwd -6`),
 * {SHA256}, {SHA512}, {SSHA256}, {SSHA512} (base64). Comparisons take the
 * same time whatever matched; an unknown user costs a hash too.
 */
export class PasswordFile {
  private readonly users = new Map<string, string>();

  static fromFile(file: string): PasswordFile {
    return PasswordFile.parse(readOperatorFile(file, 'password file'), file);
  }

  static parse(text: string, where = 'passwd'): PasswordFile {
    const p = new PasswordFile();
    text.split(/\r?\n/).forEach((line, i) => {
      if (!line.trim() || line.trimStart().startsWith('#')) return;
      const c = line.indexOf(':');
      if (c <= 0) throw new MailcasError('E_USAGE', `${where} line ${i + 1}: expected "user:password"`);
      const user = line.slice(0, c);
      // Dovecot's passwd-file format allows more fields after the password: only the password is used
      const rest = line.slice(c + 1);
      const pw = /^\{[A-Z0-9.-]+\}/i.test(rest) ? rest.split(':')[0] : rest;
      const scheme = /^\{([A-Z0-9.-]+)\}/i.exec(pw)?.[1].toUpperCase();
      if (scheme && !SCHEMES.has(scheme)) throw new MailcasError('E_USAGE', `${where} line ${i + 1}: password scheme {${scheme}} is not supported (${[...SCHEMES].join(', ')})`);
      const bare = scheme ? pw.slice(pw.indexOf('}') + 1) : pw;
      if (!bare) {
        // an empty password would let anyone in as this user: the line is refused, and said so
        p.warnings.push(`${where} line ${i + 1}: user ${user} has an empty password: nobody can log in as ${user} until one is set`);
        return;
      }
      p.users.set(user, pw);
    });
    return p;
  }

  get size(): number {
    return this.users.size;
  }

  verify(user: string, password: string): boolean {
    const stored = this.users.get(user);
    // an unknown user is checked against a dummy so that the answer takes as much work
    const ok = verifyPassword(stored ?? DUMMY, password);
    return stored !== undefined && stored !== '' && password !== '' && ok;
  }

  /**
   * verify, with a SHA-crypt hash computed in slices that let the event loop
   * serve other sessions in between (a few ms of CPU each: never one block).
   */
  async verifyAsync(user: string, password: string): Promise<boolean> {
    const stored = this.users.get(user);
    const ok = await verifyPasswordAsync(stored ?? DUMMY, password);
    return stored !== undefined && stored !== '' && password !== '' && ok;
  }

  /** Lines the file had that were not taken (an empty password: nobody may log in with one). */
  readonly warnings: string[] = [];
}

const DUMMY = '{SHA512-CRYPT}$6$rounds=5000$mailcasdummy$';

/** verifyPassword, yielding to the event loop between slices of a SHA-crypt hash. */
export async function verifyPasswordAsync(stored: string, password: string): Promise<boolean> {
  const m = /^\{([A-Z0-9.-]+)\}(.*)$/is.exec(stored);
  const scheme = m ? m[1].toUpperCase() : 'PLAIN';
  if (scheme !== 'SHA512-CRYPT' && scheme !== 'SHA256-CRYPT' && scheme !== 'CRYPT') return verifyPassword(stored, password);
  const value = m![2];
  const steps = shaCryptSteps(Buffer.from(password, 'utf8'), value);
  let r = steps.next();
  while (!r.done) {
    await new Promise((res) => setImmediate(res));
    r = steps.next();
  }
  return r.value !== null && same(Buffer.from(r.value), Buffer.from(value));
}

const SCHEMES = new Set(['PLAIN', 'CLEAR', 'SHA512-CRYPT', 'SHA256-CRYPT', 'CRYPT', 'SHA256', 'SHA512', 'SSHA256', 'SSHA512']);

export function verifyPassword(stored: string, password: string): boolean {
  const m = /^\{([A-Z0-9.-]+)\}(.*)$/is.exec(stored);
  const scheme = m ? m[1].toUpperCase() : 'PLAIN';
  const value = m ? m[2] : stored;
  const pw = Buffer.from(password, 'utf8');
  switch (scheme) {
    case 'PLAIN':
    case 'CLEAR':
      return same(Buffer.from(value, 'utf8'), pw);
    case 'SHA512-CRYPT':
    case 'SHA256-CRYPT':
    case 'CRYPT': {
      const again = shaCrypt(pw, value);
      return again !== null && same(Buffer.from(again), Buffer.from(value));
    }
    case 'SHA256':
    case 'SHA512': {
      const alg = scheme.toLowerCase();
      return same(crypto.createHash(alg).update(pw).digest(), decodeHashValue(value));
    }
    case 'SSHA256':
    case 'SSHA512': {
      const alg = scheme.slice(1).toLowerCase();
      const len = alg === 'sha256' ? 32 : 64;
      const raw = decodeHashValue(value);
      const salt = raw.subarray(len);
      return same(crypto.createHash(alg).update(pw).update(salt).digest(), raw.subarray(0, len));
    }
    default:
      return false;
  }
}

/** Dovecot writes these base64 (hex with a .HEX suffix on the scheme is not supported). */
const decodeHashValue = (v: string): Buffer => Buffer.from(v, 'base64');

function same(a: Buffer, b: Buffer): boolean {
  // fixed-length comparison of digests: the time does not depend on where they differ
  const da = crypto.createHash('sha256').update(a).digest();
  const db = crypto.createHash('sha256').update(b).digest();
  return crypto.timingSafeEqual(da, db) && a.length === b.length;
}

const ALPHABET = './0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const ORDER_512 = [
  [0, 21, 42], [22, 43, 1], [44, 2, 23], [3, 24, 45], [25, 46, 4], [47, 5, 26], [6, 27, 48], [28, 49, 7], [50, 8, 29], [9, 30, 51], [31, 52, 10],
  [53, 11, 32], [12, 33, 54], [34, 55, 13], [56, 14, 35], [15, 36, 57], [37, 58, 16], [59, 17, 38], [18, 39, 60], [40, 61, 19], [62, 20, 41],
];
const ORDER_256 = [[0, 10, 20], [21, 1, 11], [12, 22, 2], [3, 13, 23], [24, 4, 14], [15, 25, 5], [6, 16, 26], [27, 7, 17], [18, 28, 8], [9, 19, 29]];

/**
 * SHA-crypt (Ulrich Drepper's "Unix crypt using SHA-256 and SHA-512", the
 * `$5$` and `$6$` of glibc): the hash string for `password` with the salt and
 * rounds of `setting` (a full hash string works). null: not such a string.
 */
export function shaCrypt(password: Buffer, setting: string): string | null {
  const steps = shaCryptSteps(password, setting);
  let r = steps.next();
  while (!r.done) r = steps.next();
  return r.value;
}

/** Rounds computed per slice of shaCryptSteps (about a millisecond of CPU). */
const ROUNDS_PER_SLICE = 1000;

/** shaCrypt as slices: each next() computes ROUNDS_PER_SLICE rounds; the last returns the hash string (or null). */
export function* shaCryptSteps(password: Buffer, setting: string): Generator<void, string | null, void> {
  const m = /^\$([56])\$(?:rounds=(\d+)\$)?([^$]{0,16})/.exec(setting);
  if (!m) return null;
  const alg = m[1] === '6' ? 'sha512' : 'sha256';
  const len = alg === 'sha512' ? 64 : 32;
  const rounds = m[2] === undefined ? 5000 : Math.min(999_999_999, Math.max(1000, Number(m[2])));
  const salt = Buffer.from(m[3], 'utf8');
  const H = (...parts: Buffer[]): Buffer => {
    const h = crypto.createHash(alg);
    for (const p of parts) h.update(p);
    return h.digest();
  };
  const P = password;
  const B = H(P, salt, P);
  const a = crypto.createHash(alg).update(P).update(salt);
  let n = P.length;
  for (; n > len; n -= len) a.update(B);
  a.update(B.subarray(0, n));
  for (let c = P.length; c > 0; c >>= 1) a.update(c & 1 ? B : P);
  let A = a.digest();
  const dp = crypto.createHash(alg);
  for (let i = 0; i < P.length; i++) dp.update(P);
  const DP = dp.digest();
  const pSeq = repeatTo(DP, P.length);
  const ds = crypto.createHash(alg);
  for (let i = 0; i < 16 + A[0]; i++) ds.update(salt);
  const sSeq = repeatTo(ds.digest(), salt.length);
  for (let i = 0; i < rounds; i++) {
    if (i && i % ROUNDS_PER_SLICE === 0) yield;
    const c = crypto.createHash(alg);
    c.update(i & 1 ? pSeq : A);
    if (i % 3) c.update(sSeq);
    if (i % 7) c.update(pSeq);
    c.update(i & 1 ? A : pSeq);
    A = c.digest();
  }
  let out = '';
  const put = (b2: number, b1: number, b0: number, chars: number): void => {
    let w = (b2 << 16) | (b1 << 8) | b0;
    for (let k = 0; k < chars; k++) {
      out += ALPHABET[w & 0x3f];
      w >>= 6;
    }
  };
  if (alg === 'sha512') {
    for (const [x, y, z] of ORDER_512) put(A[x], A[y], A[z], 4);
    put(0, 0, A[63], 2);
  } else {
    for (const [x, y, z] of ORDER_256) put(A[x], A[y], A[z], 4);
    put(0, A[31], A[30], 3);
  }
  return `$${m[1]}$${m[2] !== undefined ? `rounds=${rounds}$` : ''}${m[3]}$${out}`;
}

function repeatTo(b: Buffer, n: number): Buffer {
  const out = Buffer.alloc(n);
  for (let i = 0; i < n; i += b.length) b.copy(out, i, 0, Math.min(b.length, n - i));
  return out;
}
