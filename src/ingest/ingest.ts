import { parseFlags } from '../mailbox/flags.js';
import { MailcasError } from '../errors.js';
import { Spool, type MessageInput } from '../split/spool.js';
import type { BlobNeed } from './build-message.js';
import type { PrepareOptions, Prepared } from './prepare.js';
import { Leases } from '../blob-index/leases.js';
import type { BlobRefInfo, BlobRow } from '../blob-index/refcounts.js';
import { ALL_BLOB_CODECS } from '../cas/blob-store.js';
import { forEachLimit } from '../util/pool.js';
import { PUT_CONCURRENCY, SHARED_BLOB_MIN_BYTES } from '../limits.js';
import { acquireShared, type MarkerRecords } from './shared-instance.js';
import type { IngestDeps } from './ingest-deps.js';

export type { IngestDeps } from './ingest-deps.js';


export interface IngestOptions {
  user: string;
  mailbox?: string;
  /** Received time (unix ms); default now. */
  received?: number;
  /**
   * true: when the user already has a message with these exact bytes in this mailbox, store nothing and answer
   * its id (skipped: true). A ResumeState (an import run again after an interruption): skip as many copies as
   * the mailbox held before the run started, store the rest, so the end is exactly what one run stores.
   */
  skipExisting?: boolean | ResumeState;
}

/**
 * One import run resumed over what an earlier, interrupted run stored: this
 * run's n-th copy of some bytes in a mailbox is skipped only while the
 * mailbox held more than n copies of them before the run began (messages
 * with ids below `before`). Byte-identical source files are then each
 * stored once, as an uninterrupted run stores them, whatever the order
 * the copies arrive in (the counts, not the order, decide).
 */
export class ResumeState {
  private readonly seen = new Map<string, number>();
  constructor(readonly before: number) {}

  /** This copy's index among the run's copies of these bytes in this mailbox (0 for the first). */
  occurrence(user: string, mailbox: string, hash: Buffer): number {
    const k = `${user}\0${mailbox}\0${hash.toString('hex')}`;
    const n = this.seen.get(k) ?? 0;
    this.seen.set(k, n + 1);
    return n;
  }
}

/** One recipient of a delivery: whose mailbox the message goes into. */
export interface Recipient {
  user: string;
  mailbox?: string;
  /** IMAP flags the message is stored with (APPEND): \\Seen, keywords... */
  flags?: string[];
  /** Sync: the peer store's message this one is a copy of (and that message's identity), recorded in the same transaction as the message. */
  syncPair?: { peer: string; remote: number; guid: string };
}

export interface IngestResult {
  id: string;
  size: number;
  /** BLAKE3 of the message bytes, hex. */
  hash: string;
  /** Blobs referenced / newly written by this message. */
  blobs: number;
  newBlobs: number;
  newBlobBytes: number;
  /** True when the split did not reassemble exactly and the message was stored whole. */
  fallback: boolean;
  /** True when nothing was stored because the mailbox already holds these bytes (skipExisting). */
  skipped?: boolean;
}

/** Per recipient of a delivery: its result or why it failed (the same order as the recipients). */
export type RecipientResult = { ok: true; result: IngestResult } | { ok: false; error: MailcasError | Error };

/** What the commit transaction needs: one message, stored for one or more recipients. */
export interface CommitItem {
  recipients: { user: string; mailbox: string; flags?: string[]; syncPair?: { peer: string; remote: number; guid: string } }[];
  received: number;
  prepared: Prepared;
  refs: BlobRefInfo[];
  leaseToken: string;
  /** Distinct blobs leased under leaseToken: the commit checks that many leases still exist. */
  leased: number;
  /** Backend bytes this ingest created (blobs that were new), accounted to the first recipient's row. */
  newBytes: number;
}

/** Leases to take (in a durable transaction) before writing blobs; answers the existing rows. */
export interface LeaseRequest {
  token: string;
  hashes: Buffer[];
  expires: number;
}

/** How an ingest reaches the metadata store: all are group-committed by the store. */
export interface Committer extends MarkerRecords {
  lease(req: LeaseRequest): Promise<(BlobRow | undefined)[]>;
  /** Extends the leases of `token`; resolves to how many still exist. */
  renew(token: string, expires: number): Promise<number>;
  /** Fails (E_LEASE_LOST, transient) unless every lease of the item's token still exists. Resolves to one id per recipient. */
  commit(item: CommitItem): Promise<number[]>;
}

/** Splits and verifies a spooled message: here, or in a worker thread for large ones (the store decides). */
export interface Preparer {
  prepare(spool: Spool, opts: PrepareOptions): Promise<Prepared>;
  /** Messages at least this large go to another thread: their memory spool is built in shared memory (handed over without a copy). */
  readonly sharedAbove: number;
}

