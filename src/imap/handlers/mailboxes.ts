import { argText, type Arg } from '../command-parser.js';
import { IMAP_LIST_PATTERN_MAX } from '../../limits.js';
import { matchMailbox } from '../mailbox-pattern.js';
import { DELIMITER, No, mailboxWire, type SessionState } from '../session-state.js';

// Mailboxes: LIST/LSUB, STATUS, SELECT/EXAMINE, and the new mail a command announces

/** New messages are looked up this many at a time when a command announces them (refresh). */
const REFRESH_PAGE = 10_000;

/** The user's mailboxes: those the store holds, INBOX always. */
export function mailboxNames(s: SessionState): string[] {
  const names = s.store.mailboxes(s.user!).map((m) => m.name);
  if (!names.some((n) => n.toUpperCase() === 'INBOX')) names.unshift('INBOX');
  return names;
}
export function resolveName(s: SessionState, name: string | null): string {
  if (name === null) throw new No('BAD', 'a mailbox name is needed');
  if (name.toUpperCase() === 'INBOX') return mailboxNames(s).find((n) => n.toUpperCase() === 'INBOX')!;
  const found = mailboxNames(s).find((n) => n === name);
  if (!found) throw new No('NO', `[NONEXISTENT] no mailbox ${name}`);
  return found;
}
export async function list(s: SessionState, cmd: string, ref: string, pattern: string): Promise<void> {
  if (pattern === '') {
    await s.io.write(`* ${cmd} (\\Noselect) "${DELIMITER}" ""\r\n`);
    return;
  }
  const full = ref + pattern;
  if (full.length > IMAP_LIST_PATTERN_MAX) throw new No('BAD', `mailbox pattern longer than ${IMAP_LIST_PATTERN_MAX} characters`);
  // (INBOX is matched case-insensitively: "inbox" names it)
  const inbox = /^inbox$/i.test(full);
  for (const n of mailboxNames(s)) if (matchMailbox(full, n, DELIMITER) || (n === 'INBOX' && inbox)) await s.io.write(`* ${cmd} () "${DELIMITER}" ${mailboxWire(n)}\r\n`);
}
export async function status(s: SessionState, nameArg: string | null, items: Arg | undefined): Promise<void> {
  const name = resolveName(s, nameArg);
  if (!Array.isArray(items) || !items.length) throw new No('BAD', 'STATUS needs a list of items');
  // counted in the database (a client polls STATUS of every folder: no listing of the mailbox)
  const count = s.store.mailboxes(s.user!).find((m) => m.name === name)?.messages ?? 0;
  const out: string[] = [];
  for (const it of items) {
    const k = (argText(it) ?? '').toUpperCase();
    if (k === 'MESSAGES') out.push(`MESSAGES ${count}`);
    else if (k === 'RECENT') out.push('RECENT 0');
    else if (k === 'UIDNEXT') out.push(`UIDNEXT ${s.store.nextId()}`);
    else if (k === 'UIDVALIDITY') out.push(`UIDVALIDITY ${s.store.uidValidity}`);
    else if (k === 'UNSEEN') out.push(`UNSEEN ${count}`);
    else throw new No('BAD', `unknown STATUS item ${k}`);
  }
  await s.io.write(`* STATUS ${mailboxWire(name)} (${out.join(' ')})\r\n`);
}
export async function select(s: SessionState, nameArg: string | null): Promise<void> {
  s.selected = null;
  s.state = 'authenticated';
  const name = resolveName(s, nameArg);
  const uids = s.store.list(s.user!, name).map((r) => Number(r.id));
  s.selected = { name, uids };
  s.state = 'selected';
  await s.io.write(
    '* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n' +
      '* OK [PERMANENTFLAGS ()] read-only: no flags are kept\r\n' +
      `* ${uids.length} EXISTS\r\n* 0 RECENT\r\n` +
      `* OK [UIDVALIDITY ${s.store.uidValidity}] UIDs valid\r\n` +
      `* OK [UIDNEXT ${s.store.nextId()}] predicted next UID\r\n`,
  );
}
/** New messages since SELECT are announced (ids only grow; expunges by others are not shown until the next SELECT). */
export async function refresh(s: SessionState): Promise<void> {
  const sel = s.selected!;
  // only what came after the last UID known (a NOOP costs what is new, not the mailbox)
  const before = sel.uids.length;
  for (;;) {
    const page = s.store.listPage(s.user!, { mailbox: sel.name, after: sel.uids[sel.uids.length - 1] ?? 0, limit: REFRESH_PAGE });
    for (const r of page) sel.uids.push(Number(r.id));
    if (page.length < REFRESH_PAGE) break;
  }
  if (sel.uids.length > before) await s.io.write(`* ${sel.uids.length} EXISTS\r\n`);
}