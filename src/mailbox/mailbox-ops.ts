/**
 * Mailbox state: flags, keywords and modification sequences of messages,
 * mailboxes created, renamed and deleted, copy, move and expunge. Every
 * change runs in one write transaction that also takes the mailbox's next
 * modseq (RFC 7162), so a client or a peer store asking "what changed since
 * modseq N" gets every change, and expunges leave a record (uid, modseq).
 * Copy and move write message rows that reference the same blobs (their
 * reference counts move in the same transaction): no blob bytes are written.
 */
import { MailcasError } from '../errors.js';
import { bumpCounter, immediate, relaxedImmediate, type Db, type WriteLock } from '../meta/db.js';
import { GENERATION } from '../meta/schema.js';
import type { Messages, MessageRow, FlagRow } from '../meta/messages.js';
import type { Mailboxes } from '../meta/mailboxes.js';
import type { BlobIndex } from '../blob-index/blob-index.js';
import { DELETED, applyFlags, flagNames, fromColumns, keywordsColumn, parseFlags, sameFlags } from './flags.js';
import { checkMailboxName, checkSpecialUse, isInbox } from './mailbox-name.js';

export interface MailboxInfo {
  name: string;
  messages: number;
  bytes: number;
  unseen: number;
  subscribed: boolean;
  /** RFC 6154 special use (\Sent, \Trash...), or null. */
  special: string | null;
  uidValidity: number;
  uidNext: number;
  highestModseq: number;
}

/** One message's IMAP state: its UID (the message id), flags and the modseq of its last change. */
export interface MessageState {
  uid: number;
  flags: string[];
  modseq: number;
}

export interface MailboxOpsDeps {
  db: Db;
  writeLock: WriteLock;
  messages: Messages;
  mailboxes: Mailboxes;
  index: BlobIndex;
  /** The blob references of a message row (its layout decoded). */
  refsOf(row: MessageRow): Iterable<{ hash: Buffer; count: number }>;
  uidValidity(): number;
  /** This store's id (a message's own identity is STOREID:ID). */
  storeId(): string;
}

function toState(r: FlagRow): MessageState {
  return { uid: r.id, flags: flagNames(fromColumns(r.flags, r.keywords)), modseq: r.modseq };
}

export class MailboxOps {
  constructor(private readonly d: MailboxOpsDeps) {}

  private write<T>(fn: (now: number) => T): Promise<T> {
    return this.d.writeLock.run(() => immediate(this.d.db, () => fn(Date.now())));
  }

  /** A flag change: atomic, synced within a second rather than before it is answered (see relaxedImmediate). */
  private writeFlags<T>(fn: (now: number) => T): Promise<T> {
    return this.d.writeLock.run(() => relaxedImmediate(this.d.db, this.d.writeLock, () => fn(Date.now())));
  }

  /** A modseq for each mailbox an operation changes: one per mailbox per operation (the changes are atomic). */
  private modseqs(user: string, now: number): (mailbox: string) => number {
    const taken = new Map<string, number>();
    return (mailbox) => {
      let m = taken.get(mailbox);
      if (m === undefined) taken.set(mailbox, (m = this.d.mailboxes.nextModseq(user, mailbox, now)));
      return m;
    };
  }

  /** A user's mailboxes: those with a row and those holding mail; INBOX always. */
  list(user: string): MailboxInfo[] {
    const counted = new Map(this.d.messages.mailboxes(user).map((m) => [m.name, m]));
    const rows = new Map(this.d.mailboxes.all(user).map((r) => [r.name, r]));
    const names = new Set([...rows.keys(), ...counted.keys()]);
    if (![...names].some(isInbox)) names.add('INBOX');
    return [...names].sort().map((n) => this.describe(user, n, counted.get(n)));
  }

  /** A user's mailbox names, from the mailbox rows alone (every mailbox that holds mail has one): no counting. INBOX always. */
  names(user: string): string[] {
    const names = new Set(this.d.mailboxes.all(user).map((r) => r.name));
    names.add('INBOX');
    return [...names].sort();
  }

