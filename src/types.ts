/**
 * The Store's vocabulary in one place: what its methods take and return.
 * Fronts (cli, delivery, service, imap) import these types from here.
 */
import type { BlobBackend } from './backend/backend.js';
import type { CompressionPolicy } from './cas/blob-store.js';
import type { S3Location } from './backend/s3-backend.js';
import type { TierPolicy } from './backend/open-backend.js';
import type { RetryPolicy } from './backend/retry-backend.js';
import type { DedupScope } from './meta/store-config.js';
import type { Logger } from './util/logger.js';

export type { DedupScope, StoreConfig } from './meta/store-config.js';
export type { MessageRecord } from './mailbox/message-record.js';
export type { IngestOptions, IngestResult, Recipient, RecipientResult } from './ingest/ingest.js';
export type { MessageInput, FileInput } from './split/spool.js';
export type { MessageAccess } from './reassemble/message-access.js';
export type { GcOptions, GcReport } from './lifecycle/gc.js';
export type { CheckOptions, CheckReport } from './lifecycle/check.js';
export type { TierOptions, TierReport } from './lifecycle/tier.js';
export type { CompactOptions, CompactReport } from './meta/compact.js';
export type { CollectOptions, CollectReport } from './cluster/collect.js';
export type { StorageReport } from './report/report.js';

export interface StoreOptions {
  /** Open only a store that exists (E_NOT_FOUND naming the directory otherwise); default true: a store is created on first use. */
  create?: boolean;
  /**
   * Read only (a user who may read the store but not write it): the database
   * is opened read-only, nothing is made, cleaned or marked. Implies create: false.
   */
  readOnly?: boolean;
  /** Blob backend; default: files under <dir>/blobs. */
  backend?: BlobBackend;
  /** Used when the store is created; later opens keep the stored values. */
  inlineThreshold?: number;
  dedupScope?: DedupScope;
  /** Refuse messages larger than this (E_TOO_LARGE). */
  maxMessageBytes?: number;
  /** Refuse messages with more MIME entities than this (E_TOO_LARGE; default DEFAULT_MAX_PARTS). */
  maxParts?: number;
  /** Refuse MIME nesting deeper than this (E_TOO_LARGE); default: levels past MAX_MIME_DEPTH are stored as opaque bytes. */
  maxDepth?: number;
  /** Decode transfer encodings to canonical bytes (default true). */
  decode?: boolean;
  compression?: Partial<CompressionPolicy>;
  /** Train a header dictionary once this many messages are stored (0 disables). */
  dictionaryAfter?: number;
  /** Worker threads that split and verify large messages off the event loop (default: one per core; 0: none). */
  workers?: number;
  /** Messages at least this large are prepared in a worker (default DEFAULT_OFFLOAD_ABOVE_BYTES). */
  offloadAbove?: number;
  /** Bytes all ingests in flight may hold in memory together (default DEFAULT_MEMORY_BUDGET_BYTES). */
  memoryBudgetBytes?: number;
  /** Creating a store: keep its blobs in this bucket (an existing store refuses a different one). */
  s3?: S3Location;
  /** With s3: the store is this node of a cluster sharing the bucket (large blobs stored once for all nodes; docs/SCALE-OUT.md). */
  node?: string;
  /** With s3: new blobs on local files, moved to the bucket by tier (writeBehind: at once, in the background and by flush). */
  tiered?: { writeBehind?: boolean; policy?: Partial<TierPolicy> };
  /** A cold tier backend to go with `backend` (tests). */
  coldBackend?: BlobBackend;
  /** Long-running processes (LMTP, services): upload the write-behind backlog in the background. */
  background?: boolean;
  /** Write-behind: refuse new mail (temporarily) while more than this many bytes wait for the object store (default 1 GiB). */
  writeBehindMaxBytes?: number;
  /** How transient backend failures are retried (default: backoff up to 30 s, $MAILCAS_RETRY_DEADLINE_MS). */
  retry?: Partial<RetryPolicy>;
  /** How long a lease protects an uncommitted blob without renewal (default LEASE_TTL_SECONDS; ingests renew every third of it). */
  leaseTtlSeconds?: number;
  logger?: Logger;
}

