/**
 * SEARCH criteria (RFC 3501 6.4.4) over what the metadata holds: sequence
 * and UID sets, header fields (FROM, TO, CC, BCC, SUBJECT, HEADER), internal
 * and sent dates, sizes, flags and keywords, MODSEQ (RFC 7162), NOT, OR and
 * groups. Body text (BODY, TEXT) would read every blob and is refused.
 */
import { argText, inRanges, parseSequenceSet, type Arg } from './command-parser.js';
import { IMAP_MAX_SEQUENCE_RANGES } from '../limits.js';
import type { RawField } from '../fetch/header.js';

export interface SearchFacts {
  seq: number;
  uid: number;
  size: number;
  /** Unix ms. */
  received: number;
  /** The message's flags and keywords as the session knows them, and its modseq. */
  flags: string[];
  modseq: number;
  fields(): Promise<RawField[]>;
}

export type Criterion = (m: SearchFacts) => Promise<boolean> | boolean;

export class SearchError extends Error {}

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];

/** An IMAP date ("1-Feb-1994") as the UTC midnight it names, in ms. */
function imapDate(text: string | null): number {
  const m = /^"?(\d{1,2})-([A-Za-z]{3})-(\d{4})"?$/.exec(text ?? '');
  const mon = m ? MONTHS.indexOf(m[2].toLowerCase()) : -1;
  if (!m || mon < 0) throw new SearchError(`bad date ${JSON.stringify(text)} (like 1-Feb-1994)`);
  return Date.UTC(Number(m[3]), mon, Number(m[1]));
}
const DAY = 86_400_000;
const dayOf = (ms: number): number => Math.floor(ms / DAY) * DAY;

/** Parses criteria (all of them must hold). `max`: the highest sequence number and UID, for "*". */
export function parseSearch(args: Arg[], max: { seq: number; uid: number }): Criterion {
  let i = 0;
  if (argText(args[0])?.toUpperCase() === 'CHARSET') {
    const cs = (argText(args[1]) ?? '').toUpperCase();
    if (cs !== 'UTF-8' && cs !== 'US-ASCII') throw new SearchError(`[BADCHARSET (UTF-8 US-ASCII)] charset ${cs} is not supported`);
    i = 2;
  }
  const p = new CriteriaParser(args.slice(i), max);
  const list: Criterion[] = [];
  while (!p.done) list.push(p.one());
  if (!list.length) throw new SearchError('missing search key');
  return all(list);
}

const has = (m: SearchFacts, flag: string): boolean => m.flags.some((f) => f.toLowerCase() === flag.toLowerCase());

/** Flag keys (\\Recent is never set: no session of this front claims messages as recent). */
const FLAG_KEYS: Record<string, (m: SearchFacts) => boolean> = {
  ALL: () => true,
  SEEN: (m) => has(m, '\\Seen'),
  UNSEEN: (m) => !has(m, '\\Seen'),
  ANSWERED: (m) => has(m, '\\Answered'),
  UNANSWERED: (m) => !has(m, '\\Answered'),
  DELETED: (m) => has(m, '\\Deleted'),
  UNDELETED: (m) => !has(m, '\\Deleted'),
  DRAFT: (m) => has(m, '\\Draft'),
  UNDRAFT: (m) => !has(m, '\\Draft'),
  FLAGGED: (m) => has(m, '\\Flagged'),
  UNFLAGGED: (m) => !has(m, '\\Flagged'),
  OLD: () => true,
  NEW: () => false,
  RECENT: () => false,
};

/** Criteria read one key (and its arguments) at a time. */
class CriteriaParser {
  private k = 0;
  constructor(
    private readonly rest: Arg[],
    private readonly max: { seq: number; uid: number },
  ) {}

  get done(): boolean {
    return this.k >= this.rest.length;
  }

  private str(key: string): string {
    const v = argText(this.rest[this.k++]);
    if (v === null) throw new SearchError(`${key} needs a string`);
    return v;
  }

  private num(key: string): number {
    const n = Number(argText(this.rest[this.k++]));
    if (!Number.isSafeInteger(n) || n < 0) throw new SearchError(`${key} needs a number`);
    return n;
  }

