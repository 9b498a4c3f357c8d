import { toHex } from '../util/hash.js';

/** Where a blob is and how to check it: everything a read needs, from its metadata row. */
export interface BlobLocation {
  key: Buffer;
  codec: number;
  /** Canonical size. */
  size: number;
  /** Key of the dedup domain the blob's name was hashed with (null: global). */
  domainKey: Buffer | null;
  /** Recorded chunk digests (blobs over one VERIFY_CHUNK_BYTES chunk), or null when unknown. */
  chunks: Buffer | null;
  /** 0 (default): the primary backend; 1: the cold tier. */
  tier?: number;
  /** In the cold tier, inside this pack object at this byte range (stored bytes); absent: an object of its own. */
  pack?: PackEntry | null;
  /** Tier 2 (the bucket the nodes of a cluster share): which instance of the blob (its object is key + instance). */
  instance?: string | null;
}

/** Tiers: where a blob row says its object is. */
export const Tier = { Primary: 0, Cold: 1, Shared: 2 } as const;

/** The object key of a blob that is an object of its own: its hash, and in the shared tier its instance after it. */
export function objectKey(loc: Pick<BlobLocation, 'key' | 'tier' | 'instance'>): string {
  const hex = toHex(loc.key);
  return loc.tier === Tier.Shared ? hex + (loc.instance ?? '') : hex;
}

export interface PackEntry {
  /** codec BrotliFrame: where the blob starts in the frame's decoded bytes (offset/length are the frame's). */
  frameOffset?: number | null;
  name: string;
  offset: number;
  length: number;
}
