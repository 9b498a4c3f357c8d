import { Readable } from 'node:stream';
import { MailcasError } from '../errors.js';
import type { Messages, MessageRow } from '../meta/messages.js';
import { unpackCheckedLayout, unpackMessageLayout } from '../layout/packed-layout.js';
import type { Layout } from '../layout/layout.js';
import { MessageAccess } from '../reassemble/message-access.js';
import type { RangeBlobReader } from '../reassemble/range.js';
import { WHOLE_CHECK_BYTES } from '../limits.js';

export interface MessageReaderDeps {
  messages: Messages;
  blobs: RangeBlobReader;
  tmpDir: string;
  dictionary(id: number): Buffer | null;
}

/**
 * Reading messages: a row by id (checked against its user), opened as a
 * MessageAccess (its layout decoded and checked), through which every front
 * reads: whole (fetch, export, IMAP BODY[], HTTP) or by section and range.
 */
export class MessageReader {
  constructor(private readonly deps: MessageReaderDeps) {}

  /** The message row, checked against `user` when given (E_NOT_FOUND otherwise, the same for another user's id). */
  row(id: string, user?: string): MessageRow {
    const n = Number(id);
    const r = Number.isSafeInteger(n) && n > 0 ? this.deps.messages.row(n) : undefined;
    if (!r || (user !== undefined && r.user !== user)) throw new MailcasError('E_NOT_FOUND', `message ${id} not found${user !== undefined ? ` for user ${user}` : ''}`);
    return r;
  }

  /**
   * The message's layout, checked against its row's checksum (header blocks,
   * layout, inline bodies and MIME tree: E_CORRUPT naming the message when
   * they differ). `checked` false only where a damaged row must still be
   * handled (an expunge releasing its references).
   */
  layout(r: MessageRow, checked = true): Layout {
    if (!checked) return unpackMessageLayout(r, (id) => this.deps.dictionary(id));
    return unpackCheckedLayout({ ...r, sum: r.layout_sum }, (id) => this.deps.dictionary(id), `message ${r.id}`);
  }

  /**
   * One message as every reader sees it (IMAP, the HTTP service, fetch,
   * export): its size, MIME tree and bytes by range. The one read path:
   * blobs are verified by their hashes as they are read, the layout and tree
   * by their checksum when opened, and a whole read also by the message's hash.
   */
  access(id: string, user?: string): MessageAccess {
    return this.open(this.row(id, user));
  }

  open(r: MessageRow): MessageAccess {
    return new MessageAccess({ id: String(r.id), size: r.size, hash: r.hash, received: r.received }, this.layout(r), r.tree, this.deps.blobs, this.deps.tmpDir);
  }

  /** The exact bytes as a stream; a message up to WHOLE_CHECK_BYTES is checked whole before its first byte goes out. */
  async fetch(id: string, user?: string): Promise<Readable> {
    const m = this.access(id, user); // not found or damaged metadata: reject now, not on first read
    if (m.size <= WHOLE_CHECK_BYTES) return Readable.from([await m.whole()], { objectMode: false });
    return Readable.from(m.wholeStream(), { objectMode: false });
  }

  /** The whole message in memory, checked like fetch. */
  buffer(r: MessageRow, readAhead?: number): Promise<Buffer> {
    return this.open(r).whole(readAhead);
  }
}