  /** A mailbox's HIGHESTMODSEQ (1 for one with no row yet: INBOX before any delivery), without counting its messages. */
  highestModseq(user: string, name: string): number {
    return this.d.mailboxes.get(user, name)?.modseq ?? 1;
  }

  /** One mailbox (INBOX in any case), or null when the user has no such mailbox. */
  info(user: string, name: string): MailboxInfo | null {
    const n = isInbox(name) ? 'INBOX' : name;
    const counted = this.d.messages.mailboxes(user).find((m) => m.name === n);
    if (!counted && !this.d.mailboxes.get(user, n) && n !== 'INBOX') return null;
    return this.describe(user, n, counted);
  }

  private describe(user: string, name: string, counted?: { messages: number; bytes: number }): MailboxInfo {
    const row = this.d.mailboxes.get(user, name);
    return {
      name,
      messages: counted?.messages ?? 0,
      bytes: counted?.bytes ?? 0,
      unseen: counted ? this.d.messages.unseen(user, name) : 0,
      subscribed: row ? row.subscribed === 1 : name === 'INBOX',
      special: row?.special ?? null,
      uidValidity: row?.uidvalidity ?? this.d.uidValidity(),
      uidNext: this.d.messages.nextId(),
      highestModseq: row?.modseq ?? 1,
    };
  }

  /** The state of every message of a mailbox, in UID order. */
  states(user: string, mailbox: string): MessageState[] {
    return this.d.messages.states(user, mailbox).map(toState);
  }

  /**
   * What changed in a mailbox after modseq `since`: messages stored or whose
   * flags changed, and UIDs expunged. `complete` is false when expunge records
   * that old were pruned (the caller must compare full UID lists instead).
   */
  changes(user: string, mailbox: string, since: number): { highestModseq: number; changed: MessageState[]; vanished: number[]; complete: boolean } {
    const highestModseq = this.d.mailboxes.get(user, mailbox)?.modseq ?? 1;
    if (highestModseq <= since) return { highestModseq, changed: [], vanished: [], complete: true };
    return {
      highestModseq,
      changed: this.d.messages.changedSince(user, mailbox, since).map(toState),
      vanished: this.d.mailboxes.vanishedSince(user, mailbox, since),
      complete: this.d.mailboxes.prunedThrough(user, mailbox) <= since,
    };
  }

  /**
   * Changes the flags of messages (STORE): `add`, `remove` or `set` them. With
   * `unchangedSince` (CONDSTORE), a message changed after that modseq is left
   * alone and named in `modified`. Answers every message's state after the call
   * (`changed`: those whose flags it changed), and ids that are gone or not the user's.
   */
  async setFlags(
    user: string,
    ids: number[],
    op: 'add' | 'remove' | 'set',
    names: string[],
    opts: { mailbox?: string; unchangedSince?: number } = {},
  ): Promise<{ states: MessageState[]; changed: number[]; modified: number[]; missing: number[]; step: { from: number; to: number } | null }> {
    const change = parseFlags(names);
    return this.writeFlags((now) => {
      const next = this.modseqs(user, now);
      const out = { states: [] as MessageState[], changed: [] as number[], modified: [] as number[], missing: [] as number[], step: null as { from: number; to: number } | null };
      for (const id of ids) {
        const cur = this.d.messages.state(id);
        if (!cur || cur.user !== user || (opts.mailbox !== undefined && cur.mailbox !== opts.mailbox)) {
          out.missing.push(id);
          continue;
        }
        if (opts.unchangedSince !== undefined && cur.modseq > opts.unchangedSince) {
          out.modified.push(id);
          continue;
        }
        const before = fromColumns(cur.flags, cur.keywords);
        const after = applyFlags(before, op, change);
        if (sameFlags(before, after)) {
          out.states.push(toState(cur));
          continue;
        }
        const modseq = next(cur.mailbox);
        // the mailbox's HIGHESTMODSEQ went from modseq - 1 to modseq by this call alone (a session that knew the
        // mailbox up to modseq - 1 and applies these states knows it up to modseq: nothing to look up)
        if (opts.mailbox !== undefined) out.step = { from: modseq - 1, to: modseq };
        this.d.messages.setFlags(id, after.bits, keywordsColumn(after.keywords), modseq);
        out.states.push({ uid: id, flags: flagNames(after), modseq });
        out.changed.push(id);
      }
      return out;
    });
  }