  one(): Criterion {
    const a = this.rest[this.k++];
    if (a === undefined) throw new SearchError('missing search key');
    if (Array.isArray(a)) return parseSearch(a, this.max);
    const key = (argText(a) ?? '').toUpperCase();
    if (key in FLAG_KEYS) return FLAG_KEYS[key];
    switch (key) {
      case 'KEYWORD':
      case 'UNKEYWORD': {
        const k = this.str(key);
        return (m) => has(m, k) === (key === 'KEYWORD');
      }
      case 'MODSEQ': {
        // MODSEQ [entry-name entry-type] value (RFC 7162 3.1.5): the entry is accepted and not used
        if (this.rest[this.k + 1] !== undefined && /^"?\/flags\//i.test(argText(this.rest[this.k]) ?? '')) this.k += 2;
        const n = this.num(key);
        return (m) => m.modseq >= n;
      }
      case 'NOT': {
        const c = this.one();
        return async (m) => !(await c(m));
      }
      case 'OR': {
        const a1 = this.one();
        const a2 = this.one();
        return async (m) => (await a1(m)) || (await a2(m));
      }
      case 'BODY':
      case 'TEXT':
        throw new SearchError(`[CANNOT] ${key} would read every message body: not supported by this front (it searches the metadata only)`);
    }
    return this.header(key) ?? this.sizeOrDate(key) ?? this.set(key);
  }

  /** FROM, TO, CC, BCC, SUBJECT, HEADER: a substring of a header field, case-insensitive. */
  private header(key: string): Criterion | null {
    let name: string;
    let value: string;
    if (['FROM', 'TO', 'CC', 'BCC', 'SUBJECT'].includes(key)) {
      name = key.toLowerCase();
      value = this.str(key);
    } else if (key === 'HEADER') {
      name = this.str(key).toLowerCase();
      value = this.str(key);
      if (value === '') return async (m) => (await m.fields()).some((f) => f.name === name);
    } else return null;
    const needle = value.toLowerCase();
    return async (m) => (await m.fields()).some((f) => f.name === name && f.value.toLowerCase().includes(needle));
  }

  /** LARGER, SMALLER; SINCE, BEFORE, ON (the internal date); SENTSINCE, SENTBEFORE, SENTON (the Date field). */
  private sizeOrDate(key: string): Criterion | null {
    switch (key) {
      case 'LARGER': {
        const n = this.num(key);
        return (m) => m.size > n;
      }
      case 'SMALLER': {
        const n = this.num(key);
        return (m) => m.size < n;
      }
    }
    const compare: Record<string, (day: number, d: number) => boolean> = { SINCE: (x, d) => x >= d, BEFORE: (x, d) => x < d, ON: (x, d) => x === d };
    if (key in compare) {
      const d = imapDate(this.str(key));
      return (m) => compare[key](dayOf(m.received), d);
    }
    const sentCompare: Record<string, (day: number | null, d: number) => boolean> = {
      SENTSINCE: (x, d) => (x ?? -Infinity) >= d,
      SENTBEFORE: (x, d) => (x ?? Infinity) < d,
      SENTON: (x, d) => x === d,
    };
    if (key in sentCompare) {
      const d = imapDate(this.str(key));
      return async (m) => sentCompare[key](await sentDay(m), d);
    }
    return null;
  }

  /** UID set, or a sequence set (merged ranges, looked up by binary search). */
  private set(key: string): Criterion {
    if (key === 'UID') {
      const set = parseSequenceSet(this.str(key), this.max.uid);
      if (set === 'too-many') throw new SearchError(`UID set of more than ${IMAP_MAX_SEQUENCE_RANGES} ranges`);
      if (!set) throw new SearchError('bad UID set');
      return (m) => inRanges(set, m.uid);
    }
    const set = /^[\d:*,]+$/.test(key) ? parseSequenceSet(key, this.max.seq) : null;
    if (set === 'too-many') throw new SearchError(`sequence set of more than ${IMAP_MAX_SEQUENCE_RANGES} ranges`);
    if (!set) throw new SearchError(`unknown search key ${key}`);
    return (m) => inRanges(set, m.seq);
  }
}

/** The day of the message's Date field, or null when it has none that parses. */
async function sentDay(m: SearchFacts): Promise<number | null> {
  const d = (await m.fields()).find((f) => f.name === 'date');
  const t = d ? Date.parse(d.value.replace(/\([^)]*\)/g, '').trim()) : NaN;
  return Number.isNaN(t) ? null : dayOf(t);
}


function all(list: Criterion[]): Criterion {
  return async (m) => {
    for (const c of list) if (!(await c(m))) return false;
    return true;
  };
}
