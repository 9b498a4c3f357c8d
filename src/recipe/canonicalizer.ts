import type { ByteSource } from '../split/byte-source.js';
import type { Recipe } from './recipe.js';

/**
 * Receives canonical bytes as they are produced; `reset` discards them (the
 * attempt failed). Buffers passed to write may be kept as they are: callers
 * never modify a buffer after writing it.
 */
export interface CanonicalSink {
  write(b: Buffer): void;
  reset(): void;
}

/**
 * Turns the raw bytes of one part body into canonical bytes. Returns the
 * recipe that reproduces the raw bytes exactly, or null when this encoding
 * cannot (the caller resets the sink and tries the next candidate).
 */
export type Canonicalizer = (src: ByteSource, start: number, end: number, sink: CanonicalSink) => Recipe | null;

/** Turns canonical bytes back into raw bytes, streaming. */
export interface RecipeEncoder {
  push(canonical: Buffer): Buffer;
  end(): Buffer;
}
