import { Blake3Hasher, blake3 } from '@napi-rs/blake-hash';

/** Incremental BLAKE3, optionally keyed (dedup domains). Digests are 32 bytes. */
export interface Hasher {
  update(b: Buffer): void;
  digest(): Buffer;
}

export const HASH_BYTES = 32;

export function newHasher(key?: Buffer): Hasher {
  const h = key ? Blake3Hasher.newKeyed(key) : new Blake3Hasher();
  return {
    update(b: Buffer) {
      if (b.length) h.update(b);
    },
    digest() {
      return h.digestBuffer();
    },
  };
}

/** One-shot hash: a single native call (creating an incremental hasher costs more than hashing a small buffer). */
export function hashBuffer(b: Buffer, key?: Buffer): Buffer {
  if (!key) return blake3(b);
  const h = newHasher(key);
  h.update(b);
  return h.digest();
}

/** Derives a per-domain 32-byte key from the store secret (BLAKE3 derive_key mode). */
export function deriveDomainKey(storeSecret: Buffer, domain: string): Buffer {
  return Blake3Hasher.deriveKey('mailcas 2026 dedup domain v1', Buffer.concat([storeSecret, Buffer.from('\0' + domain, 'utf8')]));
}

export const toHex = (b: Buffer): string => b.toString('hex');
