import { newHasher } from '../util/hash.js';

/** Bytes of a message row's layout checksum. */
export const LAYOUT_SUM_BYTES = 8;

/**
 * The checksum of what a message row holds beside its blobs: its header
 * blocks and layout, its inline bodies (both as they decode, so a damaged
 * dictionary is caught too) and its MIME tree (the offsets of sections).
 * Computed at ingest from the bytes the ingest check proved, checked on
 * every read: a partial read (a section, a range, the header) is then as
 * covered as a whole one, which the whole-message hash also covers.
 * BLAKE3 cut to 64 bits: it guards against damage, not against an attacker
 * who can write the database.
 */
export function layoutSum(head: Buffer, inline: Buffer | null, tree: Buffer | null): Buffer {
  const lengths = Buffer.alloc(12);
  lengths.writeUInt32LE(head.length, 0);
  lengths.writeUInt32LE(inline?.length ?? 0, 4);
  lengths.writeUInt32LE(tree?.length ?? 0, 8);
  const h = newHasher();
  h.update(lengths);
  h.update(head);
  if (inline) h.update(inline);
  if (tree) h.update(tree);
  return Buffer.from(h.digest().subarray(0, LAYOUT_SUM_BYTES));
}
