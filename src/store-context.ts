import type { Db } from './meta/db.js';
import type { AsyncMutex } from './util/async-mutex.js';
import type { BlobStore } from './cas/blob-store.js';
import type { BlobIndex } from './blob-index/blob-index.js';
import type { Logger } from './util/logger.js';
import type { SharedBucket } from './backend/shared-bucket.js';

export type DedupScope = 'global' | 'user' | 'tenant';

/** Settings fixed when a store is created (kept in its meta table). */
export interface StoreConfig {
  inlineThreshold: number;
  dedupScope: DedupScope;
  maxMessageBytes: number;
  /** Refuse messages with more MIME entities than this. */
  maxParts: number;
  /** Refuse MIME nesting deeper than this (undefined: deeper levels are kept as opaque bytes). */
  maxDepth?: number;
  decode: boolean;
}

/** What the store's modules share. Narrow on purpose: modules take only what they use. */
export interface StoreContext {
  readonly dir: string;
  readonly tmpDir: string;
  readonly db: Db;
  /** Serialises write transactions within this process (gc holds one across awaits). */
  readonly writeLock: AsyncMutex;
  readonly blobStore: BlobStore;
  /** Node of a cluster: the bucket its nodes share (markers, tombstones, instances); null otherwise. */
  readonly shared: SharedBucket | null;
  /** The one owner of blob state (blobs, packs, leases, markers) and its transitions. */
  readonly index: BlobIndex;
  readonly config: StoreConfig;
  readonly log: Logger;
  /** How long a lease protects an uncommitted blob without renewal. */
  readonly leaseTtlMs: number;
  /** Dedup domain of a user ('' = global). */
  domainOf(user: string): string;
  /** Key for keyed hashing in a domain; null for the global domain. */
  domainKey(domain: string): Buffer | null;
  /** Preset dictionary by id. */
  dictionary(id: number): Buffer | null;
  /** The dictionary new layouts are compressed with, if one has been trained. */
  currentDictionary(): { id: number; data: Buffer } | null;
}
