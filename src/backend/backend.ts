import type { Readable } from 'node:stream';
import { MailcasError } from '../errors.js';

/**
 * The blob backend contract. A backend is a flat namespace of immutable
 * objects addressed by key; it knows nothing of mail, refcounts or
 * compression. Every backend runs the shared conformance suite
 * (test/backend/conformance.ts), hostile cases included.
 *
 * Errors: a missing object is `null` from get/stat (never an exception);
 * failures are MailcasError with code E_BACKEND (transient: retry may
 * help), E_INTEGRITY or E_SHORT_WRITE (permanent for that input).
 */
export interface BlobBackend {
  readonly properties: BackendProperties;

  /**
   * Stores the bytes of `src` under `key` unless an object with that key
   * already exists (then the existing object is kept and false returned).
   * The bytes written are counted and hashed: when they do not match
   * `expect` the call fails (E_SHORT_WRITE / E_INTEGRITY) and nothing is
   * stored under `key`. When the promise resolves the object is durable
   * (survives a crash) and visible to get/list.
   */
  put(key: string, src: PutSource, expect: PutExpect, opts?: PutOptions): Promise<boolean>;

  /** Streams an object, or bytes [start, end) of it; null when it does not exist. */
  get(key: string, range?: ByteRange): Promise<Readable | null>;

  /**
   * Optional, for backends on this machine's disk: the whole object in one
   * synchronous call when it is at most `max` bytes (null: it does not
   * exist; undefined: it is larger, use get). Cheaper than a stream for the
   * small objects most reads are.
   */
  readWhole?(key: string, max: number): Buffer | null | undefined;

  /** Size and modification time, or null when the object does not exist. */
  stat(key: string): Promise<ObjectInfo | null>;

  /** Deletes an object; deleting a missing object succeeds. Durable on resolve. */
  delete(key: string): Promise<void>;

  /** Every object, once each, in no particular order. Objects being written are not listed. */
  list(): AsyncIterable<ObjectInfo>;

  /** Optional, for backends on this machine's disk: the directory of their writes in progress (temp files a killed writer leaves). */
  readonly tempDir?: string;

  close(): Promise<void>;
}

/** Capabilities as data: wrappers and callers read these instead of asking which backend they hold. */
export interface BackendProperties {
  name: string;
  /** put never overwrites an existing object (link / If-None-Match). */
  atomicCreate: boolean;
  /** get honours byte ranges without reading the whole object. */
  ranged: boolean;
  /** Objects live on this machine's disk (cheap to read back). */
  local: boolean;
}

export interface PutSource {
  /** Declared length in bytes. */
  size: number;
  /** Opens the bytes from the start; called again for each attempt (retries rewind by reopening). */
  open(): AsyncIterable<Buffer> | Iterable<Buffer>;
  /**
   * A complete file holding exactly these bytes, which the caller will not
   * modify: a local backend may link it into place instead of copying it
   * (it still verifies and fsyncs it).
   */
  file?: string;
}

export interface PutOptions {
  /**
   * Replace an existing object (atomically: readers see the old bytes or the
   * new, never a mix). Only for healing an object known not to read back as
   * its key says; the new bytes are verified like any put. Returns true.
   */
  overwrite?: boolean;
}

export interface PutExpect {
  size: number;
  /** BLAKE3 of the bytes to store (not necessarily equal to the key: stored bytes may be compressed). */
  digest: Buffer;
}

export interface ByteRange {
  start: number;
  /** exclusive */
  end: number;
}

export interface ObjectInfo {
  key: string;
  size: number;
  mtimeMs: number;
}

/**
 * The check every backend's put makes on what it wrote: the count and the
 * digest must be what the caller declared (E_SHORT_WRITE, E_INTEGRITY).
 */
export function checkWritten(key: string, n: number, digest: Buffer, expect: PutExpect): void {
  if (n !== expect.size) throw new MailcasError('E_SHORT_WRITE', `blob ${key}: source gave ${n > expect.size ? 'more than ' : ''}${n} bytes, ${expect.size} declared`);
  if (!digest.equals(expect.digest)) throw new MailcasError('E_INTEGRITY', `blob ${key}: bytes do not match their digest`);
}

export function bufferSource(b: Buffer): PutSource {
  return { size: b.length, open: () => [b] };
}

/** Keys are lower-case hex names (BLAKE3 digests); anything else is refused. */
export const KEY_RE = /^[0-9a-f]{16,128}$/;
