import type { Statement } from 'better-sqlite3';
import { hasTable, statementCache, type Db } from './db.js';

/** A mailbox's row: its state beside its messages. */
export interface MailboxRow {
  name: string;
  /** The mailbox's own UIDVALIDITY, or null for the store's. */
  uidvalidity: number | null;
  /** HIGHESTMODSEQ: the modification sequence of its last change. */
  modseq: number;
  subscribed: number;
  special: string | null;
  created: number;
}

/**
 * The owner of the mailboxes and expunged tables: every statement on them is
 * here. Writing methods run inside the caller's write transaction. A store of
 * an older schema opened read-only (not upgraded) has neither table: reads
 * then answer as for mailboxes with no state yet.
 */
export class Mailboxes {
  private readonly q: (sql: string) => Statement;
  private readonly present: boolean;
  constructor(readonly db: Db) {
    this.q = statementCache(db);
    this.present = hasTable(db, 'mailboxes');
  }


  get(user: string, name: string): MailboxRow | undefined {
    if (!this.present) return undefined;
    return this.q('SELECT name, uidvalidity, modseq, subscribed, special, created FROM mailboxes WHERE user = ? AND name = ?').get(user, name) as MailboxRow | undefined;
  }

  all(user: string): MailboxRow[] {
    if (!this.present) return [];
    return this.q('SELECT name, uidvalidity, modseq, subscribed, special, created FROM mailboxes WHERE user = ? ORDER BY name').all(user) as MailboxRow[];
  }

  /** Makes the mailbox's row when it has none; true when it was made. */
  create(user: string, name: string, now: number, subscribed: boolean, special: string | null = null): boolean {
    return this.q('INSERT OR IGNORE INTO mailboxes(user, name, uidvalidity, modseq, subscribed, special, created) VALUES (?, ?, NULL, 1, ?, ?, ?)').run(user, name, subscribed ? 1 : 0, special, now).changes > 0;
  }

  /**
   * The next modification sequence of the mailbox (its row made when it has
   * none: a delivery into a new mailbox, subscribed as delivered mail always
   * was listed): every change of the mailbox takes one.
   */
  nextModseq(user: string, name: string, now: number): number {
    const r = this.q(
      `INSERT INTO mailboxes(user, name, uidvalidity, modseq, subscribed, special, created) VALUES (?, ?, NULL, 2, 1, NULL, ?)
       ON CONFLICT(user, name) DO UPDATE SET modseq = modseq + 1 RETURNING modseq`,
    ).get(user, name, now) as { modseq: number };
    return r.modseq;
  }

  subscribe(user: string, name: string, on: boolean): number {
    return this.q('UPDATE mailboxes SET subscribed = ? WHERE user = ? AND name = ?').run(on ? 1 : 0, user, name).changes;
  }

  /** Renames one mailbox's row and its expunge records (its modseq goes on: a renamed mailbox keeps its history). */
  rename(user: string, from: string, to: string): void {
    this.q('UPDATE mailboxes SET name = ? WHERE user = ? AND name = ?').run(to, user, from);
    this.q('UPDATE expunged SET mailbox = ? WHERE user = ? AND mailbox = ?').run(to, user, from);
  }

  /** Removes the mailbox's row and its expunge records. */
  delete(user: string, name: string): void {
    this.q('DELETE FROM mailboxes WHERE user = ? AND name = ?').run(user, name);
    this.q('DELETE FROM expunged WHERE user = ? AND mailbox = ?').run(user, name);
  }

  recordExpunge(user: string, mailbox: string, uid: number, modseq: number, now: number, guid: string): void {
    this.q('INSERT OR REPLACE INTO expunged(user, mailbox, uid, modseq, at, guid) VALUES (?, ?, ?, ?, ?, ?)').run(user, mailbox, uid, modseq, now, guid);
  }

  /** Whether a message of this identity was expunged from the user's mail (within the records kept). */
  expungedGuid(user: string, guid: string): boolean {
    if (!this.present) return false;
    return !!this.q('SELECT 1 FROM expunged WHERE user = ? AND guid = ? LIMIT 1').get(user, guid);
  }

  /** UIDs expunged from the mailbox at a modseq above `since`, ascending. */
  vanishedSince(user: string, mailbox: string, since: number): number[] {
    if (!this.present) return [];
    return (this.q('SELECT uid FROM expunged WHERE user = ? AND mailbox = ? AND modseq > ? ORDER BY uid').all(user, mailbox, since) as { uid: number }[]).map((r) => r.uid);
  }

  /** The lowest modseq whose expunges are still all recorded (older records were pruned): 0 when none were. */
  prunedThrough(user: string, mailbox: string): number {
    if (!this.present) return 0;
    const r = this.q("SELECT value FROM meta WHERE key = 'expunge_pruned:' || ? || ':' || ?").get(user, mailbox) as { value: number } | undefined;
    return r?.value ?? 0;
  }

  /** Forgets expunge records older than `before` (unix ms); answers how many. */
  pruneExpunged(before: number): number {
    if (!this.present) return 0;
    const rows = this.q('SELECT user, mailbox, MAX(modseq) AS modseq FROM expunged WHERE at < ? GROUP BY user, mailbox').all(before) as { user: string; mailbox: string; modseq: number }[];
    for (const r of rows) {
      this.q("INSERT INTO meta(key, value) VALUES ('expunge_pruned:' || ? || ':' || ?, ?) ON CONFLICT(key) DO UPDATE SET value = max(value, excluded.value)").run(r.user, r.mailbox, r.modseq);
    }
    return this.q('DELETE FROM expunged WHERE at < ?').run(before).changes;
  }
}
