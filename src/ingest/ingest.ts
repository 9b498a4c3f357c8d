import { MailcasError } from '../errors.js';
import { Spool, type MessageInput } from '../split/spool.js';
import { buildMessage, buildWhole, type BlobNeed, type BuiltMessage, type BuildOptions } from './build-message.js';
import { verifyPacked } from './verify.js';
import { packMessageLayout, type PackedLayout } from '../layout/packed-layout.js';
import { Leases } from '../refcount/leases.js';
import type { BlobRefInfo, BlobRow } from '../refcount/refcounts.js';
import { BlobCodec } from '../cas/blob-store.js';
import { forEachLimit } from '../util/pool.js';
import { PUT_CONCURRENCY } from '../limits.js';
import type { StoreContext } from '../store-context.js';

export interface IngestOptions {
  user: string;
  mailbox?: string;
  /** Received time (unix ms); default now. */
  received?: number;
  /** When the user already has a message with these exact bytes in this mailbox, store nothing and answer its id (skipped: true). */
  skipExisting?: boolean;
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

/** What the commit transaction needs for one message. */
export interface CommitItem {
  user: string;
  mailbox: string;
  size: number;
  hash: Buffer;
  received: number;
  packed: PackedLayout;
  built: BuiltMessage;
  refs: BlobRefInfo[];
  leaseToken: string;
  /** Distinct blobs leased under leaseToken: the commit checks that many leases still exist. */
  leased: number;
  fallback: boolean;
  /** Backend bytes this message's ingest created (blobs that were new). */
  newBytes: number;
  /** Raw bytes of header blocks and structural literals. */
  headerBytes: number;
}

/** Leases to take (in a durable transaction) before writing blobs; answers the existing rows. */
export interface LeaseRequest {
  token: string;
  hashes: Buffer[];
  expires: number;
}

/** How an ingest reaches the metadata store: all three are group-committed by the store. */
export interface Committer {
  lease(req: LeaseRequest): Promise<(BlobRow | undefined)[]>;
  /** Extends the leases of `token`; resolves to how many still exist. */
  renew(token: string, expires: number): Promise<number>;
  /** Fails (E_LEASE_LOST, transient) unless every lease of the item's token still exists. */
  commit(item: CommitItem): Promise<number>;
}

/**
 * Stores one message: spool (hashing on the way in), split, canonicalise,
 * verify by reassembly, lease and write blobs (durable), then commit the
 * metadata with its reference counts in one transaction.
 */
export async function ingestMessage(ctx: StoreContext, committer: Committer, input: MessageInput, opts: IngestOptions): Promise<IngestResult> {
  const user = opts.user;
  const mailbox = opts.mailbox ?? 'INBOX';
  if (!user) throw new MailcasError('E_USAGE', 'a user is required');
  const spool = await Spool.from(input, { tmpDir: ctx.tmpDir, maxBytes: ctx.config.maxMessageBytes });
  if (spool.size === 0) {
    spool.dispose();
    throw new MailcasError('E_REFUSED', 'empty message (0 bytes): refused');
  }
  if (opts.skipExisting) {
    const have = ctx.db.prepare('SELECT id FROM messages WHERE hash = ? AND size = ? AND user = ? AND mailbox = ? LIMIT 1').get(spool.hash, spool.size, user, mailbox) as { id: number } | undefined;
    if (have) {
      spool.dispose();
      return { id: String(have.id), size: spool.size, hash: spool.hash.toString('hex'), blobs: 0, newBlobs: 0, newBlobBytes: 0, fallback: false, skipped: true };
    }
  }
  let built: BuiltMessage | null = null;
  let leaseToken: string | null = null;
  let renewal: NodeJS.Timeout | null = null;
  let wroteBlobs = false;
  try {
    const domain = ctx.domainOf(user);
    const bopts: BuildOptions = {
      tmpDir: ctx.tmpDir,
      inlineThreshold: ctx.config.inlineThreshold,
      maxParts: ctx.config.maxParts,
      domainKey: ctx.domainKey(domain),
      decode: ctx.config.decode,
    };
    built = buildMessage(spool.source, bopts);
    const dict = ctx.currentDictionary();
    let packed = packMessageLayout(built.layout, dict);
    const expect = { hash: spool.hash, size: spool.size };
    let failure = await verifyPacked(packed, dict?.data ?? null, built.blobs, expect);
    let fallback = false;
    if (failure) {
      fallback = true;
      ctx.log.warn('split-fallback', { user, size: spool.size, reason: failure });
      built.dispose();
      built = buildWhole(spool.source, bopts);
      packed = packMessageLayout(built.layout, dict);
      failure = await verifyPacked(packed, dict?.data ?? null, built.blobs, expect);
      if (failure) throw new MailcasError('E_INTERNAL', `message does not reassemble even when stored whole: ${failure}`);
    }

    // Lease the blobs, then make sure each object exists. Data before metadata.
    const needs = [...built.blobs.values()];
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
      const toPut: { n: BlobNeed; ref: Omit<BlobRefInfo, 'stored' | 'codec' | 'confirmed'> }[] = [];
      for (let i = 0; i < needs.length; i++) {
        const n = needs[i];
        const row = rows[i];
        const ref = { hash: n.data.key, count: n.count, domain, size: n.data.size, contentType: n.contentType, chunks: n.data.chunkDigests };
        if (row && row.refs > 0 && !row.corrupt) {
          // a committed message references it and our lease keeps gc away: the object is there
          refs.push({ ...ref, stored: row.stored, codec: row.codec, confirmed: false });
        } else {
          // no row, or one that does not vouch for its object (unreferenced: gc may have deleted the object
          // and crashed before the row; corrupt: a read found it damaged): put it, or check what is there
          toPut.push({ n, ref });
        }
      }
      // several objects in flight at once: their fsyncs (or round trips) overlap
      await forEachLimit(toPut, PUT_CONCURRENCY, async ({ n, ref }) => {
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
    const id = await committer.commit({
      user,
      mailbox,
      size: spool.size,
      hash: spool.hash,
      received: opts.received ?? Date.now(),
      packed,
      built,
      refs,
      leaseToken: leaseToken ?? '',
      leased: needs.length,
      fallback,
      newBytes: newBlobBytes,
      headerBytes: built.layout.segments.reduce((a, g) => a + (g.k === 'part' ? 0 : g.bytes.length), 0),
    });
    leaseToken = null; // released by the commit
    return {
      id: String(id),
      size: spool.size,
      hash: spool.hash.toString('hex'),
      blobs: needs.length,
      newBlobs,
      newBlobBytes,
      fallback,
    };
  } catch (e) {
    // Leases of an ingest that wrote blobs are kept: those objects stay "uncommitted"
    // (not orphans) until the lease expires and gc reclaims objects and leases together.
    if (leaseToken && !wroteBlobs) {
      const t = leaseToken;
      await ctx.writeLock.run(() => ctx.leases.release(t)).catch(() => {});
    }
    throw e;
  } finally {
    if (renewal) clearInterval(renewal);
    built?.dispose();
    spool.dispose();
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
async function confirmExisting(ctx: StoreContext, need: BlobNeed, expected: number, domain: string): Promise<{ codec: number; stored: number }> {
  const key = need.data.key;
  const stat = await ctx.blobStore.backend.stat(key.toString('hex'));
  const domainKey = ctx.domainKey(domain);
  let why = 'missing';
  if (stat) {
    for (const codec of [expected, ...[BlobCodec.None, BlobCodec.Deflate].filter((c) => c !== expected)]) {
      const r = await ctx.blobStore.scan({ key, codec, size: need.data.size, domainKey });
      if (r.ok) return { codec, stored: stat.size };
      why = r.why;
    }
  }
  ctx.log.warn('blob-rewritten', { key: key.toString('hex'), reason: why });
  const put = await ctx.blobStore.put(need.data, { overwrite: true });
  return { codec: put.codec, stored: put.stored };
}
