import { argText, type Arg } from '../command-parser.js';
import { IMAP_LIST_PATTERN_MAX } from '../../limits.js';
import { matchMailbox } from '../mailbox-pattern.js';
import { DELIMITER, No, mailboxWire, type Selected, type SessionState } from '../session-state.js';
import { complementSet, flagList, sequenceSet } from '../wire-sets.js';
import type { MailboxInfo } from '../../mailbox/mailbox-ops.js';

// Mailboxes: LIST/LSUB, STATUS, SELECT/EXAMINE (CONDSTORE, QRESYNC), CREATE/DELETE/RENAME/(UN)SUBSCRIBE,
// and what changed in the selected mailbox, announced (refresh)

export const SYSTEM_FLAGS = '\\Answered \\Flagged \\Deleted \\Seen \\Draft';

/** A mailbox of the user by the name a client gave (INBOX in any case), else NO [NONEXISTENT]. */
export function resolveName(s: SessionState, name: string | null): MailboxInfo {
  if (name === null) throw new No('BAD', 'a mailbox name is needed');
  const found = s.store.mail.info(s.user!, name);
  if (!found) throw new No('NO', `[NONEXISTENT] no mailbox ${name}`);
  return found;
}

/** LIST options (RFC 5258 LIST-EXTENDED, RFC 6154 SPECIAL-USE): what is selected, and what each answer carries. */
interface ListOptions {
  subscribedOnly: boolean;
  specialOnly: boolean;
  returnSubscribed: boolean;
  returnSpecial: boolean;
  /** \\HasChildren / \\HasNoChildren: for a plain LIST, or when RETURN (CHILDREN) asks (RFC 5258 4). */
  returnChildren: boolean;
}

const words = (a: Arg | undefined): string[] => (Array.isArray(a) ? a.map((x) => (argText(x) ?? '').toUpperCase()) : []);

/** LIST / LSUB, with LIST-EXTENDED's selection options, several patterns and RETURN options. */
export async function list(s: SessionState, cmd: string, args: Arg[]): Promise<void> {
  let k = 0;
  const selection = cmd === 'LIST' && Array.isArray(args[0]) ? words(args[k++]) : [];
  const ref = argText(args[k++]) ?? '';
  const patternArg = args[k++];
  const patterns = Array.isArray(patternArg) ? patternArg.map((p) => argText(p) ?? '') : [argText(patternArg) ?? ''];
  const returns = (argText(args[k]) ?? '').toUpperCase() === 'RETURN' ? words(args[k + 1]) : [];
  const o: ListOptions = {
    subscribedOnly: cmd === 'LSUB' || selection.includes('SUBSCRIBED'),
    specialOnly: selection.includes('SPECIAL-USE'),
    returnSubscribed: selection.includes('SUBSCRIBED') || returns.includes('SUBSCRIBED'),
    // special-use attributes go out unless the client asked for RETURN options without SPECIAL-USE (RFC 6154 2)
    returnSpecial: cmd === 'LIST' && (!returns.length || returns.includes('SPECIAL-USE') || selection.includes('SPECIAL-USE')),
    returnChildren: cmd === 'LIST' && ((!selection.length && !returns.length && patterns.length === 1) || returns.includes('CHILDREN')),
  };
  if (patterns.length === 1 && patterns[0] === '' && !selection.length) {
    await s.io.write(`* ${cmd} (\\Noselect) "${DELIMITER}" ""\r\n`);
    return;
  }
  for (const p of patterns) if ((ref + p).length > IMAP_LIST_PATTERN_MAX) throw new No('BAD', `mailbox pattern longer than ${IMAP_LIST_PATTERN_MAX} characters`);
  const all = s.store.mail.list(s.user!);
  for (const m of all) {
    if (o.subscribedOnly && !m.subscribed) continue;
    if (o.specialOnly && !m.special) continue;
    // (INBOX is matched case-insensitively: "inbox" names it)
    if (!patterns.some((p) => matchMailbox(ref + p, m.name, DELIMITER) || (m.name === 'INBOX' && /^inbox$/i.test(ref + p)))) continue;
    const attrs = o.returnChildren ? [all.some((c) => c.name.startsWith(`${m.name}${DELIMITER}`)) ? '\\HasChildren' : '\\HasNoChildren'] : [];
    if (o.returnSubscribed && m.subscribed) attrs.push('\\Subscribed');
    if (m.special && o.returnSpecial) attrs.push(m.special);
    await s.io.write(`* ${cmd} (${attrs.join(' ')}) "${DELIMITER}" ${mailboxWire(m.name)}\r\n`);
  }
}

