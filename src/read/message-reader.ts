import { Readable } from 'node:stream';
import { MailcasError } from '../errors.js';
import { newHasher } from '../util/hash.js';
import type { Messages, MessageRow } from '../meta/messages.js';
import { unpackMessageLayout } from '../layout/packed-layout.js';
import type { Layout } from '../layout/layout.js';
import { coalesce, reassemble } from '../reassemble/reassemble.js';
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
 * Reading messages: a row by id (checked against its user), its layout
 * decoded, its bytes reassembled from verified blobs and checked against the
 * whole-message hash as they go out (fetch), or opened for FETCH items and
 * ranges (access).
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

  layout(r: MessageRow): Layout {
    return unpackMessageLayout(r, (id) => this.deps.dictionary(id));
  }

  /** One message as FETCH sees it (IMAP, the HTTP service): its size, MIME tree and bytes by range. */
  access(id: string, user?: string): MessageAccess {
    const r = this.row(id, user);
    return new MessageAccess(String(r.id), r.size, r.received, this.layout(r), this.deps.messages.tree(r.id), this.deps.blobs, this.deps.tmpDir);
  }

  /** The exact bytes as a stream; a message up to WHOLE_CHECK_BYTES is checked whole before its first byte goes out. */
  async fetch(id: string, user?: string): Promise<Readable> {
    const r = this.row(id, user); // not found: reject now, not on first read
    if (r.size <= WHOLE_CHECK_BYTES) return Readable.from([await this.buffer(r)], { objectMode: false });
    return Readable.from(this.checkedBytes(r), { objectMode: false });
  }

  /** The whole message in memory, checked like fetch. */
  async buffer(r: MessageRow, readAhead?: number): Promise<Buffer> {
    const parts: Buffer[] = [];
    let n = 0;
    for await (const c of this.checkedBytes(r, readAhead)) {
      parts.push(c);
      n += c.length;
    }
    return parts.length === 1 ? parts[0] : Buffer.concat(parts, n);
  }

  /** The bytes, checked against the whole-message hash as they go out (a mismatch errors the stream: E_INTEGRITY). */
  async *checkedBytes(r: MessageRow, readAhead?: number): AsyncGenerator<Buffer> {
    let layout: Layout;
    try {
      layout = this.layout(r);
    } catch (e) {
      throw new MailcasError('E_CORRUPT', `message ${r.id}: its stored layout cannot be decoded (${(e as Error).message})`, { cause: e });
    }
    const h = newHasher();
    let n = 0;
    for await (const c of coalesce(reassemble(layout, this.deps.blobs, `message ${r.id}`, readAhead))) {
      h.update(c);
      n += c.length;
      yield c;
    }
    if (n !== r.size || !h.digest().equals(r.hash)) {
      throw new MailcasError('E_INTEGRITY', `message ${r.id}: reassembled bytes do not match the stored hash`);
    }
  }
}
