import type { ByteSource } from '../split/byte-source.js';
import type { Recipe } from './recipe.js';

/**
 * Receives canonical bytes as they are produced; `reset` discards them (the
 * attempt failed). A buffer written without `transient` may be kept as it
 * is (the caller never modifies it); a transient one is a view the caller
 * reuses after the call (a file window, a decoding buffer): a sink that
 * keeps it copies it.
 */
export interface CanonicalSink {
  write(b: Buffer, transient?: boolean): void;
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
