import type { Statement } from 'better-sqlite3';
import { hasTable, statementCache, type Db } from './db.js';

/**
 * The owner of the sync tables (sync_map, sync_mailboxes): what this store
 * knows of each peer store it syncs with. Writing methods run inside the
 * caller's write transaction; a store of an older schema opened read-only has
 * neither table (reads then answer as for a peer never synced).
 */
export class SyncState {
  private readonly q: (sql: string) => Statement;
  private readonly present: boolean;
  constructor(readonly db: Db) {
    this.q = statementCache(db);
    this.present = hasTable(db, 'sync_map');
  }


  /** The local modseq up to which a mailbox's changes reached the peer (0: never synced). */
  since(peer: string, user: string, mailbox: string): number {
    if (!this.present) return 0;
    return (this.q('SELECT modseq FROM sync_mailboxes WHERE peer = ? AND user = ? AND mailbox = ?').get(peer, user, mailbox) as { modseq: number } | undefined)?.modseq ?? 0;
  }

  /** Mailboxes of a user synced with the peer before (and so known to it). */
  syncedMailboxes(peer: string, user: string): string[] {
    if (!this.present) return [];
    return (this.q('SELECT mailbox FROM sync_mailboxes WHERE peer = ? AND user = ? ORDER BY mailbox').all(peer, user) as { mailbox: string }[]).map((r) => r.mailbox);
  }

  setSince(peer: string, user: string, mailbox: string, modseq: number): void {
    this.q('INSERT INTO sync_mailboxes(peer, user, mailbox, modseq) VALUES (?, ?, ?, ?) ON CONFLICT(peer, user, mailbox) DO UPDATE SET modseq = excluded.modseq').run(peer, user, mailbox, modseq);
  }

  forgetMailbox(peer: string, user: string, mailbox: string): void {
    this.q('DELETE FROM sync_mailboxes WHERE peer = ? AND user = ? AND mailbox = ?').run(peer, user, mailbox);
  }

  /** The peer's message paired with a local one, or null. */
  remoteOf(peer: string, local: number): number | null {
    if (!this.present) return null;
    return (this.q('SELECT remote FROM sync_map WHERE peer = ? AND local = ?').get(peer, local) as { remote: number } | undefined)?.remote ?? null;
  }

  /** The local message paired with a peer's one, or null. */
  localOf(peer: string, remote: number): number | null {
    if (!this.present) return null;
    return (this.q('SELECT local FROM sync_map WHERE peer = ? AND remote = ?').get(peer, remote) as { local: number } | undefined)?.local ?? null;
  }

  pair(peer: string, local: number, remote: number): void {
    this.q('INSERT OR REPLACE INTO sync_map(peer, local, remote) VALUES (?, ?, ?)').run(peer, local, remote);
  }

  unpair(peer: string, local: number): void {
    this.q('DELETE FROM sync_map WHERE peer = ? AND local = ?').run(peer, local);
  }
}
