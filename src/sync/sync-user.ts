/**
 * Two-way sync of one user's mailboxes between two stores (docs/SYNC.md):
 * each store keeps, per peer, which of its messages is which of the peer's
 * (sync_map) and the modseq up to which each mailbox's changes reached the
 * peer, so a sync costs what changed since the last one. Messages travel as
 * streams through the receiving store's verified ingest (its parts dedup
 * against what it holds); flags, expunges and mailboxes follow the rules of
 * docs/SYNC.md. Every step is a committed change on one side; a sync killed
 * anywhere leaves both stores consistent and the next one finishes it (a
 * message delivered but not yet paired is recognised by its bytes).
 */
import { immediate } from '../meta/db.js';
import { crashPoint } from '../util/crash-points.js';
import { SyncState } from '../meta/sync-state.js';
import type { Store } from '../store.js';
import type { MessageState } from '../mailbox/mailbox-ops.js';
import { isMailcasError } from '../errors.js';
import { flagNames, parseFlags } from '../mailbox/flags.js';

export interface SyncCounts {
  mailboxesCreated: number;
  mailboxesDeleted: number;
  /** Mailboxes deleted on the other side while they received mail here: kept, and made again there. */
  mailboxesRecovered: number;
  messages: number;
  /** Messages found on both sides already (the same bytes added on each, or a sync cut short): paired, not copied. */
  paired: number;
  flags: number;
  expunges: number;
  /** Message bytes sent (each is split and deduplicated by the receiving store). */
  bytes: number;
  /** Blob bytes the receiving store had to write for them (content it lacked). */
  blobBytes: number;
}

export interface SyncReport {
  user: string;
  /** Changes made to the peer (sent) and to this store (received). */
  sent: SyncCounts;
  received: SyncCounts;
  /** Messages whose flags changed on both sides since the last sync (merged: the union of both). */
  conflicts: number;
}

const counts = (): SyncCounts => ({ mailboxesCreated: 0, mailboxesDeleted: 0, mailboxesRecovered: 0, messages: 0, paired: 0, flags: 0, expunges: 0, bytes: 0, blobBytes: 0 });

/** One side of a sync: a store, what it knows of the other, and what was done to it. */
interface Side {
  store: Store;
  state: SyncState;
  /** The other store's id. */
  peer: string;
  /** Changes made to this side. */
  got: SyncCounts;
  /** Called after every committed change (a sync cut short stops here). */
  tick(): void;
}

/** Thrown when a sync stops after the number of changes it was allowed (opts.stopAfter): a sync cut short, as by a crash. */
export class SyncCut extends Error {}

/**
 * The partner of a message of `s` on `o`: from either side's record (a sync
 * cut short between writing the two records leaves one).
 */
function partnerOf(s: Side, o: Side, uid: number): number | null {
  return s.state.remoteOf(s.peer, uid) ?? o.state.localOf(o.peer, uid);
}

/** A change of a side's sync records, in a write transaction of its own. */
async function write(s: Side, fn: () => void): Promise<void> {
  await s.store.writeLock.run(() => immediate(s.store.db, fn));
  s.tick();
}

const same = (a: string[], b: string[]): boolean => a.length === b.length && a.every((f, i) => f === b[i]);

/**
 * `stopAfter`: stop (throw SyncCut) after that many committed changes, on
 * either side: what a crash at that point leaves, for the convergence harness.
 */
export async function syncUser(local: Store, remote: Store, user: string, opts: { oneWay?: boolean; stopAfter?: number } = {}): Promise<SyncReport> {
  let left = opts.stopAfter ?? Infinity;
  const tick = (): void => {
    if (--left < 0) throw new SyncCut('sync cut short');
  };
  const a: Side = { store: local, state: new SyncState(local.db), peer: remote.storeId, got: counts(), tick };
  const b: Side = { store: remote, state: new SyncState(remote.db), peer: local.storeId, got: counts(), tick };
  const rep: SyncReport = { user, sent: b.got, received: a.got, conflicts: 0 };
  for (const name of await syncMailboxes(a, b, user, !!opts.oneWay)) {
    const sinceA = since(a, user, name);
    const sinceB = since(b, user, name);
    const chA = a.store.mail.changes(user, name, sinceA);
    const chB = b.store.mail.changes(user, name, sinceB);
    // expunges first (an expunge wins over a flag change on the other side)
    await applyExpunges(a, b, user, name, sinceA, chA.vanished, chA.complete);
    if (!opts.oneWay) await applyExpunges(b, a, user, name, sinceB, chB.vanished, chB.complete);
    const changedB = new Map(chB.changed.map((c) => [c.uid, c]));
    await sendNew(a, b, user, name, chA.changed, chB.changed);
    if (!opts.oneWay) await sendNew(b, a, user, name, chB.changed, chA.changed);
    rep.conflicts += await mergeFlags(a, b, user, name, chA.changed, changedB, !!opts.oneWay);
    // what each side had changed when this sync read it has reached the other
    await write(a, () => a.state.setSince(a.peer, user, name, chA.highestModseq));
    if (!opts.oneWay) await write(b, () => b.state.setSince(b.peer, user, name, chB.highestModseq));
  }
  return rep;
}

