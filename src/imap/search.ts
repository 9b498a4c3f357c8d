/**
 * SEARCH criteria (RFC 3501 6.4.4) over what the metadata holds: sequence
 * and UID sets, header fields (FROM, TO, CC, BCC, SUBJECT, HEADER), internal
 * and sent dates, sizes, flags (a read-only store keeps none), NOT, OR and
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
  const list: Criterion[] = [];
  const rest = args.slice(i);
  let k = 0;
  const one = (): Criterion => {
    const a = rest[k++];
    if (a === undefined) throw new SearchError('missing search key');
    if (Array.isArray(a)) return all(parseSearchList(a, max));
    const key = (argText(a) ?? '').toUpperCase();
    const str = (): string => {
      const v = argText(rest[k++]);
      if (v === null) throw new SearchError(`${key} needs a string`);
      return v;
    };
    const num = (): number => {
      const n = Number(argText(rest[k++]));
      if (!Number.isSafeInteger(n) || n < 0) throw new SearchError(`${key} needs a number`);
      return n;
    };
    const header = (name: string, value: string): Criterion => {
      const needle = value.toLowerCase();
      return async (m) => (await m.fields()).some((f) => f.name === name && f.value.toLowerCase().includes(needle));
    };
    const sent = async (m: SearchFacts): Promise<number | null> => {
      const d = (await m.fields()).find((f) => f.name === 'date');
      const t = d ? Date.parse(d.value.replace(/\([^)]*\)/g, '').trim()) : NaN;
      return Number.isNaN(t) ? null : dayOf(t);
    };
    switch (key) {
      case 'ALL':
      case 'UNSEEN':
      case 'UNANSWERED':
      case 'UNDELETED':
      case 'UNDRAFT':
      case 'UNFLAGGED':
      case 'OLD':
        return () => true;
      case 'SEEN':
      case 'ANSWERED':
      case 'DELETED':
      case 'DRAFT':
      case 'FLAGGED':
      case 'NEW':
      case 'RECENT':
        return () => false; // a read-only store keeps no flags
      case 'KEYWORD':
        str();
        return () => false;
      case 'UNKEYWORD':
        str();
        return () => true;
      case 'FROM':
      case 'TO':
      case 'CC':
      case 'BCC':
      case 'SUBJECT':
        return header(key.toLowerCase(), str());
      case 'HEADER': {
        const name = str().toLowerCase();
        const value = str();
        if (value === '') return async (m) => (await m.fields()).some((f) => f.name === name);
        return header(name, value);
      }
      case 'LARGER': {
        const n = num();
        return (m) => m.size > n;
      }
      case 'SMALLER': {
        const n = num();
        return (m) => m.size < n;
      }
      case 'SINCE': {
        const d = imapDate(str());
        return (m) => dayOf(m.received) >= d;
      }
      case 'BEFORE': {
        const d = imapDate(str());
        return (m) => dayOf(m.received) < d;
      }
      case 'ON': {
        const d = imapDate(str());
        return (m) => dayOf(m.received) === d;
      }
      case 'SENTSINCE': {
        const d = imapDate(str());
        return async (m) => ((await sent(m)) ?? -Infinity) >= d;
      }
      case 'SENTBEFORE': {
        const d = imapDate(str());
        return async (m) => ((await sent(m)) ?? Infinity) < d;
      }
      case 'SENTON': {
        const d = imapDate(str());
        return async (m) => (await sent(m)) === d;
      }
      case 'UID': {
        const set = parseSequenceSet(str(), max.uid);
        if (set === 'too-many') throw new SearchError(`UID set of more than ${IMAP_MAX_SEQUENCE_RANGES} ranges`);
        if (!set) throw new SearchError('bad UID set');
        return (m) => inRanges(set, m.uid);
      }
      case 'NOT': {
        const c = one();
        return async (m) => !(await c(m));
      }
      case 'OR': {
        const a1 = one();
        const a2 = one();
        return async (m) => (await a1(m)) || (await a2(m));
      }
      case 'BODY':
      case 'TEXT':
        throw new SearchError(`[CANNOT] ${key} would read every message body: not supported by this read-only front`);
      default: {
        const set = /^[\d:*,]+$/.test(key) ? parseSequenceSet(key, max.seq) : null;
        if (set === 'too-many') throw new SearchError(`sequence set of more than ${IMAP_MAX_SEQUENCE_RANGES} ranges`);
        if (!set) throw new SearchError(`unknown search key ${key}`);
        return (m) => inRanges(set, m.seq);
      }
    }
  };
  while (k < rest.length) list.push(one());
  if (!list.length) throw new SearchError('missing search key');
  return all(list);
}

function parseSearchList(args: Arg[], max: { seq: number; uid: number }): Criterion[] {
  return [parseSearch(args, max)];
}

function all(list: Criterion[]): Criterion {
  return async (m) => {
    for (const c of list) if (!(await c(m))) return false;
    return true;
  };
}
