import { isMailcasError } from '../../errors.js';
import type { MessageAccess } from '../../types.js';
import { argSource, argText, inRanges, parseSequenceSet, type Arg } from '../command-parser.js';
import { answerItem, parseFetchItems, type FetchItem } from '../../fetch/fetch-items.js';
import { toWire } from '../../fetch/wire.js';
import { IMAP_MAX_SEQUENCE_RANGES } from '../../limits.js';
import { Fatal, No, type SessionState } from '../session-state.js';
import { flagList } from '../wire-sets.js';
import { resync } from './mailboxes.js';

// FETCH and UID FETCH: messages read a window ahead of the one going out, answers of the server cache written at once

/** Message bytes up to this are read ahead in full; larger ones stream when their turn comes. */
const BUFFER_AHEAD_MAX = 1024 * 1024;
const DEFAULT_FETCH_WINDOW = 16;

type Prepared = {
  seq: number;
  uid: number;
  /** `reserved`: read-ahead bytes the part holds of the session's share, given back once written (or dropped). */
  parts: ({ name: string; wire: string } | { name: string; size: number; literal8: boolean; buffered: Buffer | null; reserved: number; stream: () => AsyncIterable<Buffer> })[];
} | null;

/** Items whose answers the cache keeps: structure and metadata items, header sections. */
function cacheable(it: FetchItem): boolean {
  return (it.kind === 'meta' && it.name !== 'FLAGS' && it.name !== 'MODSEQ') || (it.kind === 'section' && !it.binary && /^(HEADER|MIME)/.test(it.section.text));
}

/** An item's key in the answer cache: the response name of a partial holds its origin only, the key its length too. */
function cacheKey(it: FetchItem): string {
  return it.kind === 'section' && it.partial ? `${it.name}.${it.partial.length}` : it.name;
}