  /**
   * Removes messages of a user; their blobs lose a reference each (gc reclaims
   * unreferenced blobs after its grace period) and each leaves an expunge
   * record. Ids already gone are passed over. Answers the ids removed.
   */
  async expunge(user: string, ids: number[], opts: { mailbox?: string; deletedOnly?: boolean } = {}): Promise<number[]> {
    return this.write((now) => {
      const next = this.modseqs(user, now);
      const removed: number[] = [];
      for (const id of ids) {
        const cur = this.d.messages.row(id);
        if (!cur || cur.user !== user || (opts.mailbox !== undefined && cur.mailbox !== opts.mailbox)) continue;
        if (opts.deletedOnly && !((cur.flags ?? 0) & DELETED)) continue;
        this.remove(cur, next(cur.mailbox), now);
        removed.push(id);
      }
      if (removed.length) bumpCounter(this.d.db, GENERATION);
      return removed;
    });
  }

  /** EXPUNGE of a mailbox: every message with \Deleted (of `uids` only, for UID EXPUNGE). */
  async expungeDeleted(user: string, mailbox: string, uids?: number[]): Promise<number[]> {
    const candidates = uids ?? this.d.messages.states(user, mailbox).filter((r) => r.flags & DELETED).map((r) => r.id);
    return candidates.length ? this.expunge(user, candidates, { mailbox, deletedOnly: true }) : [];
  }

  private remove(row: MessageRow, modseq: number, now: number): void {
    const refs = [...this.d.refsOf(row)];
    const guid = row.guid ?? `${this.d.storeId()}:${row.id}`;
    this.d.messages.delete(row.id);
    this.d.index.dropRefs(refs, now);
    this.d.mailboxes.recordExpunge(row.user, row.mailbox, row.id, modseq, now, guid);
  }

  /** A message's identity across stores: the one a sync copy carries, else its own (STOREID:ID). */
  guidOf(id: number): string {
    return this.d.messages.guid(id) ?? `${this.d.storeId()}:${id}`;
  }

  /** Whether a message of this identity was expunged here (a sync does not bring it back: the expunge travels instead). */
  wasExpunged(user: string, guid: string): boolean {
    return this.d.mailboxes.expungedGuid(user, guid);
  }

  /**
   * Copies messages into mailbox `to` (COPY), or moves them (MOVE: the copy and
   * the expunge in one transaction). The copies get new UIDs, above every UID
   * the target has had, keep their flags, and reference the same blobs: a row
   * each, no blob bytes. Answers the pairs (source UID, new UID) in source order.
   */
  async copy(user: string, ids: number[], to: string, opts: { move?: boolean; mailbox?: string } = {}): Promise<{ from: number; to: number }[]> {
    const target = this.existing(user, to);
    return this.write((now) => {
      const next = this.modseqs(user, now);
      const pairs: { from: number; to: number }[] = [];
      for (const id of ids) {
        const row = this.d.messages.row(id);
        if (!row || row.user !== user || (opts.mailbox !== undefined && row.mailbox !== opts.mailbox)) continue;
        const copy = this.d.messages.copy(id, { user, mailbox: target, flags: row.flags ?? 0, keywords: row.keywords ?? null, modseq: next(target) });
        if (copy === null) continue;
        const refs = [...this.d.refsOf(row)];
        this.d.index.copyRefs(refs);
        if (opts.move) this.remove(row, next(row.mailbox), now);
        pairs.push({ from: id, to: copy });
      }
      if (pairs.length) bumpCounter(this.d.db, GENERATION);
      return pairs;
    });
  }

