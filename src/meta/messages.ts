import type { Statement } from 'better-sqlite3';
import { hasColumn, statementCache, type Db } from './db.js';
import type { LayoutColumns } from '../layout/packed-layout.js';


/** A message row with what reading it needs (layout columns) and what listing it shows. */
export interface MessageRow extends LayoutColumns {
  id: number;
  user: string;
  mailbox: string;
  size: number;
  hash: Buffer;
  received: number;
  subject: string | null;
  from_addr: string | null;
  date: string | null;
  message_id: string | null;
  /** IMAP flags (listing calls): system bits and keywords. */
  flags?: number;
  keywords?: string | null;
  /** The MIME tree (byte offsets), null for messages stored before trees were kept. */
  tree: Buffer | null;
  /** The layout checksum (layout/layout-sum.ts), null for messages stored before checksums were kept. */
  layout_sum: Buffer | null;
  /** A sync copy's identity (null: the message's own). */
  guid?: string | null;
}

/** One message row to insert (the commit of an ingest, once per recipient). */
export interface NewMessage {
  user: string;
  mailbox: string;
  size: number;
  hash: Buffer;
  received: number;
  codec: number;
  dict: number | null;
  layout: Buffer;
  inline: Buffer | null;
  inlineCodec: number;
  headerBytes: number;
  layoutRaw: number;
  inlineRaw: number;
  newBytes: number;
  fallback: number;
  date: string | null;
  subject: string | null;
  from: string | null;
  to: string | null;
  cc: string | null;
  messageId: string | null;
  inReplyTo: string | null;
  tree: Buffer | null;
  layoutSum: Buffer;
  /** IMAP flags (system bits, keywords column) and the mailbox's modseq at the insert: see meta/mailboxes. */
  flags?: number;
  keywords?: string | null;
  modseq?: number;
  /** A copy made by sync: the identity of the message it copies. */
  guid?: string | null;
}

/** A message's IMAP state: its flags and the modseq of their last change. */
export interface FlagRow {
  id: number;
  flags: number;
  keywords: string | null;
  modseq: number;
}

/** One leaf part's row (report and structure queries; hash null for inline parts). */
export interface NewPart {
  path: string | null;
  contentType: string;
  filename: string | null;
  cte: string;
  recipe: string;
  rawSize: number;
  size: number;
  hash: Buffer | null;
}

const LIST_BASE = 'id, user, mailbox, size, hash, received, subject, from_addr, date, message_id';
/** What a copy takes over from the message it copies (everything but its identity, place, state and ingest accounting). */
const COPIED_COLUMNS =
  'size, hash, received, codec, dict, layout, inline, inline_codec, header_bytes, layout_raw, inline_raw, fallback, date, subject, from_addr, to_addr, cc_addr, message_id, in_reply_to, tree, inline_dict, layout_sum';
const ROW_COLUMNS = `${LIST_BASE}, codec, dict, layout, inline, inline_codec, inline_dict, tree`;

/**
 * The owner of the messages and parts tables: every statement on them is
 * here (the blob tables are the blob index's). Call the writing methods
 * inside a write transaction; the reading ones work on any connection.
 */
export class Messages {
  private readonly q: (sql: string) => Statement;
  /** The row's columns; a store of an older schema opened read-only (not upgraded) has no layout_sum. */
  private readonly rowColumns: string;
  /** The state columns; an older store opened read-only has none (no flags, modseq 1). */
  private readonly stateColumns: string;
  private readonly listColumns: string;
  private readonly hasState: boolean;
  private readonly hasGuid: boolean;
  constructor(readonly db: Db) {
    this.q = statementCache(db);
    const has = (c: string): boolean => hasColumn(db, 'messages', c);
    this.rowColumns = has('layout_sum') ? `${ROW_COLUMNS}, layout_sum` : `${ROW_COLUMNS}, NULL AS layout_sum`;
    this.hasState = has('modseq');
    this.hasGuid = has('guid');
    this.rowColumns += this.hasState ? ', flags, keywords' : ', 0 AS flags, NULL AS keywords';
    this.rowColumns += this.hasGuid ? ', guid' : ', NULL AS guid';
    this.stateColumns = this.hasState ? 'id, flags, keywords, modseq' : 'id, 0 AS flags, NULL AS keywords, 1 AS modseq';
    this.listColumns = this.hasState ? `${LIST_BASE}, flags, keywords` : `${LIST_BASE}, 0 AS flags, NULL AS keywords`;
  }


