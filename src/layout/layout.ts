import type { Recipe } from '../recipe/recipe.js';

/**
 * The compact description of one message: its bytes are the concatenation
 * of its segments, in order. Header blocks and structural literals are kept
 * verbatim; part bodies are references to canonical bytes (inline, or a
 * content-addressed blob) plus the recipe that re-encodes them.
 */
export type LayoutSegment = HeaderSegment | LiteralSegment | PartSegment;

export interface HeaderSegment {
  k: 'header';
  /** IMAP part path of the entity this header block belongs to ("" = the message). */
  path: string;
  bytes: Buffer;
}

export interface LiteralSegment {
  k: 'literal';
  bytes: Buffer;
}

export interface PartSegment {
  k: 'part';
  /** IMAP part path, or null for raw regions stored as parts (oversized preamble, junk). */
  path: string | null;
  recipe: Recipe;
  /** Bytes this segment contributes to the message. */
  rawSize: number;
  /** Canonical size. */
  size: number;
  /** Canonical bytes when stored inline; null when in a blob. */
  inline: Buffer | null;
  /** Blob key when stored in the blob store; null when inline. */
  hash: Buffer | null;
}

export interface Layout {
  segments: LayoutSegment[];
}

/** Blob keys referenced by a layout, one entry per reference (a blob used twice appears twice). */
export function blobRefs(l: Layout): Buffer[] {
  const out: Buffer[] = [];
  for (const s of l.segments) if (s.k === 'part' && s.hash) out.push(s.hash);
  return out;
}
