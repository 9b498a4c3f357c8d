import { bumpCounter, type Db, type WriteLock } from '../meta/db.js';
import { GENERATION } from '../meta/schema.js';
import { CommitQueue } from '../meta/commit-queue.js';
import type { Messages } from '../meta/messages.js';
import type { Mailboxes } from '../meta/mailboxes.js';
import { SyncState } from '../meta/sync-state.js';
import { keywordsColumn, parseFlags } from '../mailbox/flags.js';
import type { BlobIndex } from '../blob-index/blob-index.js';
import type { BlobRow } from '../blob-index/refcounts.js';
import type { MarkerRecord } from '../blob-index/markers.js';
import type { CommitItem, Committer, LeaseRequest } from './ingest.js';

type MetaOp =
  | { k: 'lease'; req: LeaseRequest }
  | { k: 'renew'; token: string; expires: number }
  | { k: 'commit'; item: CommitItem }
  | { k: 'marker'; m: MarkerRecord }
  | { k: 'unmarker'; m: MarkerRecord };

type CommitDeps = { db: Db; messages: Messages; mailboxTable: Mailboxes; index: BlobIndex; sync(): SyncState };

/**
 * How ingests reach the metadata: leases, renewals, marker records and
 * commits share one group-commit stream (one transaction, one fsync, for
 * all that arrive together). Leases and renewals need to be visible, not
 * durable (see CommitQueue); a commit, and a marker's record (written
 * before the marker), are durable when they resolve.
 */
export function groupCommitter(deps: { db: Db; writeLock: WriteLock; messages: Messages; mailboxTable: Mailboxes; index: BlobIndex }, othersComing: (pending: number) => boolean): Committer {
  let sync: SyncState | null = null;
  const withSync = { ...deps, sync: () => (sync ??= new SyncState(deps.db)) };
  const ops = new CommitQueue<MetaOp, unknown>(deps.db, deps.writeLock, (op) => apply(withSync, op), othersComing, (op) => op.k === 'commit' || op.k === 'marker');
  return {
    commit: (item) => ops.submit({ k: 'commit', item }) as Promise<number[]>,
    lease: (req) => ops.submit({ k: 'lease', req }) as Promise<(BlobRow | undefined)[]>,
    renew: (token, expires) => ops.submit({ k: 'renew', token, expires }) as Promise<number>,
    record: async (m) => void (await ops.submit({ k: 'marker', m })),
    forget: async (m) => void (await ops.submit({ k: 'unmarker', m })),
  };
}

function apply(deps: CommitDeps, op: MetaOp): unknown {
  switch (op.k) {
    case 'lease':
      return deps.index.reserve(op.req.token, op.req.hashes, op.req.expires);
    case 'renew':
      return deps.index.renew(op.token, op.expires);
    case 'marker':
      return deps.index.recordMarker(op.m, Date.now());
    case 'unmarker':
      return deps.index.forgetMarker(op.m);
    case 'commit':
      return applyCommit(deps, op.item);
  }
}

/** One message's commit (inside the group commit's transaction): a row per recipient, then its references. */
function applyCommit(deps: CommitDeps, item: CommitItem): number[] {
  const p = item.prepared;
  const now = Date.now();
  const ids = item.recipients.map((r, k) => {
    // a new message is a change of its mailbox: it takes the mailbox's next modseq (the row is made on first delivery)
    const modseq = deps.mailboxTable.nextModseq(r.user, r.mailbox, now);
    const flags = r.flags ? parseFlags(r.flags) : null;
    const id = deps.messages.insert(
      {
        user: r.user,
        mailbox: r.mailbox,
        size: p.size,
        hash: p.hash,
        received: item.received,
        codec: p.packed.headCodec,
        dict: p.packed.dict,
        layout: p.packed.head,
        inline: p.packed.inline,
        inlineCodec: p.packed.inlineCodec,
        headerBytes: p.headerBytes,
        layoutRaw: p.packed.headRaw,
        inlineRaw: p.packed.inlineRaw,
        newBytes: k === 0 ? item.newBytes : 0,
        fallback: p.fallback ? 1 : 0,
        ...p.envelope,
        tree: p.tree,
        layoutSum: p.packed.sum,
        flags: flags?.bits ?? 0,
        keywords: flags ? keywordsColumn(flags.keywords) : null,
        modseq,
        guid: r.syncPair?.guid ?? null,
      },
      p.parts,
    );
    // a copy made by sync: which of the peer's messages it is, committed with it
    if (r.syncPair) deps.sync().pair(r.syncPair.peer, id, r.syncPair.remote);
    return id;
  });
  // gc revokes a lease (committed) before it deletes the object it protected: while every lease is
  // still here, every object this message needs is too, whatever the clocks say (E_LEASE_LOST otherwise)
  deps.index.publishRefs(item.leaseToken, item.leased, item.refs, now);
  if (p.fallback) bumpCounter(deps.db, 'split_fallbacks', item.recipients.length);
  bumpCounter(deps.db, GENERATION);
  return ids;
}
