import { MailcasError } from '../errors.js';
import type { BlobBackend } from '../backend/backend.js';
import { HASH_BYTES, hashBuffer, toHex } from '../util/hash.js';
import { VERIFY_CHUNK_BYTES } from '../limits.js';
import { objectKey, type BlobLocation } from './blob-location.js';

/**
 * Canonical bytes [start, end) of a blob stored as it is and larger than one
 * chunk (its chunk digests recorded): one ranged GET of just the chunks that
 * cover the range, each verified against its digest before any of its bytes
 * go out.
 */
export async function* rangedChunks(backend: BlobBackend, loc: BlobLocation, start: number, end: number, counted: (s: AsyncIterable<Buffer>) => AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  const hex = toHex(loc.key);
  const first = Math.floor(start / VERIFY_CHUNK_BYTES);
  const last = Math.ceil(end / VERIFY_CHUNK_BYTES); // exclusive
  const cs = first * VERIFY_CHUNK_BYTES;
  const ce = Math.min(loc.size, last * VERIFY_CHUNK_BYTES);
  const base = loc.pack ? loc.pack.offset : 0;
  const s = await backend.get(loc.pack ? loc.pack.name : objectKey(loc), { start: base + cs, end: base + ce });
  if (!s) throw new MailcasError('E_INTEGRITY', `blob ${hex} is missing from the ${backend.properties.name} backend`, { data: { key: hex, missing: true } });
  let pending: Buffer[] = [];
  let fill = 0;
  let index = first;
  let at = cs;
  const emit = (piece: Buffer): Buffer | null => {
    if (!hashBuffer(piece).equals(loc.chunks!.subarray(index * HASH_BYTES, (index + 1) * HASH_BYTES))) throw integrity(hex, `content does not match its hash (chunk ${index} at byte ${index * VERIFY_CHUNK_BYTES})`);
    const from = Math.max(start, at) - at;
    const to = Math.min(end, at + piece.length) - at;
    at += piece.length;
    index++;
    return to > from ? piece.subarray(from, to) : null;
  };
  try {
    for await (let c of counted(s)) {
      while (c.length) {
        const want = Math.min(VERIFY_CHUNK_BYTES, ce - at); // the current chunk: whole, or the blob's last
        const take = Math.min(c.length, want - fill);
        pending.push(c.subarray(0, take));
        fill += take;
        c = c.subarray(take);
        if (fill === want) {
          const out = emit(pending.length === 1 ? pending[0] : Buffer.concat(pending, fill));
          pending = [];
          fill = 0;
          if (out) yield out;
        }
      }
    }
  } finally {
    s.destroy();
  }
  if (at !== ce) throw integrity(hex, `${at - cs} bytes read, ${ce - cs} expected`);
}

function integrity(hex: string, what: string): MailcasError {
  return new MailcasError('E_INTEGRITY', `blob ${hex}: ${what}`, { data: { key: hex } });
}