/** The first index of the ascending list xs whose value is at least v (xs.length when none). */
function lowerBound(xs: number[], v: number): number {
  let lo = 0;
  let hi = xs.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (xs[mid] < v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Sequence numbers (1-based) a set names, each once, in mailbox order. */
export function targetsOf(s: SessionState, setText: string | null, uid: boolean): { seq: number; uid: number }[] {
  const sel = s.selected!;
  if (setText === null) throw new No('BAD', 'a sequence set is needed');
  const maxUid = sel.uids[sel.uids.length - 1] ?? 0;
  const ranges = parseSequenceSet(setText, uid ? maxUid : sel.uids.length);
  if (ranges === 'too-many') throw new No('BAD', `sequence set of more than ${IMAP_MAX_SEQUENCE_RANGES} ranges`);
  if (!ranges) throw new No('BAD', `bad sequence set ${setText.length > 64 ? `${setText.slice(0, 64)}...` : setText}`);
  // merged ranges (ascending, disjoint), looked up in the ascending UID list by binary search: a command
  // costs what it names, at most the mailbox, never the ranges times their lengths
  const out: { seq: number; uid: number }[] = [];
  for (const [a, b] of ranges) {
    if (uid) {
      for (let i = lowerBound(sel.uids, a); i < sel.uids.length && sel.uids[i] <= b; i++) out.push({ seq: i + 1, uid: sel.uids[i] });
    } else {
      if (b > sel.uids.length) throw new No('BAD', `no message ${b} (the mailbox has ${sel.uids.length})`);
      for (let s = a; s <= b; s++) out.push({ seq: s, uid: sel.uids[s - 1] });
    }
  }
  return out;
}
/** The FETCH modifiers of RFC 7162: (CHANGEDSINCE modseq [VANISHED]), the last argument after the items. */
function modifiers(s: SessionState, args: Arg[], uid: boolean): { rest: Arg[]; changedSince: number | null; vanished: boolean } {
  const last = args[args.length - 1];
  if (args.length < 3 || !Array.isArray(last) || (argText(last[0]) ?? '').toUpperCase() !== 'CHANGEDSINCE') return { rest: args, changedSince: null, vanished: false };
  const n = argText(last[1]) ?? '';
  if (!/^\d+$/.test(n)) throw new No('BAD', 'CHANGEDSINCE needs a modseq');
  const vanished = (argText(last[2]) ?? '').toUpperCase() === 'VANISHED';
  if (vanished && (!uid || !s.qresync)) throw new No('BAD', 'VANISHED needs UID FETCH and ENABLE QRESYNC');
  s.condstore = true;
  return { rest: args.slice(0, -1), changedSince: Number(n), vanished };
}

export async function fetch(s: SessionState, args: Arg[], uid: boolean): Promise<void> {
  if (args.length < 2) throw new No('BAD', 'FETCH needs a sequence set and items');
  const mod = modifiers(s, args, uid);
  // MODSEQ (RFC 7162) is the front's item like FLAGS: taken out of the arguments before the items are parsed
  const isModseq = (a: Arg): boolean => (argText(a) ?? '').toUpperCase() === 'MODSEQ';
  const given = mod.rest.slice(1).map((a) => (Array.isArray(a) ? a.filter((x) => !isModseq(x)) : a));
  const wantModseq = mod.changedSince !== null || mod.rest.slice(1).some((a) => (Array.isArray(a) ? a.some(isModseq) : isModseq(a)));
  const text = given.filter((a) => !isModseq(a)).map(argSource).join(' ');
  const items: FetchItem[] = text === '' || text === '()' ? [] : parseFetchItems(text);
  if (wantModseq) s.condstore = true;
  if (uid && !items.some((i) => i.kind === 'meta' && i.name === 'UID')) items.unshift({ kind: 'meta', name: 'UID' });
  let targets = targetsOf(s, argText(mod.rest[0]), uid);
  const sel = s.selected!;
  if (mod.changedSince !== null) {
    const since = mod.changedSince;
    if (mod.vanished) {
      const ranges = parseSequenceSet(argText(mod.rest[0]) ?? '', sel.uids[sel.uids.length - 1] ?? 0);
      await resync(s, since, (u) => Array.isArray(ranges) && inRanges(ranges, u), true);
    }
    targets = targets.filter((t) => (sel.modseqs.get(t.uid) ?? 0) > since);
  }
  // a body fetched without PEEK marks the message \Seen (RFC 3501 6.4.5), in a mailbox selected read-write
  if (!sel.readOnly && items.some((i) => i.kind === 'section' && !i.peek)) {
    const unseen = targets.filter((t) => !(sel.flags.get(t.uid) ?? []).includes('\\Seen')).map((t) => t.uid);
    if (unseen.length) {
      const r = await s.store.mail.setFlags(s.user!, unseen, 'add', ['\\Seen'], { mailbox: sel.name });
      for (const st of r.states) {
        sel.flags.set(st.uid, st.flags);
        sel.modseqs.set(st.uid, st.modseq);
      }
      if (r.step && r.step.from === sel.modseq) sel.modseq = r.step.to;
      if (!items.some((i) => i.kind === 'meta' && i.name === 'FLAGS')) items.push({ kind: 'meta', name: 'FLAGS' });
    }
  }
  if (wantModseq) items.push({ kind: 'meta', name: 'MODSEQ' });
  const window = s.opts.fetchWindow ?? DEFAULT_FETCH_WINDOW;
  // messages are read `window` ahead of the one going out: on a remote store, latency overlaps;
  // one whose every item is in the answer cache is written from it at once (no read, no promise)
  const pending: (Promise<Prepared> | undefined)[] = [];
  const cached: (string | null | undefined)[] = [];
  const start = (k: number): void => {
    if (s.gone || k >= targets.length || pending[k] || cached[k] !== undefined) return;
    const line = cachedLine(s, targets[k], items);
    cached[k] = line;
    if (line !== null) return;
    const p = prepare(s, targets[k], items);
    // a read that fails before its turn must not be an unhandled rejection: its turn awaits it and answers NO
    p.catch(() => undefined);
    pending[k] = p;
  };
  for (let k = 0; k < Math.min(window, targets.length); k++) start(k);
  try {
    for (let k = 0; k < targets.length; k++) {
      // a client that went away stops costing anything: no more reads for it
      if (s.gone) throw new Fatal('the connection closed during FETCH');
      start(k + window);
      const line = cached[k];
      if (line) {
        cached[k] = ''; // written: not kept
        await s.io.write(line);
        continue;
      }
      const p = await pending[k];
      pending[k] = Promise.resolve(null); // release what it held
      if (p) {
        try {
          await writeFetch(s, p);
        } catch (e) {
          throw new Fatal((e as Error).message);
        }
      }
    }
  } finally {
    // what was read ahead and not sent (the command failed, the client went away) goes back to the budget
    for (const p of pending) void p?.then((x) => x?.parts.forEach((q) => 'reserved' in q && q.reserved && s.opts.ahead?.give(q.reserved)), () => undefined);
    pending.length = 0;
  }
}
/** The whole response line for a message whose every item is in the answer cache, else null. */
export function cachedLine(s: SessionState, t: { seq: number; uid: number }, items: FetchItem[]): string | null {
  const cache = s.opts.cache;
  if (!cache) return null;
  const id = String(t.uid);
  let line = `* ${t.seq} FETCH (`;
  for (let i = 0; i < items.length; i++) {
    const it = items[i];
    let wire: string | undefined;
    if (it.kind === 'meta' && it.name === 'UID') wire = id;
    else if (it.kind === 'meta' && it.name === 'FLAGS') wire = flagList(s.selected!.flags.get(t.uid) ?? []);
    else if (it.kind === 'meta' && it.name === 'MODSEQ') wire = `(${s.selected!.modseqs.get(t.uid) ?? 1})`;
    else if (cacheable(it)) wire = cache.get(id, cacheKey(it));
    if (wire === undefined) return null;
    line += `${i ? ' ' : ''}${it.name} ${wire}`;
  }
  return `${line})\r\n`;
}
export async function prepare(s: SessionState, t: { seq: number; uid: number }, items: FetchItem[]): Promise<Prepared> {
  const id = String(t.uid);
  let access: MessageAccess | null = null;
  /** The message, opened the first time an item needs it (answers kept in the cache need nothing). */
  const open = (): MessageAccess => (access ??= s.opts.cache ? s.opts.cache.access(s.store, s.user!, id) : s.store.access(id, { user: s.user! }));
  const parts: NonNullable<Prepared>['parts'] = [];
  for (const it of items) {
    if (it.kind === 'meta' && it.name === 'UID') parts.push({ name: 'UID', wire: String(t.uid) });
    else if (it.kind === 'meta' && it.name === 'FLAGS') parts.push({ name: 'FLAGS', wire: flagList(s.selected!.flags.get(t.uid) ?? []) });
    else if (it.kind === 'meta' && it.name === 'MODSEQ') parts.push({ name: 'MODSEQ', wire: `(${s.selected!.modseqs.get(t.uid) ?? 1})` });
    else {
      const isCacheable = cacheable(it);
      const key = cacheKey(it);
      const cached = isCacheable ? s.opts.cache?.get(id, key) : undefined;
      if (cached !== undefined) {
        parts.push({ name: it.name, wire: cached });
        continue;
      }
      let m: MessageAccess;
      try {
        m = open();
      } catch (e) {
        if (isMailcasError(e, 'E_NOT_FOUND')) return null; // expunged by another process since SELECT: left out
        throw e;
      }
      const a = await answerItem(m, it);
      if ('value' in a) {
        const wire = toWire(a.value).toString('latin1');
        if (it.kind === 'meta') s.opts.cache?.set(id, key, wire);
        parts.push({ name: a.name, wire });
      }
      else {
        const literal8 = it.kind === 'section' && it.binary;
        let buffered: Buffer | null = null;
        // read ahead only what fits this session's share and the server's (the rest streams in its turn)
        let reserved = 0;
        if (a.size <= BUFFER_AHEAD_MAX && (!s.opts.ahead || s.opts.ahead.tryTake(a.size))) {
          reserved = s.opts.ahead ? a.size : 0;
          try {
            if (a.buffer) buffered = await a.buffer();
            else {
              const chunks: Buffer[] = [];
              for await (const c of a.bytes()) chunks.push(c);
              buffered = Buffer.concat(chunks);
            }
          } catch (e) {
            s.opts.ahead?.give(reserved);
            throw e;
          }
        }
        if (isCacheable && buffered && a.size <= 16 * 1024) {
          // a header section: kept in wire form like the structure items
          s.opts.ahead?.give(reserved);
          const wire = `{${a.size}}\r\n${buffered.toString('latin1')}`;
          s.opts.cache?.set(id, key, wire);
          parts.push({ name: a.name, wire });
          continue;
        }
        parts.push({ name: a.name, size: a.size, literal8, buffered, reserved, stream: a.bytes });
      }
    }
  }
  return { seq: t.seq, uid: t.uid, parts };
}
export async function writeFetch(s: SessionState, p: NonNullable<Prepared>): Promise<void> {
  let head = `* ${p.seq} FETCH (`;
  for (let i = 0; i < p.parts.length; i++) {
    const x = p.parts[i];
    const sep = i ? ' ' : '';
    if ('wire' in x) {
      head += `${sep}${x.name} ${x.wire}`;
      continue;
    }
    await s.io.write(Buffer.from(`${head}${sep}${x.name} ${x.literal8 ? '~' : ''}{${x.size}}\r\n`, 'latin1'));
    head = '';
    if (x.buffered) {
      const b = x.buffered;
      x.buffered = null;
      await s.io.write(b);
      s.opts.ahead?.give(x.reserved);
      x.reserved = 0;
    } else {
      let n = 0;
      for await (const c of x.stream()) {
        n += c.length;
        await s.io.write(c);
      }
      if (n !== x.size) throw new Error(`message ${p.uid}: ${x.name} gave ${n} bytes, ${x.size} announced`);
    }
  }
  await s.io.write(Buffer.from(`${head})\r\n`, 'latin1'));
}