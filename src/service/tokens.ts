import crypto from 'node:crypto';
import { MailcasError } from '../errors.js';
import { readOperatorFile } from '../util/operator-file.js';

/**
 * Bearer tokens of the HTTP service, from a file of lines `TOKEN USER[,USER...]`
 * or `TOKEN *` (every user); blank lines and `#` comments are skipped. Tokens
 * are looked up by their SHA-256, so a lookup's time says nothing about how
 * much of a guess was right.
 */
export class Tokens {
  private readonly byDigest = new Map<string, Set<string> | '*'>();

  static fromFile(file: string): Tokens {
    return Tokens.parse(readOperatorFile(file, 'tokens file'), file);
  }

  static parse(text: string, where = 'tokens'): Tokens {
    const t = new Tokens();
    text.split(/\r?\n/).forEach((line, i) => {
      const l = line.trim();
      if (!l || l.startsWith('#')) return;
      const m = /^(\S+)\s+(\S+)$/.exec(l);
      if (!m) throw new MailcasError('E_USAGE', `${where} line ${i + 1}: expected "TOKEN USER[,USER...]" or "TOKEN *"`);
      const [, token, users] = m;
      const d = digest(token);
      if (t.byDigest.has(d)) throw new MailcasError('E_USAGE', `${where} line ${i + 1}: the same token is listed twice`);
      t.byDigest.set(d, users === '*' ? '*' : new Set(users.split(',').filter(Boolean)));
    });
    return t;
  }

  get size(): number {
    return this.byDigest.size;
  }

  /** null: no such token; otherwise whether it may read `user` (undefined: whether it is a token at all). */
  grants(token: string, user?: string): boolean | null {
    const g = this.byDigest.get(digest(token));
    if (g === undefined) return null;
    if (user === undefined) return true;
    return g === '*' || g.has(user);
  }
}

const digest = (token: string): string => crypto.createHash('sha256').update(token, 'utf8').digest('hex');
