import type { StoreConfig } from '../meta/store-config.js';
import type { Messages } from '../meta/messages.js';
import type { BlobIndex } from '../blob-index/blob-index.js';
import type { BlobStore } from '../cas/blob-store.js';
import type { SharedBucket } from '../backend/shared-bucket.js';
import type { Logger } from '../util/logger.js';

/** What an ingest uses of its store. */
export interface IngestDeps {
  readonly tmpDir: string;
  readonly config: StoreConfig;
  readonly index: BlobIndex;
  readonly blobStore: BlobStore;
  /** Node of a cluster: the bucket its nodes share; null otherwise. */
  readonly shared: SharedBucket | null;
  readonly messages: Messages;
  readonly log: Logger;
  /** How long a lease protects an uncommitted blob without renewal. */
  readonly leaseTtlMs: number;
  domainOf(user: string): string;
  domainKey(domain: string): Buffer | null;
  currentDictionary(): { id: number; data: Buffer } | null;
}
