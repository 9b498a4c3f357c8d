import { Tier, type BlobStore } from '../cas/blob-store.js';
import type { BlobIndex } from '../blob-index/blob-index.js';
import type { SharedBucket } from '../backend/shared-bucket.js';
import type { Messages } from '../meta/messages.js';
import type { IndexedBlob } from '../blob-index/index-view.js';

/** What check uses of its store. */
export interface CheckDeps {
  /** The store's directory (check reads one snapshot on a read-only connection of its own). */
  readonly dir: string;
  /** The store's temp directory (spools, parts being written). */
  readonly tmpDir: string;
  readonly index: BlobIndex;
  readonly blobStore: BlobStore;
  readonly shared: SharedBucket | null;
  readonly messages: Messages;
  domainKey(domain: string): Buffer | null;
  dictionary(id: number): Buffer | null;
}

export interface CheckOptions {
  /** Fix what can be fixed: reference counts, rows of blobs that exist, orphan objects, rows whose object is gone. */
  repair?: boolean;
  /** Also read every blob and verify it against its name. */
  deep?: boolean;
}

export interface CheckReport {
  /** True when every committed message can be reassembled and every count is right. */
  consistent: boolean;
  messages: number;
  blobs: number;
  objects: number;
  /** Stored count differs from the recount over all messages. */
  drift: { hash: string; stored: number; actual: number }[];
  /** Packs whose live-byte figure (what gc repacks by) differs from the stored bytes of the blobs in them. */
  packDrift: { pack: string; live: number; actual: number }[];
  /** Referenced by a message but no blob row. */
  missingRows: string[];
  /** Referenced by a message, but the object is not in the backend: data loss. */
  missingBlobs: string[];
  /** Objects with no row and no lease: unexplained garbage (in the primary backend; for a tiered store, the hot tier). */
  orphans: string[];
  /** The same in the cold tier: blob objects and pack objects nothing points at. */
  coldOrphans: string[];
  /** Hot copies of blobs whose row says they are in the cold tier: left by a tier or flush that stopped between switching a blob and deleting its hot copy. Expected after a crash, not an inconsistency: gc (and repair) removes them. */
  staleHotCopies: string[];
  /** Cold objects of blobs whose row says they are elsewhere now: brought back to the hot tier by a new ingest of the same content after their count fell to zero. Not an inconsistency: gc (and repair) removes them. */
  staleColdCopies: string[];
  /**
   * Node of a cluster: referenced blobs in the shared bucket for which this
   * node has no reference marker on record or (with --deep, which lists
   * them) in the bucket: the marker is what keeps other nodes' collectors
   * from deleting them, so this is an inconsistency; --repair writes it again.
   */
  missingMarkers: string[];
  /** Node of a cluster: markers on record that no reference or ingest needs any more (gc deletes them). */
  unneededMarkers: number;
  /** Referenced blobs still only in the hot tier of a tiered store (the write-behind backlog), and their stored bytes. */
  pendingUploads: number;
  pendingBytes: number;
  /** Objects with no row but a lease: written by an ingest in flight or one that crashed before committing (gc reclaims them). */
  uncommitted: string[];
  /** Temp files (writes in progress, or left by writers that were killed): not an inconsistency; gc removes those older than its grace (10 minutes at least). */
  tempFiles: number;
  tempBytes: number;
  /** --deep: blobs read back whole and re-hashed, and their canonical bytes. */
  rehashed: { blobs: number; bytes: number } | null;
  /** Rows with no references (reclaimable by gc). */
  unreferenced: number;
  /** Unreferenced rows whose object is gone (a gc that stopped between the two): harmless, vouch for nothing; repair and gc drop them. */
  danglingRows: string[];
  /** Messages whose layout cannot be decoded (their references are counted from the parts table). */
  corruptMessages: string[];
  /** Blobs whose object does not read back as its name says: found by --deep, or marked by an earlier read. */
  corruptBlobs: string[];
  /** Messages that reference a missing or corrupt blob: they cannot be fetched until the content is ingested again or restored. */
  damagedMessages: string[];
  repaired: { refcounts: number; rowsCreated: number; orphansDeleted: number; rowsDropped: number; packs: number; markers: number } | null;
  /** Why a repair did less than asked (e.g. undecodable messages: no count lowered, nothing deleted). */
  repairNote?: string;
}

/** A blob row as check holds it (keyed by its hash). */
export type Row = Omit<IndexedBlob, 'hash'>;

/** One listing of each tier, taken before the metadata snapshot. */
export interface Listing {
  hot: Map<string, number>;
  cold: Map<string, number> | null;
  /** Instance objects in the bucket a cluster's nodes share (node stores). */
  shared: Map<string, number> | null;
}

/** Is a row's object (or pack) in the listing where the row says it is? */
export function present(l: Listing, k: string, row: Pick<Row, 'tier' | 'pack_name' | 'instance'>): boolean {
  if (row.tier === 0) return l.hot.has(k);
  if (row.tier === Tier.Shared) return !!l.shared?.has(k + row.instance);
  if (!l.cold) return false;
  return l.cold.has(row.pack_name ?? k);
}

/** What one snapshot of the metadata says, next to a listing of the backend. */
export interface Findings {
  generation: number;
  actual: Map<string, number>;
  rows: Map<string, Row>;
}

export function emptyReport(): CheckReport {
  return {
    consistent: true,
    messages: 0,
    blobs: 0,
    objects: 0,
    drift: [],
    packDrift: [],
    missingRows: [],
    missingBlobs: [],
    orphans: [],
    coldOrphans: [],
    staleHotCopies: [],
    staleColdCopies: [],
    missingMarkers: [],
    unneededMarkers: 0,
    pendingUploads: 0,
    pendingBytes: 0,
    uncommitted: [],
    tempFiles: 0,
    tempBytes: 0,
    rehashed: null,
    unreferenced: 0,
    danglingRows: [],
    corruptMessages: [],
    corruptBlobs: [],
    damagedMessages: [],
    repaired: null,
  };
}
