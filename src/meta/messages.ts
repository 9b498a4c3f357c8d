import type { Statement } from 'better-sqlite3';
import type { Db } from './db.js';
import type { LayoutColumns } from '../layout/packed-layout.js';

/** A message as the listing calls give it: from the metadata alone. */
export interface MessageRecord {
  id: string;
  user: string;
  mailbox: string;
  size: number;
  hash: string;
  received: number;
  subject: string | null;
  from: string | null;
  date: string | null;
  messageId: string | null;
}

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
  /** The MIME tree (byte offsets), null for messages stored before trees were kept. */
  tree: Buffer | null;
  /** The layout checksum (layout/layout-sum.ts), null for messages stored before checksums were kept. */
  layout_sum: Buffer | null;
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

const LIST_COLUMNS = 'id, user, mailbox, size, hash, received, subject, from_addr, date, message_id';
const ROW_COLUMNS = `${LIST_COLUMNS}, codec, dict, layout, inline, inline_codec, inline_dict, tree`;

/**
 * The owner of the messages and parts tables: every statement on them is
 * here (the blob tables are the blob index's). Call the writing methods
 * inside a write transaction; the reading ones work on any connection.
 */
export class Messages {
  private readonly stmts = new Map<string, Statement>();
  /** The row's columns; a store of an older schema opened read-only (not upgraded) has no layout_sum. */
  private readonly rowColumns: string;
  constructor(readonly db: Db) {
    const hasSum = db.prepare("SELECT 1 FROM pragma_table_info('messages') WHERE name = 'layout_sum'").get();
    this.rowColumns = hasSum ? `${ROW_COLUMNS}, layout_sum` : `${ROW_COLUMNS}, NULL AS layout_sum`;
  }

  private q(sql: string): Statement {
    let s = this.stmts.get(sql);
    if (!s) {
      s = this.db.prepare(sql);
      this.stmts.set(sql, s);
    }
    return s;
  }

  /** Inserts a message and its parts; answers its id (never reused: AUTOINCREMENT). */
  insert(m: NewMessage, parts: NewPart[]): number {
    const info = this.q(
      `INSERT INTO messages(user, mailbox, size, hash, received, codec, dict, layout, inline, inline_codec, header_bytes, layout_raw, inline_raw, new_bytes,
                            fallback, date, subject, from_addr, to_addr, cc_addr, message_id, in_reply_to, tree, layout_sum)
       VALUES (@user, @mailbox, @size, @hash, @received, @codec, @dict, @layout, @inline, @inlineCodec, @headerBytes, @layoutRaw, @inlineRaw, @newBytes,
               @fallback, @date, @subject, @from, @to, @cc, @messageId, @inReplyTo, @tree, @layoutSum)`,
    ).run(m);
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
        ? this.q(`SELECT ${LIST_COLUMNS} FROM messages WHERE user = ? ORDER BY id`).all(user)
        : this.q(`SELECT ${LIST_COLUMNS} FROM messages WHERE user = ? AND mailbox = ? ORDER BY id`).all(user, mailbox)
    ) as MessageRow[];
  }

  listPage(user: string, mailbox: string | undefined, after: number, limit: number): MessageRow[] {
    return (
      mailbox === undefined
        ? this.q(`SELECT ${LIST_COLUMNS} FROM messages WHERE user = ? AND id > ? ORDER BY id LIMIT ?`).all(user, after, limit)
        : this.q(`SELECT ${LIST_COLUMNS} FROM messages WHERE user = ? AND mailbox = ? AND id > ? ORDER BY id LIMIT ?`).all(user, mailbox, after, limit)
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

export function toRecord(r: MessageRow): MessageRecord {
  return {
    id: String(r.id),
    user: r.user,
    mailbox: r.mailbox,
    size: r.size,
    hash: r.hash.toString('hex'),
    received: r.received,
    subject: r.subject,
    from: r.from_addr,
    date: r.date,
    messageId: r.message_id,
  };
}