/**
 * The modseq a mailbox was synced up to; 0 when the mailbox now has a lower
 * HIGHESTMODSEQ than that (deleted and made again since: a modseq never goes
 * back in one mailbox's life), so all of it is compared again.
 */
function since(s: Side, user: string, mailbox: string): number {
  const v = s.state.since(s.peer, user, mailbox);
  return v > s.store.mail.highestModseq(user, mailbox) ? 0 : v;
}

/**
 * Mailboxes: made on the side that lacks them; one synced before and gone
 * from one side now was deleted there: deleted on the other too, unless it
 * changed there since (then it is kept, and made again where it was deleted:
 * mail is never lost to a delete). Answers the mailboxes both sides hold.
 */
async function syncMailboxes(a: Side, b: Side, user: string, oneWay: boolean): Promise<string[]> {
  const namesA = new Set(a.store.mail.names(user));
  const namesB = new Set(b.store.mail.names(user));
  const step = async (from: Side, to: Side, have: Set<string>, lack: Set<string>, mayChangeFrom: boolean): Promise<void> => {
    const known = new Set(from.state.syncedMailboxes(from.peer, user));
    for (const n of have) {
      if (lack.has(n)) continue;
      if (!known.has(n)) {
        await to.store.mail.create(user, n, { subscribe: from.store.mail.info(user, n)?.subscribed });
        to.got.mailboxesCreated++;
        to.tick();
        lack.add(n);
        continue;
      }
      // synced before, gone on the other side: deleted there
      const changedHere = from.store.mail.highestModseq(user, n) > from.state.since(from.peer, user, n);
      if (changedHere || !mayChangeFrom) {
        await to.store.mail.create(user, n);
        to.got.mailboxesRecovered++;
        to.tick();
        lack.add(n);
        // its messages on this side lost their partners (on both sides' records): they go across again
        const partners: number[] = [];
        await write(from, () => {
          for (const st of from.store.mail.states(user, n)) {
            const p = from.state.remoteOf(from.peer, st.uid);
            if (p !== null) partners.push(p);
            from.state.unpair(from.peer, st.uid);
          }
          from.state.forgetMailbox(from.peer, user, n);
        });
        await write(to, () => {
          for (const p of partners) to.state.unpair(to.peer, p);
          to.state.forgetMailbox(to.peer, user, n);
        });
      } else {
        await from.store.mail.delete(user, n);
        from.got.mailboxesDeleted++;
        from.tick();
        await write(from, () => from.state.forgetMailbox(from.peer, user, n));
        have.delete(n);
      }
    }
  };
  await step(a, b, namesA, namesB, !oneWay);
  if (!oneWay) await step(b, a, namesB, namesA, true);
  return [...namesA].filter((n) => namesB.has(n)).sort();
}

/** UIDs expunged on `from` since the last sync: their partners on `to` are expunged (and unpaired). */
async function applyExpunges(from: Side, to: Side, user: string, mailbox: string, since: number, vanished: number[], complete: boolean): Promise<void> {
  let gone = vanished;
  if (!complete || since === 0) {
    // expunge records that old were pruned: the pairs whose local message is gone
    const here = new Set(from.store.mail.states(user, mailbox).map((s) => s.uid));
    gone = to.store.mail
      .states(user, mailbox)
      .map((s) => from.state.localOf(from.peer, s.uid) ?? to.state.remoteOf(to.peer, s.uid))
      .filter((l): l is number => l !== null && !here.has(l));
  }
  for (const uid of gone) {
    const partner = partnerOf(from, to, uid);
    if (partner === null) continue;
    const removed = await to.store.mail.expunge(user, [partner], { mailbox });
    to.got.expunges += removed.length;
    to.tick();
    crashPoint('sync-expunged');
    await write(from, () => from.state.unpair(from.peer, uid));
    await write(to, () => to.state.unpair(to.peer, partner));
  }
}

/**
 * Messages new on `from` (no partner): expunged when `to` expunged a message
 * of the same identity (a copy that reached it through a third store); paired
 * with an unpaired message new on `to` of the same identity, or of the same
 * bytes (added on both sides); else sent: streamed through `to`'s ingest with
 * their flags, received time and identity.
 */