export async function status(s: SessionState, nameArg: string | null, items: Arg | undefined): Promise<void> {
  const m = resolveName(s, nameArg);
  if (!Array.isArray(items) || !items.length) throw new No('BAD', 'STATUS needs a list of items');
  // counted in the database (a client polls STATUS of every folder: no listing of the mailbox)
  const out: string[] = [];
  for (const it of items) {
    const k = (argText(it) ?? '').toUpperCase();
    if (k === 'MESSAGES') out.push(`MESSAGES ${m.messages}`);
    else if (k === 'RECENT') out.push('RECENT 0');
    else if (k === 'UIDNEXT') out.push(`UIDNEXT ${m.uidNext}`);
    else if (k === 'UIDVALIDITY') out.push(`UIDVALIDITY ${m.uidValidity}`);
    else if (k === 'UNSEEN') out.push(`UNSEEN ${m.unseen}`);
    else if (k === 'HIGHESTMODSEQ') out.push(`HIGHESTMODSEQ ${m.highestModseq}`);
    else if (k === 'SIZE') out.push(`SIZE ${m.bytes}`);
    else throw new No('BAD', `unknown STATUS item ${k}`);
  }
  await s.io.write(`* STATUS ${mailboxWire(m.name)} (${out.join(' ')})\r\n`);
}

/** SELECT or EXAMINE, with the CONDSTORE or QRESYNC parameter (RFC 7162). Answers the tagged line's code. */
export async function select(s: SessionState, nameArg: string | null, readOnly: boolean, params: Arg | undefined): Promise<string> {
  // RFC 7162 3.2.11: the mailbox selected before is closed (no more updates for it come after this)
  if (s.selected) await s.io.write('* OK [CLOSED] previous mailbox is now closed\r\n');
  s.selected = null;
  s.state = 'authenticated';
  const m = resolveName(s, nameArg);
  let qresync: { uidValidity: number; modseq: number; known: string | null } | null = null;
  if (Array.isArray(params)) {
    const p = params.map((a) => (Array.isArray(a) ? a : (argText(a) ?? '').toUpperCase()));
    if (p[0] === 'CONDSTORE') s.condstore = true;
    else if (p[0] === 'QRESYNC' && Array.isArray(p[1])) {
      if (!s.qresync) throw new No('BAD', 'QRESYNC needs ENABLE QRESYNC first');
      const q = p[1].map((a) => argText(a as Arg));
      qresync = { uidValidity: Number(q[0]), modseq: Number(q[1]), known: q[2] ?? null };
      if (!Number.isSafeInteger(qresync.uidValidity) || !Number.isSafeInteger(qresync.modseq)) throw new No('BAD', 'QRESYNC needs (uidvalidity modseq [known-uids])');
    } else throw new No('BAD', 'unknown SELECT parameter');
  }
  const states = s.store.mail.states(s.user!, m.name);
  const sel: Selected = { name: m.name, uids: [], flags: new Map(), modseqs: new Map(), modseq: m.highestModseq, readOnly };
  for (const st of states) {
    sel.uids.push(st.uid);
    sel.flags.set(st.uid, st.flags);
    sel.modseqs.set(st.uid, st.modseq);
  }
  s.selected = sel;
  s.state = 'selected';
  const firstUnseen = states.findIndex((st) => !st.flags.includes('\\Seen'));
  await s.io.write(
    `* FLAGS (${SYSTEM_FLAGS})\r\n` +
      (readOnly ? '* OK [PERMANENTFLAGS ()] read-only\r\n' : `* OK [PERMANENTFLAGS (${SYSTEM_FLAGS} \\*)] flags are kept\r\n`) +
      `* ${sel.uids.length} EXISTS\r\n* 0 RECENT\r\n` +
      (firstUnseen >= 0 ? `* OK [UNSEEN ${firstUnseen + 1}] first unseen\r\n` : '') +
      `* OK [UIDVALIDITY ${m.uidValidity}] UIDs valid\r\n` +
      `* OK [UIDNEXT ${m.uidNext}] predicted next UID\r\n` +
      (s.condstore ? `* OK [HIGHESTMODSEQ ${m.highestModseq}] modseq of the last change\r\n` : ''),
  );
  if (qresync && qresync.uidValidity === m.uidValidity) await resync(s, qresync.modseq);
  return readOnly ? '[READ-ONLY]' : '[READ-WRITE]';
}

/** QRESYNC: what vanished and what changed since the client's modseq (VANISHED (EARLIER), FETCH with MODSEQ). */
export async function resync(s: SessionState, since: number, within?: (uid: number) => boolean, vanishedOnly = false): Promise<void> {
  const sel = s.selected!;
  const ch = s.store.mail.changes(s.user!, sel.name, since);
  let vanished = ch.vanished;
  if (!ch.complete) {
    // records that old are gone: every UID up to the highest the mailbox holds that it does not hold (ranges, not a list)
    const set = complementSet(sel.uids, sel.uids[sel.uids.length - 1] ?? 0);
    if (set) await s.io.write(`* VANISHED (EARLIER) ${set}\r\n`);
    vanished = [];
  }
  if (within) vanished = vanished.filter(within);
  if (vanished.length) await s.io.write(`* VANISHED (EARLIER) ${sequenceSet(vanished)}\r\n`);
  if (vanishedOnly) return;
  const index = new Map(sel.uids.map((u, i) => [u, i + 1]));
  for (const c of ch.changed) {
    const seq = index.get(c.uid);
    if (seq === undefined || (within && !within(c.uid))) continue;
    await s.io.write(`* ${seq} FETCH (UID ${c.uid} FLAGS ${flagList(c.flags)} MODSEQ (${c.modseq}))\r\n`);
  }
}

