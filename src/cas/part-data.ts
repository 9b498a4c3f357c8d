import fs from 'node:fs';
import path from 'node:path';
import type { CanonicalSink } from '../recipe/canonicalizer.js';
import { hashBuffer, newHasher, type Hasher } from '../util/hash.js';
import { IO_CHUNK_BYTES, PART_MEMORY_BYTES, VERIFY_CHUNK_BYTES } from '../limits.js';
import { removeLater, tempName } from '../util/temp-files.js';

const SAMPLE_BYTES = 64 * 1024;

/** The canonical bytes of one part, produced during ingest: in memory when small, else in a temp file. */
export interface PartData {
  readonly size: number;
  /** Blob key: BLAKE3 of the canonical bytes, keyed with the dedup domain key when there is one. */
  readonly key: Buffer;
  /** Plain BLAKE3 of the canonical bytes. */
  readonly digest: Buffer;
  /** Set when the bytes are in memory. */
  readonly buffer: Buffer | null;
  /** Set when the bytes are in a temp file (complete, never written again). */
  readonly file: string | null;
  /**
   * Plain BLAKE3 of each VERIFY_CHUNK_BYTES chunk, concatenated, for parts
   * over one chunk (null otherwise): reads verify each chunk before any of
   * its bytes go out.
   */
  readonly chunkDigests: Buffer | null;
  /** Analysis only: the first bytes of a part whose bytes were discarded (to estimate compression). */
  readonly sample?: Buffer;
  chunks(): Iterable<Buffer>;
  dispose(): void;
}

/** Collects canonical bytes, spilling to a temp file past PART_MEMORY_BYTES; bounded memory whatever the part size. */
export class PartSink implements CanonicalSink {
  private parts: Buffer[] = [];
  private size = 0;
  private fd: number | null = null;
  private file: string | null = null;
  private keyed: Hasher | null = null;
  private plain: Hasher | null = null;
  private chunker: ChunkHasher | null = null;

  private discarded = false;
  private sample: Buffer | undefined;

  /**
   * `discardAbove`: keep at most this many bytes and never spill to disk
   * (analysis only needs the hash and size of larger parts).
   */
  constructor(
    private readonly tmpDir: string,
    private readonly domainKey: Buffer | null,
    private readonly memoryBytes = PART_MEMORY_BYTES,
    private readonly discardAbove: number | null = null,
  ) {
    this.reset();
  }

  write(b: Buffer, transient = false): void {
    if (!b.length) return;
    this.size += b.length;
    if (this.plain) {
      // streaming (spilled or discarding): hash as the bytes go by
      this.plain.update(b);
      this.keyed?.update(b);
      this.chunker?.update(b);
      if (this.fd !== null) writeAll(this.fd, b);
      return;
    }
    // kept without a copy unless the writer reuses it (fresh buffers and views of a spool in memory are never rewritten)
    this.parts.push(transient ? Buffer.from(b) : b);
    if (this.discardAbove !== null && this.size > this.discardAbove) {
      this.startHashing();
      this.sample = Buffer.concat(this.parts).subarray(0, SAMPLE_BYTES);
      this.parts = [];
      this.discarded = true;
    } else if (this.discardAbove === null && this.size > this.memoryBytes) {
      this.startHashing();
      fs.mkdirSync(this.tmpDir, { recursive: true });
      this.file = path.join(this.tmpDir, tempName('part'));
      this.fd = fs.openSync(this.file, 'w+', 0o600);
      for (const p of this.parts) writeAll(this.fd, p);
      this.parts = [];
    }
  }

  /** Small parts are hashed once at the end (one native call); large ones incrementally from here on. */
  private startHashing(): void {
    this.plain = newHasher();
    this.keyed = this.domainKey ? newHasher(this.domainKey) : null;
    this.chunker = new ChunkHasher();
    for (const p of this.parts) {
      this.plain.update(p);
      this.keyed?.update(p);
      this.chunker.update(p);
    }
  }

  reset(): void {
    this.closeFile();
    this.parts = [];
    this.size = 0;
    this.discarded = false;
    this.sample = undefined;
    this.plain = null;
    this.keyed = null;
    this.chunker = null;
  }