  /** The stored name of a mailbox that exists (INBOX in any case), else E_NOT_FOUND with the IMAP code TRYCREATE. */
  private existing(user: string, name: string): string {
    const found = this.info(user, name);
    if (!found) throw new MailcasError('E_NOT_FOUND', `no mailbox ${name}`, { data: { imap: 'TRYCREATE' } });
    return found.name;
  }

  async create(user: string, name: string, opts: { special?: string; subscribe?: boolean } = {}): Promise<void> {
    const n = checkMailboxName(name);
    const special = opts.special === undefined ? null : checkSpecialUse(opts.special);
    await this.write((now) => {
      if (this.info(user, n)) {
        throw new MailcasError('E_REFUSED', `mailbox ${n} already exists`, { data: { imap: 'ALREADYEXISTS' } });
      }
      this.d.mailboxes.create(user, n, now, !!opts.subscribe, special);
    });
  }

  /**
   * Renames a mailbox and the mailboxes below it (RFC 3501 6.3.5); their
   * messages keep their UIDs. Renaming INBOX moves its messages into a new
   * mailbox and leaves INBOX empty. Answers how many messages moved.
   */
  async rename(user: string, from: string, to: string): Promise<number> {
    const src = this.existing(user, from);
    const dst = checkMailboxName(to);
    if (isInbox(dst)) throw new MailcasError('E_REFUSED', 'INBOX always exists: it cannot be renamed to', { data: { imap: 'ALREADYEXISTS' } });
    return this.write((now) => {
      if (this.info(user, dst)) throw new MailcasError('E_REFUSED', `mailbox ${dst} already exists`, { data: { imap: 'ALREADYEXISTS' } });
      const all = this.list(user).map((m) => m.name);
      const moving = src === 'INBOX' ? ['INBOX'] : all.filter((n) => n === src || n.startsWith(`${src}/`));
      let moved = 0;
      for (const n of moving) {
        const newName = dst + n.slice(src.length);
        if (this.info(user, newName)) throw new MailcasError('E_REFUSED', `mailbox ${newName} already exists`, { data: { imap: 'ALREADYEXISTS' } });
        const row = this.d.mailboxes.get(user, n);
        if (!row) this.d.mailboxes.create(user, n, now, n === 'INBOX');
        moved += this.d.messages.renameMailbox(user, n, newName);
        this.d.mailboxes.rename(user, n, newName);
        this.d.mailboxes.nextModseq(user, newName, now);
      }
      return moved;
    });
  }

  /** Deletes a mailbox and expunges its messages (their blobs lose their references). Answers how many messages went. */
  async delete(user: string, name: string): Promise<number> {
    const n = this.existing(user, name);
    if (n === 'INBOX') throw new MailcasError('E_REFUSED', 'INBOX cannot be deleted', { data: { imap: 'CANNOT' } });
    return this.write((now) => {
      const ids = this.d.messages.ids(user, n);
      for (const id of ids) {
        const row = this.d.messages.row(id);
        if (row) this.remove(row, 0, now);
      }
      this.d.mailboxes.delete(user, n);
      if (ids.length) bumpCounter(this.d.db, GENERATION);
      return ids.length;
    });
  }

  async subscribe(user: string, name: string, on: boolean): Promise<void> {
    const n = isInbox(name) ? 'INBOX' : checkMailboxName(name);
    await this.write((now) => {
      if (!this.d.mailboxes.get(user, n)) {
        if (!this.info(user, n)) throw new MailcasError('E_NOT_FOUND', `no mailbox ${name}`);
        this.d.mailboxes.create(user, n, now, on);
      } else this.d.mailboxes.subscribe(user, n, on);
    });
  }

  /** Forgets expunge records older than `before` (gc). */
  async pruneExpunged(before: number): Promise<number> {
    return this.write(() => this.d.mailboxes.pruneExpunged(before));
  }
}