  /** Inserts a message and its parts; answers its id (never reused: AUTOINCREMENT). */
  insert(m: NewMessage, parts: NewPart[]): number {
    const info = this.q(
      `INSERT INTO messages(user, mailbox, size, hash, received, codec, dict, layout, inline, inline_codec, header_bytes, layout_raw, inline_raw, new_bytes,
                            fallback, date, subject, from_addr, to_addr, cc_addr, message_id, in_reply_to, tree, layout_sum, flags, keywords, modseq, guid)
       VALUES (@user, @mailbox, @size, @hash, @received, @codec, @dict, @layout, @inline, @inlineCodec, @headerBytes, @layoutRaw, @inlineRaw, @newBytes,
               @fallback, @date, @subject, @from, @to, @cc, @messageId, @inReplyTo, @tree, @layoutSum, @flags, @keywords, @modseq, @guid)`,
    ).run({ ...m, flags: m.flags ?? 0, keywords: m.keywords ?? null, modseq: m.modseq ?? 1, guid: m.guid ?? null });
    const id = Number(info.lastInsertRowid);
    const ins = this.q('INSERT INTO parts(message_id, seq, path, content_type, filename, cte, recipe, raw_size, size, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)');
    parts.forEach((p, i) => ins.run(id, i, p.path, p.contentType, p.filename, p.cte, p.recipe, p.rawSize, p.size, p.hash));
    return id;
  }

  /** Deletes a message and its parts (inside the expunge's transaction); false when it was gone already. */
  delete(id: number): boolean {
    const n = this.q('DELETE FROM messages WHERE id = ?').run(id).changes;
    this.q('DELETE FROM parts WHERE message_id = ?').run(id);
    return n > 0;
  }

  /**
   * A new message row holding what message `id` holds (header blocks, layout,
   * inline bodies, tree: the same blob references) in another place: COPY and
   * MOVE write a row, never blob bytes. Answers the new id, or null when `id` is gone.
   */
  copy(id: number, to: { user: string; mailbox: string; flags: number; keywords: string | null; modseq: number }): number | null {
    const info = this.q(
      `INSERT INTO messages(user, mailbox, flags, keywords, modseq, new_bytes, ${COPIED_COLUMNS})
       SELECT @user, @mailbox, @flags, @keywords, @modseq, 0, ${COPIED_COLUMNS} FROM messages WHERE id = @id`,
    ).run({ ...to, id });
    if (!info.changes) return null;
    const copy = Number(info.lastInsertRowid);
    this.q(
      `INSERT INTO parts(message_id, seq, path, content_type, filename, cte, recipe, raw_size, size, hash)
       SELECT ?, seq, path, content_type, filename, cte, recipe, raw_size, size, hash FROM parts WHERE message_id = ?`,
    ).run(copy, id);
    return copy;
  }

  /** The IMAP state of the messages of a mailbox, in id (UID) order. */
  states(user: string, mailbox: string): FlagRow[] {
    return this.q(`SELECT ${this.stateColumns} FROM messages WHERE user = ? AND mailbox = ? ORDER BY id`).all(user, mailbox) as FlagRow[];
  }

  /** Messages of a mailbox changed (flags set, or stored) at a modseq above `since`, in id order. */
  changedSince(user: string, mailbox: string, since: number): FlagRow[] {
    return this.q(`SELECT ${this.stateColumns} FROM messages WHERE user = ? AND mailbox = ? AND modseq > ? ORDER BY id`).all(user, mailbox, since) as FlagRow[];
  }

  /** One message's state with its place (null when it is gone). */
  state(id: number): (FlagRow & { user: string; mailbox: string }) | null {
    return (this.q(`SELECT ${this.stateColumns}, user, mailbox FROM messages WHERE id = ?`).get(id) as (FlagRow & { user: string; mailbox: string }) | undefined) ?? null;
  }

  setFlags(id: number, flags: number, keywords: string | null, modseq: number): void {
    this.q('UPDATE messages SET flags = ?, keywords = ?, modseq = ? WHERE id = ?').run(flags, keywords, modseq, id);
  }

  /** The identity a sync copy carries (null: the message's own). */
  guid(id: number): string | null {
    if (!this.hasGuid) return null;
    return (this.q('SELECT guid FROM messages WHERE id = ?').get(id) as { guid: string | null } | undefined)?.guid ?? null;
  }

  /** Messages of the mailbox without the \Seen flag. */
  unseen(user: string, mailbox: string): number {
    return (this.q(`SELECT count(*) AS n FROM messages WHERE user = ? AND mailbox = ?${this.hasState ? ' AND (flags & 1) = 0' : ''}`).get(user, mailbox) as { n: number }).n;
  }

  /** Moves every message of mailbox `from` into `to` (RENAME; UIDs stay: the mailbox keeps its UIDVALIDITY). */
  renameMailbox(user: string, from: string, to: string): number {
    return this.q('UPDATE messages SET mailbox = ? WHERE user = ? AND mailbox = ?').run(to, user, from).changes;
  }

