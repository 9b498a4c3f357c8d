/**
 * IMAP flags as the store keeps them: the five system flags as bits of one
 * integer, keywords as a space-separated list (RFC 3501 2.3.2). Pure: no
 * I/O, no SQL.
 */
import { MailcasError } from '../errors.js';

export const SYSTEM_FLAGS = ['\\Seen', '\\Answered', '\\Flagged', '\\Deleted', '\\Draft'] as const;
export const DELETED = 8;

/** Keywords a message may carry at most, and the longest keyword: what one STORE may make a row hold. */
export const MAX_KEYWORDS = 64;
export const MAX_KEYWORD_LENGTH = 128;

/** A message's flags: system bits and keywords (in the order first set). */
export interface FlagState {
  bits: number;
  keywords: string[];
}

/** An atom's characters (RFC 3501 atom-char, without the list wildcards and resp-specials). */
const KEYWORD = /^[!#$&'+,\-.0-9:;<=>?@A-Z^_`a-z|~]+$/;

/** Parses flag names as a client or the CLI gives them (\Seen, seen, $Junk, NonJunk...). */
export function parseFlags(names: string[]): FlagState {
  const out: FlagState = { bits: 0, keywords: [] };
  for (const raw of names) {
    if (!raw) continue;
    const sys = SYSTEM_FLAGS.findIndex((f) => f.toLowerCase() === raw.toLowerCase() || f.slice(1).toLowerCase() === raw.toLowerCase());
    if (sys >= 0) {
      out.bits |= 1 << sys;
      continue;
    }
    if (raw.startsWith('\\')) {
      if (raw.toLowerCase() === '\\recent') continue; // the server's, never set by a client (RFC 3501 2.3.2)
      throw new MailcasError('E_USAGE', `unknown system flag ${raw} (system flags: ${SYSTEM_FLAGS.join(' ')})`);
    }
    if (raw.length > MAX_KEYWORD_LENGTH || !KEYWORD.test(raw)) throw new MailcasError('E_USAGE', `not a keyword: ${raw.slice(0, 40)} (atom characters, at most ${MAX_KEYWORD_LENGTH})`);
    if (!out.keywords.some((k) => k.toLowerCase() === raw.toLowerCase())) out.keywords.push(raw);
  }
  return out;
}

/** What a message's flags become after a STORE's +FLAGS, -FLAGS or FLAGS. */
export function applyFlags(cur: FlagState, op: 'add' | 'remove' | 'set', change: FlagState): FlagState {
  if (op === 'set') return { bits: change.bits, keywords: [...change.keywords] };
  if (op === 'add') {
    const keywords = [...cur.keywords];
    for (const k of change.keywords) if (!keywords.some((x) => x.toLowerCase() === k.toLowerCase())) keywords.push(k);
    if (keywords.length > MAX_KEYWORDS) throw new MailcasError('E_USAGE', `a message carries at most ${MAX_KEYWORDS} keywords`);
    return { bits: cur.bits | change.bits, keywords };
  }
  const drop = new Set(change.keywords.map((k) => k.toLowerCase()));
  return { bits: cur.bits & ~change.bits, keywords: cur.keywords.filter((k) => !drop.has(k.toLowerCase())) };
}

export function sameFlags(a: FlagState, b: FlagState): boolean {
  return a.bits === b.bits && a.keywords.length === b.keywords.length && a.keywords.every((k, i) => k === b.keywords[i]);
}

/** No flags: one shared (frozen) list, so a session holding a large mailbox of unflagged mail holds no array per message. */
const NO_FLAGS = Object.freeze([]) as unknown as string[];

/** The flags' names, system flags first. */
export function flagNames(f: FlagState): string[] {
  if (!f.bits && !f.keywords.length) return NO_FLAGS;
  const out: string[] = [];
  SYSTEM_FLAGS.forEach((name, i) => f.bits & (1 << i) && out.push(name));
  return out.concat(f.keywords);
}

/** The keywords column's value (NULL for none). */
export function keywordsColumn(keywords: string[]): string | null {
  return keywords.length ? keywords.join(' ') : null;
}

export function fromColumns(bits: number, keywords: string | null): FlagState {
  return { bits, keywords: keywords ? keywords.split(' ') : [] };
}
