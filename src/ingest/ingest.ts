import { MailcasError } from '../errors.js';
import { Spool, type MessageInput } from '../split/spool.js';
import { buildMessage, buildWhole, type BlobNeed, type BuiltMessage, type BuildOptions } from './build-message.js';
import { verifyPacked } from './verify.js';
import { packMessageLayout, type PackedLayout } from '../layout/packed-layout.js';
import { Leases } from '../refcount/leases.js';
import type { BlobRefInfo, BlobRow } from '../refcount/refcounts.js';
import { LEASE_TTL_SECONDS } from '../limits.js';
import { BlobCodec } from '../cas/blob-store.js';
import type { StoreContext } from '../store-context.js';

export interface IngestOptions {
  user: string;
  mailbox?: string;
  /** Received time (unix ms); default now. */
  received?: number;
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

/** How an ingest reaches the metadata store: both are group-committed by the store. */
export interface Committer {
  lease(req: LeaseRequest): Promise<(BlobRow | undefined)[]>;
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
  let built: BuiltMessage | null = null;
  let leaseToken: string | null = null;
  let wroteBlobs = false;
  try {
    const domain = ctx.domainOf(user);
    const bopts: BuildOptions = {
      tmpDir: ctx.tmpDir,
      inlineThreshold: ctx.config.inlineThreshold,
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

    // Lease the blobs, then write those not already committed. Data before metadata.
    const needs = [...built.blobs.values()];
    const refs: BlobRefInfo[] = [];
    let newBlobs = 0;
    let newBlobBytes = 0;
    if (needs.length) {
      leaseToken = Leases.newToken();
      const token = leaseToken;
      const rows = await committer.lease({ token, hashes: needs.map((n) => n.data.key), expires: Date.now() + LEASE_TTL_SECONDS * 1000 });
      for (let i = 0; i < needs.length; i++) {
        const n = needs[i];
        const row = rows[i];
        if (row) {
          refs.push({ hash: n.data.key, count: n.count, domain, size: n.data.size, stored: row.stored, codec: row.codec, contentType: n.contentType });
          continue;
        }
        const put = await ctx.blobStore.put(n.data);
        wroteBlobs = true;
        let codec: number = put.codec;
        let stored = put.stored;
        if (put.created) {
          newBlobs++;
          newBlobBytes += stored;
        } else {
          ({ codec, stored } = await existingCodec(ctx, n, put.codec, domain));
        }
        refs.push({ hash: n.data.key, count: n.count, domain, size: n.data.size, stored, codec, contentType: n.contentType });
      }
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
    built?.dispose();
    spool.dispose();
  }
}

/**
 * The object was already in the backend without a committed row: written
 * by a concurrent ingest of the same content (not committed yet), or left
 * by one that crashed, possibly by a mailcas with another compression
 * policy. Find the codec it actually reads back with; only an object that
 * reads back as nothing valid is replaced. We hold a lease, so gc will not race.
 */
async function existingCodec(ctx: StoreContext, need: BlobNeed, expected: number, domain: string): Promise<{ codec: number; stored: number }> {
  const key = need.data.key;
  const stat = await ctx.blobStore.backend.stat(key.toString('hex'));
  for (const codec of [expected, ...[BlobCodec.None, BlobCodec.Deflate].filter((c) => c !== expected)]) {
    if (await ctx.blobStore.readsBackAs(key, codec, need.data.size, ctx.domainKey(domain))) return { codec, stored: stat?.size ?? need.data.size };
  }
  ctx.log.warn('blob-replaced', { key: key.toString('hex'), reason: 'existing object does not read back as its content' });
  await ctx.blobStore.backend.delete(key.toString('hex'));
  const put = await ctx.blobStore.put(need.data);
  return { codec: put.codec, stored: put.stored };
}