/**
 * Stores one message for one or more recipients: spool it once (hashing on
 * the way in); per dedup domain among the recipients, split, canonicalise
 * and verify it once, lease and write its blobs once (durable), then commit
 * one message row per recipient with the reference counts, in one
 * transaction. Resolves per recipient.
 */
export async function ingestMessage(
  ctx: IngestDeps,
  committer: Committer,
  prepare: Preparer,
  input: MessageInput,
  recipients: Recipient[],
  opts: { received?: number; skipExisting?: boolean | ResumeState } = {},
): Promise<RecipientResult[]> {
  if (!recipients.length) throw new MailcasError('E_USAGE', 'at least one recipient is required');
  for (const r of recipients) if (!r.user) throw new MailcasError('E_USAGE', 'a user is required');
  // flags are checked here, never in the group commit (one bad flag must not fail the others' transaction)
  for (const r of recipients) if (r.flags) parseFlags(r.flags);
  const spool = await Spool.from(input, { tmpDir: ctx.tmpDir, maxBytes: ctx.config.maxMessageBytes, sharedAbove: prepare.sharedAbove });
  try {
    if (spool.size === 0) throw new MailcasError('E_REFUSED', 'empty message (0 bytes): refused');
    const results: (RecipientResult | null)[] = recipients.map(() => null);
    const groups = new Map<string, number[]>();
    recipients.forEach((r, i) => {
      const mailbox = r.mailbox ?? 'INBOX';
      if (opts.skipExisting) {
        const have = alreadyThere(ctx, opts.skipExisting, r.user, mailbox, spool.hash, spool.size);
        if (have !== null) {
          const result = { id: String(have), size: spool.size, hash: spool.hash.toString('hex'), blobs: 0, newBlobs: 0, newBlobBytes: 0, fallback: false, skipped: true };
          results[i] = { ok: true, result };
          return;
        }
      }
      const domain = ctx.domainOf(r.user);
      groups.set(domain, [...(groups.get(domain) ?? []), i]);
    });
    for (const [domain, idx] of groups) {
      try {
        const rs = await storeFor(ctx, committer, prepare, spool, domain, idx.map((i) => ({ user: recipients[i].user, mailbox: recipients[i].mailbox ?? 'INBOX', flags: recipients[i].flags, syncPair: recipients[i].syncPair })), opts.received ?? Date.now());
        idx.forEach((i, k) => (results[i] = { ok: true, result: rs[k] }));
      } catch (e) {
        for (const i of idx) results[i] = { ok: false, error: e as Error };
      }
    }
    return results as RecipientResult[];
  } finally {
    spool.dispose();
  }
}

