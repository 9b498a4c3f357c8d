import fs from 'node:fs';
import { isFileInput, type MessageInput } from '../split/spool.js';
import { PART_MEMORY_BYTES, SPOOL_MEMORY_BYTES } from '../limits.js';

/**
 * What one ingest may hold in memory: a message up to SPOOL_MEMORY_BYTES is
 * held whole (larger ones are parsed from a file through a window), plus a
 * part being canonicalised and its compressed copy (PART_MEMORY_BYTES each).
 */
export function memoryCost(input: MessageInput): number {
  let size = SPOOL_MEMORY_BYTES;
  if (Buffer.isBuffer(input) || input instanceof Uint8Array) size = input.byteLength;
  else if (isFileInput(input)) {
    try {
      size = input.end !== undefined ? input.end - (input.start ?? 0) : fs.statSync(input.path).size - (input.start ?? 0);
    } catch {
      /* the spool reports it */
    }
  }
  return Math.min(size, SPOOL_MEMORY_BYTES) + 2 * PART_MEMORY_BYTES;
}