  private closeFile(): void {
    if (this.fd !== null) fs.closeSync(this.fd);
    if (this.file) removeLater(this.file);
    this.fd = null;
    this.file = null;
  }

  finish(): PartData {
    const size = this.size;
    if (!this.plain) {
      // held in memory: hashed only if asked (an inline part never is)
      return new MemoryPart(this.parts.length === 1 ? this.parts[0] : Buffer.concat(this.parts, size), this.domainKey);
    }
    const digest = this.plain.digest();
    const key = this.keyed ? this.keyed.digest() : digest;
    const chunkDigests = this.chunker && size > VERIFY_CHUNK_BYTES ? this.chunker.finish() : null;
    if (this.discarded) {
      return {
        size,
        key,
        digest,
        buffer: null,
        file: null,
        chunkDigests,
        sample: this.sample,
        chunks: () => {
          throw new Error('part bytes were discarded (analysis)');
        },
        dispose: () => {},
      };
    }
    // hashing as it goes and not discarded: spilled to a file, which the part now owns
    fs.closeSync(this.fd!);
    const file = this.file!;
    this.fd = null;
    this.file = null;
    return new FilePart(file, size, key, digest, chunkDigests);
  }
}

/** A part in memory (at most one chunk): its hashes are computed on first use. */
export class MemoryPart implements PartData {
  private k: Buffer | null;
  private d: Buffer | null;
  readonly file = null;
  readonly chunkDigests = null;
  constructor(
    readonly buffer: Buffer,
    private readonly domainKey: Buffer | null,
    known?: { key: Buffer; digest: Buffer },
  ) {
    this.k = known?.key ?? null;
    this.d = known?.digest ?? null;
  }
  get size(): number {
    return this.buffer.length;
  }
  get digest(): Buffer {
    return (this.d ??= hashBuffer(this.buffer));
  }
  get key(): Buffer {
    return (this.k ??= this.domainKey ? hashBuffer(this.buffer, this.domainKey) : this.digest);
  }
  chunks(): Buffer[] {
    return [this.buffer];
  }
  dispose(): void {}
}

/**
 * A part in a complete temp file, named by path (so another thread can
 * take it over); dispose removes the file.
 */
export class FilePart implements PartData {
  readonly buffer = null;
  constructor(
    readonly file: string,
    readonly size: number,
    readonly key: Buffer,
    readonly digest: Buffer,
    readonly chunkDigests: Buffer | null,
  ) {}
  *chunks(): Iterable<Buffer> {
    const fd = fs.openSync(this.file, 'r');
    try {
      const b = Buffer.allocUnsafe(IO_CHUNK_BYTES);
      for (let pos = 0; pos < this.size; ) {
        const n = fs.readSync(fd, b, 0, Math.min(b.length, this.size - pos), pos);
        if (n === 0) break;
        pos += n;
        yield Buffer.from(b.subarray(0, n));
      }
    } finally {
      fs.closeSync(fd);
    }
  }
  dispose(): void {
    removeLater(this.file);
  }
}

function writeAll(fd: number, b: Buffer): void {
  let off = 0;
  while (off < b.length) off += fs.writeSync(fd, b, off, b.length - off);
}

/** BLAKE3 of each VERIFY_CHUNK_BYTES chunk of a byte stream written in pieces of any size. */
export class ChunkHasher {
  private h = newHasher();
  private fill = 0;
  private readonly out: Buffer[] = [];

  update(b: Buffer): void {
    let off = 0;
    while (off < b.length) {
      const take = Math.min(b.length - off, VERIFY_CHUNK_BYTES - this.fill);
      this.h.update(off === 0 && take === b.length ? b : b.subarray(off, off + take));
      this.fill += take;
      off += take;
      if (this.fill === VERIFY_CHUNK_BYTES) {
        this.out.push(this.h.digest());
        this.h = newHasher();
        this.fill = 0;
      }
    }
  }

  finish(): Buffer {
    if (this.fill > 0) this.out.push(this.h.digest());
    return Buffer.concat(this.out);
  }
}
