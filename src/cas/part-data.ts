import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import type { CanonicalSink } from '../recipe/canonicalizer.js';
import { newHasher, type Hasher } from './hash.js';
import { IO_CHUNK_BYTES, PART_MEMORY_BYTES } from '../limits.js';

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
  chunks(): Iterable<Buffer>;
  dispose(): void;
}

/** Collects canonical bytes, spilling to a temp file past PART_MEMORY_BYTES; bounded memory whatever the part size. */
export class PartSink implements CanonicalSink {
  private parts: Buffer[] = [];
  private size = 0;
  private fd: number | null = null;
  private file: string | null = null;
  private keyed!: Hasher | null;
  private plain!: Hasher;

  private discarded = false;

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

  write(b: Buffer): void {
    if (!b.length) return;
    this.plain.update(b);
    this.keyed?.update(b);
    this.size += b.length;
    if (this.fd !== null) {
      writeAll(this.fd, b);
      return;
    }
    if (this.discardAbove !== null) {
      if (this.size > this.discardAbove) {
        this.parts = [];
        this.discarded = true;
      } else this.parts.push(Buffer.from(b));
      return;
    }
    this.parts.push(Buffer.from(b)); // copy: b may be a view of a reused window
    if (this.size > this.memoryBytes) {
      fs.mkdirSync(this.tmpDir, { recursive: true });
      this.file = path.join(this.tmpDir, `part-${process.pid}-${crypto.randomBytes(8).toString('hex')}`);
      this.fd = fs.openSync(this.file, 'w+', 0o600);
      for (const p of this.parts) writeAll(this.fd, p);
      this.parts = [];
    }
  }

  reset(): void {
    this.closeFile();
    this.parts = [];
    this.size = 0;
    this.discarded = false;
    this.plain = newHasher();
    this.keyed = this.domainKey ? newHasher(this.domainKey) : null;
  }

  private closeFile(): void {
    if (this.fd !== null) fs.closeSync(this.fd);
    if (this.file) fs.rmSync(this.file, { force: true });
    this.fd = null;
    this.file = null;
  }

  finish(): PartData {
    const digest = this.plain.digest();
    const key = this.keyed ? this.keyed.digest() : digest;
    const size = this.size;
    if (this.discarded) {
      return {
        size,
        key,
        digest,
        buffer: null,
        file: null,
        chunks: () => {
          throw new Error('part bytes were discarded (analysis)');
        },
        dispose: () => {},
      };
    }
    if (this.fd === null) {
      const buffer = this.parts.length === 1 ? this.parts[0] : Buffer.concat(this.parts, size);
      return { size, key, digest, buffer, file: null, chunks: () => [buffer], dispose: () => {} };
    }
    const fd = this.fd;
    const file = this.file!;
    this.fd = null;
    this.file = null;
    return {
      size,
      key,
      digest,
      buffer: null,
      file,
      *chunks() {
        const b = Buffer.allocUnsafe(IO_CHUNK_BYTES);
        for (let pos = 0; pos < size; ) {
          const n = fs.readSync(fd, b, 0, Math.min(b.length, size - pos), pos);
          if (n === 0) break;
          pos += n;
          yield Buffer.from(b.subarray(0, n));
        }
      },
      dispose() {
        fs.closeSync(fd);
        fs.rmSync(file, { force: true });
      },
    };
  }
}

function writeAll(fd: number, b: Buffer): void {
  let off = 0;
  while (off < b.length) off += fs.writeSync(fd, b, off, b.length - off);
}
