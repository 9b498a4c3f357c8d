import type { Store } from '../store.js';

export interface MoveReport {
  user: string;
  messages: number;
  /** Copied to the target now. */
  copied: number;
  /** Already there (an earlier, interrupted run copied them). */
  alreadyThere: number;
  /** Removed from the source once all were safe on the target. */
  expunged: number;
  bytes: number;
  /**
   * Blob bytes the target had to write. Between two nodes of one cluster the
   * large parts are already in the shared bucket: the target references the
   * same copies (its markers), so only the small parts each node keeps
   * itself are written again.
   */
  newBlobBytes: number;
}

/**
 * Moves a user's messages and mailboxes from one store to another, crash-safe
 * and resumable: every message is copied (exact bytes, same mailbox, same
 * received time and flags; empty mailboxes too) and committed on the target before anything is removed from
 * the source, and the source keeps all of them until every one is on the
 * target. At every instant each message is readable on one side or on both
 * with the same bytes. Running it again after an interruption copies what is
 * missing (messages already there are recognised by their bytes) and then
 * finishes the removal. Between stores with separate buckets the bytes are
 * copied (deduplicated on the target as any ingest is). Between two nodes of
 * one cluster the large parts stay where they are in the shared bucket: the
 * target finds the same copies and marks them as its own references (no
 * upload), the source's gc later drops its markers; the message is read
 * once to verify it reassembles exactly on the target.
 */
export async function moveUser(from: Store, to: Store, user: string, onMessage?: (done: number, total: number) => void): Promise<MoveReport> {
  const rep: MoveReport = { user, messages: 0, copied: 0, alreadyThere: 0, expunged: 0, bytes: 0, newBlobBytes: 0 };
  // what the target already holds for this user (an earlier run), by mailbox and message hash: each target copy
  // answers for one source message, so a message the user has twice is moved twice
  const there = new Map<string, string[]>();
  for (let after = 0; ; ) {
    const page = to.listPage(user, { after, limit: 1000 });
    for (const m of page) there.set(`${m.mailbox}\0${m.hash}`, [...(there.get(`${m.mailbox}\0${m.hash}`) ?? []), m.id]);
    if (page.length < 1000) break;
    after = Number(page[page.length - 1].id);
  }
  // mailboxes first (empty ones too), with their subscription and special use
  for (const mb of from.mail.list(user)) if (!to.mail.info(user, mb.name)) await to.mail.create(user, mb.name, { subscribe: mb.subscribed, special: mb.special ?? undefined });
  const ids: string[] = [];
  for (let after = 0; ; ) {
    const page = from.listPage(user, { after, limit: 500 });
    for (const m of page) {
      const bytes = await from.fetchBuffer(m.id, { user });
      const copies = there.get(`${m.mailbox}\0${m.hash}`);
      let targetId = copies?.shift();
      if (targetId) {
        rep.alreadyThere++;
        // flags changed since an earlier run copied it: the source's win
        if (to.get(targetId, { user }).flags.join(' ') !== m.flags.join(' ')) await to.mail.setFlags(user, [Number(targetId)], 'set', m.flags);
      } else {
        const [r] = await to.deliver(bytes, [{ user, mailbox: m.mailbox, flags: m.flags }], { received: m.received });
        if (!r.ok) throw r.error;
        targetId = r.result.id;
        rep.newBlobBytes += r.result.newBlobBytes;
        rep.copied++;
      }
      // the target must hold these exact bytes before the source may let go of them
      const back = await to.fetchBuffer(targetId, { user });
      if (!back.equals(bytes)) throw new Error(`message ${m.id}: the copy on the target (${targetId}) does not read back exact; nothing was removed`);
      rep.bytes += bytes.length;
      ids.push(m.id);
      onMessage?.(ids.length, 0);
    }
    if (page.length < 500) break;
    after = Number(page[page.length - 1].id);
  }
  rep.messages = ids.length;
  // every message is on the target: now the source lets go, in batches (each batch one transaction)
  for (let i = 0; i < ids.length; i += 200) rep.expunged += await from.expunge(user, ids.slice(i, i + 200));
  return rep;
}