async function sendNew(from: Side, to: Side, user: string, mailbox: string, changed: MessageState[], otherChanged: MessageState[]): Promise<void> {
  // the other side's new messages not paired yet, by identity and by bytes
  const unpairedThere = new Map<string, number[]>();
  const byGuidThere = new Map<string, number>();
  for (const c of otherChanged) {
    if (partnerOf(to, from, c.uid) !== null) continue;
    const rec = safeGet(to.store, c.uid, user);
    if (!rec || rec.mailbox !== mailbox) continue;
    unpairedThere.set(rec.hash, [...(unpairedThere.get(rec.hash) ?? []), c.uid]);
    byGuidThere.set(to.store.mail.guidOf(c.uid), c.uid);
  }
  for (const c of changed) {
    const known = partnerOf(from, to, c.uid);
    if (known !== null) {
      // paired on one side's record only (a sync cut short): the other record is written now
      if (from.state.remoteOf(from.peer, c.uid) === null) await write(from, () => from.state.pair(from.peer, c.uid, known));
      if (to.state.localOf(to.peer, c.uid) === null) await write(to, () => to.state.pair(to.peer, known, c.uid));
      continue;
    }
    const rec = safeGet(from.store, c.uid, user);
    if (!rec || rec.mailbox !== mailbox) continue;
    const guid = from.store.mail.guidOf(c.uid);
    if (to.store.mail.wasExpunged(user, guid)) {
      // the other side expunged this message (a copy that reached it through a third store, say): the expunge travels
      from.got.expunges += (await from.store.mail.expunge(user, [c.uid], { mailbox })).length;
      from.tick();
      continue;
    }
    // the same message there already: the same identity (a copy through a third store), or the same bytes
    let partner = byGuidThere.get(guid) ?? null;
    if (partner !== null) {
      const p = partner;
      for (const [h, list] of unpairedThere) unpairedThere.set(h, list.filter((x) => x !== p));
    } else partner = unpairedThere.get(rec.hash)?.shift() ?? null;
    if (partner !== null) to.got.paired++;
    else {
      // the copy and its pair record (on the receiving side) commit together: a sync cut short after it is
      // found paired by the next one, whatever happens to either message meanwhile
      const [r] = await to.store.deliver(await from.store.fetch(String(c.uid), { user }), [{ user, mailbox, flags: rec.flags, syncPair: { peer: to.peer, remote: c.uid, guid } }], { received: rec.received });
      if (!r.ok) throw r.error;
      partner = Number(r.result.id);
      to.got.messages++;
      to.got.bytes += rec.size;
      to.got.blobBytes += r.result.newBlobBytes;
      to.tick();
      crashPoint('sync-sent');
    }
    const p = partner;
    await write(from, () => from.state.pair(from.peer, c.uid, p));
    if (to.state.remoteOf(to.peer, p) === null) await write(to, () => to.state.pair(to.peer, p, c.uid));
  }
}

function safeGet(s: Store, id: number, user: string): ReturnType<Store['get']> | null {
  try {
    return s.get(String(id), { user });
  } catch (e) {
    if (isMailcasError(e, 'E_NOT_FOUND')) return null; // expunged meanwhile
    throw e;
  }
}

/**
 * Flags of paired messages changed on one side go to the other; changed on
 * both since the last sync, both get the union (no flag either side set is
 * lost). Answers how many were changed on both.
 */
async function mergeFlags(a: Side, b: Side, user: string, mailbox: string, changedA: MessageState[], changedB: Map<number, MessageState>, oneWay: boolean): Promise<number> {
  let conflicts = 0;
  const seenB = new Set<number>();
  const set = async (s: Side, uid: number, flags: string[]): Promise<void> => {
    const cur = safeGet(s.store, uid, user);
    if (!cur || same(cur.flags, flags)) return;
    await s.store.mail.setFlags(user, [uid], 'set', flags, { mailbox });
    s.got.flags++;
    s.tick();
  };
  for (const c of changedA) {
    const partner = partnerOf(a, b, c.uid);
    if (partner === null) continue;
    const there = changedB.get(partner);
    seenB.add(partner);
    if (there && !oneWay && !same(there.flags, c.flags)) {
      conflicts++;
      const union = flagNames(parseFlags([...c.flags, ...there.flags]));
      await set(a, c.uid, union);
      crashPoint('sync-flags');
      await set(b, partner, union);
    } else await set(b, partner, c.flags);
  }
  if (!oneWay) {
    for (const [uid, c] of changedB) {
      if (seenB.has(uid)) continue;
      const partner = partnerOf(b, a, uid);
      if (partner !== null) await set(a, partner, c.flags);
    }
  }
  return conflicts;
}