/** One dedup domain's share of a delivery: prepare once, make the blobs durable once, commit a row per recipient. */
async function storeFor(
  ctx: IngestDeps,
  committer: Committer,
  prepare: Preparer,
  spool: Spool,
  domain: string,
  recipients: CommitItem['recipients'],
  received: number,
): Promise<IngestResult[]> {
  const dict = ctx.currentDictionary();
  const prepared = await prepare.prepare(spool, {
    tmpDir: ctx.tmpDir,
    inlineThreshold: ctx.config.inlineThreshold,
    maxParts: ctx.config.maxParts,
    maxDepth: ctx.config.maxDepth,
    decode: ctx.config.decode,
    domainKey: ctx.domainKey(domain),
    dict,
  });
  if (prepared.fallback) ctx.log.warn('split-fallback', { user: recipients[0].user, size: spool.size, reason: prepared.fallback });
  let leaseToken: string | null = null;
  let renewal: NodeJS.Timeout | null = null;
  let wroteBlobs = false;
  try {
    // Lease the blobs, then make sure each object exists. Data before metadata.
    const needs = prepared.blobs;
    const refs: BlobRefInfo[] = [];
    let newBlobs = 0;
    let newBlobBytes = 0;
    if (needs.length) {
      leaseToken = Leases.newToken();
      const token = leaseToken;
      const rows = await committer.lease({ token, hashes: needs.map((n) => n.data.key), expires: Date.now() + ctx.leaseTtlMs });
      // a long ingest keeps its leases alive; the commit checks they still exist (clocks only decide when gc may reclaim)
      renewal = setInterval(() => void committer.renew(token, Date.now() + ctx.leaseTtlMs).catch(() => {}), Math.max(1000, ctx.leaseTtlMs / 3));
      renewal.unref();
      const toPut: { n: BlobNeed; ref: Omit<BlobRefInfo, 'stored' | 'codec' | 'confirmed'>; row: BlobRow | undefined }[] = [];
      for (let i = 0; i < needs.length; i++) {
        const n = needs[i];
        const row = rows[i];
        const ref = { hash: n.data.key, count: n.count * recipients.length, domain, size: n.data.size, contentType: n.contentType, chunks: n.data.chunkDigests };
        if (row && row.refs > 0 && !row.corrupt) {
          // a committed message references it and our lease keeps gc away: the object is there
          refs.push({ ...ref, stored: row.stored, codec: row.codec, confirmed: false });
        } else {
          // no row, or one that does not vouch for its object (unreferenced: gc may have deleted the object
          // and crashed before the row; corrupt: a read found it damaged): put it, or check what is there
          toPut.push({ n, ref, row });
        }
      }
      // several objects in flight at once: their fsyncs (or round trips) overlap
      await forEachLimit(toPut, PUT_CONCURRENCY, async ({ n, ref, row }) => {
        if (ctx.shared && domain === '' && n.data.size > SHARED_BLOB_MIN_BYTES) {
          // a node of a cluster: large blobs are found in (or added to) the bucket all nodes share
          wroteBlobs = true; // (markers: kept with the lease until it ends, then gc deletes what no reference needs)
          // (an instance this node found damaged is not taken again; the one it references otherwise comes first)
          const got = await acquireShared(ctx, committer, token, n, row && !row.corrupt ? row.instance : null, row?.corrupt ? row.instance : null);
          if (got.created) {
            newBlobs++;
            newBlobBytes += got.stored;
          }
          refs.push({ ...ref, stored: got.stored, codec: got.codec, confirmed: true, instance: got.instance });
          return;
        }
        const put = await ctx.blobStore.put(n.data);
        wroteBlobs = true; // a failed put leaves nothing (backend contract); a finished one leaves an object our lease must keep
        let codec: number = put.codec;
        let stored = put.stored;
        if (put.created) {
          newBlobs++;
          newBlobBytes += stored;
        } else {
          ({ codec, stored } = await confirmExisting(ctx, n, put.codec, domain));
        }
        refs.push({ ...ref, stored, codec, confirmed: true });
      });
    }
    const ids = await committer.commit({ recipients, received, prepared, refs, leaseToken: leaseToken ?? '', leased: needs.length, newBytes: newBlobBytes });
    leaseToken = null; // released by the commit
    return ids.map((id, k) => ({
      id: String(id),
      size: prepared.size,
      hash: prepared.hash.toString('hex'),
      blobs: needs.length,
      newBlobs: k === 0 ? newBlobs : 0,
      newBlobBytes: k === 0 ? newBlobBytes : 0,
      fallback: prepared.fallback !== null,
    }));
  } catch (e) {
    // Leases of an ingest that wrote blobs are kept: those objects stay "uncommitted"
    // (not orphans) until the lease expires and gc reclaims objects and leases together.
    if (leaseToken && !wroteBlobs) {
      const t = leaseToken;
      await ctx.index.release(t).catch(() => {});
    }
    throw e;
  } finally {
    if (renewal) clearInterval(renewal);
    prepared.dispose();
  }
}

/**
 * The object was already in the backend without a row that vouches for it:
 * written by a concurrent ingest of the same content (not committed yet),
 * left by one that crashed (possibly by a mailcas with another compression
 * policy), or marked corrupt by a read. Find the codec it reads back with;
 * only an object that reads back as nothing valid is replaced, atomically.
 * A backend failure while reading is thrown (transient), never taken for
 * corruption. We hold a lease, so gc will not race.
 */
async function confirmExisting(ctx: IngestDeps, need: BlobNeed, expected: number, domain: string): Promise<{ codec: number; stored: number }> {
  const key = need.data.key;
  const stat = await ctx.blobStore.backend.stat(key.toString('hex'));
  const domainKey = ctx.domainKey(domain);
  let why = 'missing';
  if (stat) {
    for (const codec of [expected, ...ALL_BLOB_CODECS.filter((c) => c !== expected)]) {
      const r = await ctx.blobStore.scan({ key, codec, size: need.data.size, domainKey });
      if (r.ok) return { codec, stored: stat.size };
      why = r.why;
    }
  }
  ctx.log.warn('blob-rewritten', { key: key.toString('hex'), reason: why });
  const put = await ctx.blobStore.put(need.data, { overwrite: true });
  return { codec: put.codec, stored: put.stored };
}

/** The id of a copy the mailbox holds that this message need not be stored again for (skipExisting), or null. */
function alreadyThere(ctx: IngestDeps, how: true | ResumeState, user: string, mailbox: string, hash: Buffer, size: number): number | null {
  if (how !== true && how.occurrence(user, mailbox, hash) >= ctx.messages.copiesBefore(user, mailbox, hash, size, how.before)) return null;
  return ctx.messages.existing(user, mailbox, hash, size);
}