  /** Ids of a mailbox's messages (DELETE of the mailbox expunges them). */
  ids(user: string, mailbox: string): number[] {
    return (this.q('SELECT id FROM messages WHERE user = ? AND mailbox = ? ORDER BY id').all(user, mailbox) as { id: number }[]).map((r) => r.id);
  }

  row(id: number): MessageRow | undefined {
    return this.q(`SELECT ${this.rowColumns} FROM messages WHERE id = ?`).get(id) as MessageRow | undefined;
  }

  /** The MIME tree column (byte offsets: BODYSTRUCTURE and sections without blob reads). */
  tree(id: number): Buffer | null {
    return (this.q('SELECT tree FROM messages WHERE id = ?').get(id) as { tree: Buffer | null } | undefined)?.tree ?? null;
  }

  /** A message of the user's mailbox with exactly these bytes (hash and size), if any. */
  existing(user: string, mailbox: string, hash: Buffer, size: number): number | null {
    return (this.q('SELECT id FROM messages WHERE hash = ? AND size = ? AND user = ? AND mailbox = ? LIMIT 1').get(hash, size, user, mailbox) as { id: number } | undefined)?.id ?? null;
  }

  /** How many messages of the user's mailbox with these bytes were stored before message id `before`. */
  copiesBefore(user: string, mailbox: string, hash: Buffer, size: number, before: number): number {
    return (this.q('SELECT count(*) AS n FROM messages WHERE hash = ? AND size = ? AND user = ? AND mailbox = ? AND id < ?').get(hash, size, user, mailbox, before) as { n: number }).n;
  }

  list(user: string, mailbox?: string): MessageRow[] {
    return (
      mailbox === undefined
        ? this.q(`SELECT ${this.listColumns} FROM messages WHERE user = ? ORDER BY id`).all(user)
        : this.q(`SELECT ${this.listColumns} FROM messages WHERE user = ? AND mailbox = ? ORDER BY id`).all(user, mailbox)
    ) as MessageRow[];
  }

  listPage(user: string, mailbox: string | undefined, after: number, limit: number): MessageRow[] {
    return (
      mailbox === undefined
        ? this.q(`SELECT ${this.listColumns} FROM messages WHERE user = ? AND id > ? ORDER BY id LIMIT ?`).all(user, after, limit)
        : this.q(`SELECT ${this.listColumns} FROM messages WHERE user = ? AND mailbox = ? AND id > ? ORDER BY id LIMIT ?`).all(user, mailbox, after, limit)
    ) as MessageRow[];
  }

  /** The lowest id a message stored from now on can get. */
  nextId(): number {
    const r = this.q("SELECT seq FROM sqlite_sequence WHERE name = 'messages'").get() as { seq: number } | undefined;
    return (r?.seq ?? 0) + 1;
  }

  users(): { user: string; messages: number; bytes: number }[] {
    return this.q('SELECT user, COUNT(*) AS messages, SUM(size) AS bytes FROM messages GROUP BY user ORDER BY user').all() as { user: string; messages: number; bytes: number }[];
  }

  mailboxes(user: string): { name: string; messages: number; bytes: number; lastId: number }[] {
    return this.q('SELECT mailbox AS name, COUNT(*) AS messages, SUM(size) AS bytes, MAX(id) AS lastId FROM messages WHERE user = ? GROUP BY mailbox ORDER BY mailbox').all(user) as {
      name: string;
      messages: number;
      bytes: number;
      lastId: number;
    }[];
  }

  // ---- for check: every layout, and the parts table as a second record of the references

  /** Every message's layout columns, with its tree and layout checksum, in id order. */
  layouts(): IterableIterator<LayoutColumns & { id: number; tree: Buffer | null; layout_sum: Buffer | null }> {
    const sum = this.rowColumns.endsWith('NULL AS layout_sum') ? 'NULL AS layout_sum' : 'layout_sum';
    return this.q(`SELECT id, codec, dict, layout, inline, inline_codec, inline_dict, tree, ${sum} FROM messages`).iterate() as IterableIterator<
      LayoutColumns & { id: number; tree: Buffer | null; layout_sum: Buffer | null }
    >;
  }

  /** The blobs a message references, from its parts rows (when its layout cannot be decoded). */
  partRefs(id: number): Buffer[] {
    return (this.q('SELECT hash FROM parts WHERE message_id = ? AND hash IS NOT NULL').all(id) as { hash: Buffer }[]).map((p) => p.hash);
  }

  /** Messages that reference a blob. */
  referencing(hash: Buffer): number[] {
    return (this.q('SELECT DISTINCT message_id AS id FROM parts WHERE hash = ?').all(hash) as { id: number }[]).map((r) => r.id);
  }

  /** A blob's canonical size as a part that references it recorded it. */
  partSize(hash: Buffer): number | null {
    return (this.q('SELECT size FROM parts WHERE hash = ? LIMIT 1').get(hash) as { size: number } | undefined)?.size ?? null;
  }
}