/**
 * Announces what changed in the selected mailbox since the session last
 * looked (other sessions, other processes, its own commands): EXPUNGE (or
 * VANISHED under QRESYNC), EXISTS, and FETCH FLAGS of messages whose flags
 * changed. `expunges: false` while a FETCH, STORE or SEARCH by sequence
 * number runs (RFC 3501 7.4.1): those wait, and the session's modseq stays
 * where it was so they are announced at the next chance.
 */
export async function refresh(s: SessionState, opts: { expunges: boolean } = { expunges: true }): Promise<void> {
  const sel = s.selected!;
  const ch = s.store.mail.changes(s.user!, sel.name, sel.modseq);
  if (ch.highestModseq <= sel.modseq) return;
  let vanished = ch.vanished;
  if (!ch.complete) {
    const now = new Set(s.store.mail.states(s.user!, sel.name).map((x) => x.uid));
    vanished = sel.uids.filter((u) => !now.has(u));
  }
  const present = new Set(sel.uids);
  vanished = vanished.filter((u) => present.has(u));
  if (vanished.length && opts.expunges) {
    const gone = new Set(vanished);
    if (s.qresync) {
      await s.io.write(`* VANISHED ${sequenceSet(vanished)}\r\n`);
      sel.uids = sel.uids.filter((u) => !gone.has(u));
    } else {
      // from the highest sequence number down: each EXPUNGE renumbers only the messages above it
      for (let i = sel.uids.length - 1; i >= 0; i--) if (gone.has(sel.uids[i])) await s.io.write(`* ${i + 1} EXPUNGE\r\n`);
      sel.uids = sel.uids.filter((u) => !gone.has(u));
    }
    for (const u of gone) {
      sel.flags.delete(u);
      sel.modseqs.delete(u);
    }
  }
  const last = sel.uids[sel.uids.length - 1] ?? 0;
  const before = sel.uids.length;
  let index: Map<number, number> | null = null;
  for (const c of ch.changed) {
    if (c.uid > last) {
      sel.uids.push(c.uid);
      sel.flags.set(c.uid, c.flags);
      sel.modseqs.set(c.uid, c.modseq);
      continue;
    }
    const known = sel.flags.get(c.uid);
    if (!known) continue;
    sel.modseqs.set(c.uid, c.modseq);
    if (known.length === c.flags.length && known.every((f, i) => f === c.flags[i])) continue;
    sel.flags.set(c.uid, c.flags);
    index ??= new Map(sel.uids.map((u, i) => [u, i + 1]));
    await s.io.write(`* ${index.get(c.uid)} FETCH (UID ${c.uid} FLAGS ${flagList(c.flags)}${s.condstore ? ` MODSEQ (${c.modseq})` : ''})\r\n`);
  }
  if (sel.uids.length > before) await s.io.write(`* ${sel.uids.length} EXISTS\r\n`);
  if (!vanished.length || opts.expunges) sel.modseq = ch.highestModseq;
}

/** A mailbox name as CREATE and RENAME take it: a trailing delimiter only says a hierarchy is meant (RFC 3501 6.3.3). */
function newName(arg: Arg | undefined): string {
  const n = argText(arg);
  if (n === null) throw new No('BAD', 'a mailbox name is needed');
  return n.endsWith(DELIMITER) && n.length > 1 ? n.slice(0, -1) : n;
}

/** CREATE name [(USE (\\Sent))] (RFC 6154 CREATE-SPECIAL-USE). */
export async function create(s: SessionState, args: Arg[]): Promise<void> {
  const opts = Array.isArray(args[1]) ? args[1] : [];
  let special: string | undefined;
  if (opts.length) {
    if ((argText(opts[0]) ?? '').toUpperCase() !== 'USE' || !Array.isArray(opts[1])) throw new No('BAD', 'CREATE options: (USE (\\Special))');
    const uses = opts[1].map((u) => argText(u) ?? '');
    if (uses.length > 1) throw new No('NO', '[USEATTR] one special use per mailbox');
    if (uses.length) special = uses[0];
  }
  await s.store.mail.create(s.user!, newName(args[0]), { special });
}


export async function remove(s: SessionState, args: Arg[]): Promise<void> {
  const m = resolveName(s, argText(args[0]));
  await s.store.mail.delete(s.user!, m.name);
  if (s.selected?.name === m.name) {
    s.selected = null;
    s.state = 'authenticated';
  }
}

export async function rename(s: SessionState, args: Arg[]): Promise<void> {
  const from = resolveName(s, argText(args[0]));
  await s.store.mail.rename(s.user!, from.name, newName(args[1]));
}

export async function subscribe(s: SessionState, args: Arg[], on: boolean): Promise<void> {
  const n = argText(args[0]);
  if (n === null) throw new No('BAD', 'a mailbox name is needed');
  await s.store.mail.subscribe(s.user!, n, on);
}
