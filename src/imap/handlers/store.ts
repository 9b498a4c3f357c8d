import { argText, type Arg } from '../command-parser.js';
import { No, mailboxWire, type SessionState } from '../session-state.js';
import { flagList, sequenceSet } from '../wire-sets.js';
import { targetsOf } from './fetch.js';
import { refresh } from './mailboxes.js';

// Changes to the selected mailbox: STORE (with UNCHANGEDSINCE), EXPUNGE and UID EXPUNGE, COPY and MOVE (UIDPLUS's COPYUID)

function writable(s: SessionState, name: string): void {
  if (s.selected!.readOnly) throw new No('NO', `[READ-ONLY] ${name}: the mailbox was opened with EXAMINE`);
}

/** The flag names of a STORE: a list, or atoms. */
function flagArgs(args: Arg[]): string[] {
  const out: string[] = [];
  for (const a of args) {
    if (Array.isArray(a)) out.push(...flagArgs(a));
    else {
      const t = argText(a);
      if (t !== null) out.push(t);
    }
  }
  return out;
}

/** STORE / UID STORE: FLAGS, +FLAGS, -FLAGS (.SILENT), with (UNCHANGEDSINCE n). Answers the tagged line's code. */
export async function store(s: SessionState, args: Arg[], uid: boolean): Promise<string> {
  writable(s, 'STORE');
  const sel = s.selected!;
  let k = 1;
  let unchangedSince: number | undefined;
  if (Array.isArray(args[1])) {
    const mod = args[1].map((a) => argText(a));
    if ((mod[0] ?? '').toUpperCase() !== 'UNCHANGEDSINCE' || !/^\d+$/.test(mod[1] ?? '')) throw new No('BAD', 'STORE modifier: (UNCHANGEDSINCE modseq)');
    unchangedSince = Number(mod[1]);
    s.condstore = true;
    k = 2;
  }
  const item = /^([+-]?)FLAGS(\.SILENT)?$/i.exec(argText(args[k]) ?? '');
  if (!item) throw new No('BAD', 'STORE needs FLAGS, +FLAGS or -FLAGS (optionally .SILENT)');
  const op = item[1] === '+' ? 'add' : item[1] === '-' ? 'remove' : 'set';
  const silent = !!item[2];
  const targets = targetsOf(s, argText(args[0]), uid);
  const r = await s.store.mail.setFlags(s.user!, targets.map((t) => t.uid), op, flagArgs(args.slice(k + 1)), { mailbox: sel.name, unchangedSince });
  const seqOf = new Map(targets.map((t) => [t.uid, t.seq]));
  const changed = new Set(r.changed);
  for (const st of r.states) {
    sel.flags.set(st.uid, st.flags);
    sel.modseqs.set(st.uid, st.modseq);
    // .SILENT: no FETCH, except (CONDSTORE) the new modseq of what changed (RFC 7162 3.1.3)
    if (silent && !(s.condstore && changed.has(st.uid))) continue;
    const parts = [...(uid || s.qresync ? [`UID ${st.uid}`] : []), ...(silent ? [] : [`FLAGS ${flagList(st.flags)}`]), ...(s.condstore ? [`MODSEQ (${st.modseq})`] : [])];
    await s.io.write(`* ${seqOf.get(st.uid)} FETCH (${parts.join(' ')})\r\n`);
  }
  // nothing but this STORE changed the mailbox since the session last looked: it is up to date
  if (r.step && r.step.from === sel.modseq) sel.modseq = r.step.to;
  await refresh(s, { expunges: uid });
  if (r.modified.length) return `[MODIFIED ${sequenceSet(uid ? r.modified : r.modified.map((u) => seqOf.get(u)!))}]`;
  return '';
}

/** EXPUNGE, UID EXPUNGE (UIDPLUS: only those UIDs), and CLOSE's silent expunge. */
export async function expunge(s: SessionState, args: Arg[], uid: boolean, silent = false): Promise<void> {
  const sel = s.selected!;
  if (silent && sel.readOnly) return;
  writable(s, 'EXPUNGE');
  const only = uid ? targetsOf(s, argText(args[0]), true).map((t) => t.uid) : undefined;
  await s.store.mail.expungeDeleted(s.user!, sel.name, only);
  if (!silent) await refresh(s);
}

/** COPY / MOVE (and their UID forms): tagged or untagged COPYUID (RFC 4315, RFC 6851). Answers the tagged line's code. */
export async function copy(s: SessionState, args: Arg[], uid: boolean, move: boolean): Promise<string> {
  const sel = s.selected!;
  if (move) writable(s, 'MOVE');
  const dest = argText(args[1]);
  if (dest === null) throw new No('BAD', `${move ? 'MOVE' : 'COPY'} needs a sequence set and a mailbox`);
  const targets = targetsOf(s, argText(args[0]), uid);
  const pairs = await s.store.mail.copy(s.user!, targets.map((t) => t.uid), dest, { move, mailbox: sel.name });
  const info = s.store.mail.info(s.user!, dest);
  const code = pairs.length && info ? `[COPYUID ${info.uidValidity} ${sequenceSet(pairs.map((p) => p.from))} ${sequenceSet(pairs.map((p) => p.to))}]` : '';
  if (!move) {
    await refresh(s, { expunges: uid });
    return code;
  }
  if (code) await s.io.write(`* OK ${code} moved to ${mailboxWire(info!.name)}\r\n`);
  await refresh(s);
  return '';
}
