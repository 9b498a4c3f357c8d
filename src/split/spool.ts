import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Readable } from 'node:stream';
import { MailcasError } from '../errors.js';
import { hashBuffer, newHasher } from '../util/hash.js';
import { SPOOL_MEMORY_BYTES } from '../limits.js';
import { FileSource, MemorySource, type ByteSource } from './byte-source.js';
import { removeLater, tempName } from '../util/temp-files.js';

/** A message already in a file (or a byte range of one, e.g. in an mbox): read in place, never copied. */
export interface FileInput {
  path: string;
  start?: number;
  /** exclusive; default: end of file */
  end?: number;
}

export type MessageInput = Buffer | Uint8Array | Readable | AsyncIterable<Uint8Array> | FileInput;

/** Where a spool's bytes are. */
export type SpoolOrigin = { kind: 'memory'; buffer: Buffer } | { kind: 'file'; path: string; start: number; end: number };

export function isFileInput(x: unknown): x is FileInput {
  return typeof x === 'object' && x !== null && typeof (x as FileInput).path === 'string' && !(Symbol.asyncIterator in x);
}

export interface SpoolOptions {
  /** Directory for the temp file of large messages. */
  tmpDir: string;
  /** Refuse input above this many bytes (E_TOO_LARGE). */
  maxBytes: number;
  /** Keep in memory up to this many bytes. */
  memoryBytes?: number;
  /** A memory spool at least this large is built in shared memory, so a worker thread can take it without a copy (default: never). */
  sharedAbove?: number;
}

/** A buffer of `size` bytes: in shared memory when `shared`, else an ordinary one (from Node's pool when small). */
function allocSpool(size: number, shared: boolean): Buffer {
  return shared ? Buffer.from(new SharedArrayBuffer(size)) : Buffer.allocUnsafe(size);
}

/**
 * One incoming message, read once from its stream: its BLAKE3 and size are
 * computed on the way in; small messages stay in memory, large ones are
 * written to a temp file, so memory stays bounded whatever the size.
 */
export class Spool {
  private constructor(
    readonly source: ByteSource,
    readonly hash: Buffer,
    private readonly tmpPath: string | null,
    private readonly fd: number | null,
    /** Where the bytes are, for another thread to open them: a buffer, or a byte range of a file. */
    readonly origin: SpoolOrigin,
  ) {}

  /**
   * A spool over bytes already hashed elsewhere (a worker taking over the
   * main thread's spool). dispose closes what this opened and removes nothing.
   */
  static adopt(origin: SpoolOrigin, hash: Buffer): Spool {
    if (origin.kind === 'memory') return new Spool(new MemorySource(origin.buffer), hash, null, null, origin);
    const fd = fs.openSync(origin.path, 'r');
    return new Spool(new FileSource(fd, origin.end - origin.start, 1024 * 1024, origin.start), hash, null, fd, origin);
  }

  get size(): number {
    return this.source.size;
  }

  static async from(input: MessageInput, opts: SpoolOptions): Promise<Spool> {
    const memLimit = opts.memoryBytes ?? SPOOL_MEMORY_BYTES;
    if (isFileInput(input)) return Spool.fromFile(input, opts, memLimit);
    if (Buffer.isBuffer(input) || input instanceof Uint8Array) {
      const buf = Buffer.isBuffer(input) ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength);
      if (buf.length > opts.maxBytes) throw tooLarge(opts.maxBytes);
      return new Spool(new MemorySource(buf), hashBuffer(buf), null, null, { kind: 'memory', buffer: buf });
    }
    const hasher = newHasher();
    const parts: Buffer[] = [];
    let size = 0;
    let fd: number | null = null;
    let tmpPath: string | null = null;
    try {
      for await (const c of input as AsyncIterable<Uint8Array>) {
        const b = Buffer.isBuffer(c) ? c : Buffer.from(c);
        size += b.length;
        if (size > opts.maxBytes) throw tooLarge(opts.maxBytes);
        hasher.update(b);
        if (fd === null) {
          parts.push(b);
          if (size > memLimit) {
            fs.mkdirSync(opts.tmpDir, { recursive: true });
            tmpPath = path.join(opts.tmpDir, tempName('spool'));
            fd = fs.openSync(tmpPath, 'w+', 0o600);
            for (const p of parts) await writeAll(fd, p);
            parts.length = 0;
          }
        } else {
          await writeAll(fd, b);
        }
      }
    } catch (e) {
      if (fd !== null) fs.closeSync(fd);
      if (tmpPath) fs.rmSync(tmpPath, { force: true });
      if (e instanceof MailcasError) throw e;
      throw new MailcasError('E_USAGE', `reading the message failed: ${(e as Error).message}`, { cause: e, transient: true });
    }
    const digest = hasher.digest();
    if (fd === null) {
      const buf = allocSpool(size, size >= (opts.sharedAbove ?? Infinity));
      let at = 0;
      for (const p of parts) at += p.copy(buf, at);
      return new Spool(new MemorySource(buf), digest, null, null, { kind: 'memory', buffer: buf });
    }
    return new Spool(new FileSource(fd, size), digest, tmpPath, fd, { kind: 'file', path: tmpPath!, start: 0, end: size });
  }

  /** Small files are read into memory; large ones are parsed in place (hashed first, in one pass). */
  private static fromFile(input: FileInput, opts: SpoolOptions, memLimit: number): Spool {
    let fd: number;
    try {
      fd = fs.openSync(input.path, 'r');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') throw new MailcasError('E_NOT_FOUND', `no such file: ${input.path}`, { cause: e });
      const why = code === 'EACCES' || code === 'EPERM' ? 'permission denied' : (code ?? (e as Error).message);
      throw new MailcasError('E_SOURCE', `cannot read ${input.path}: ${why}`, { cause: e });
    }
    try {
      const st = fs.fstatSync(fd);
      if (!st.isFile()) throw new MailcasError('E_SOURCE', `${input.path} is ${st.isDirectory() ? 'a directory' : 'not a regular file'}, not a message file`);
      const fileSize = st.size;
      const start = Math.min(input.start ?? 0, fileSize);
      const end = Math.max(start, Math.min(input.end ?? fileSize, fileSize));
      const size = end - start;
      if (size > opts.maxBytes) throw tooLarge(opts.maxBytes);
      const src = new FileSource(fd, size, 1024 * 1024, start);
      if (size <= memLimit) {
        const buf = allocSpool(size, size >= (opts.sharedAbove ?? Infinity));
        src.read(0, size).copy(buf);
        fs.closeSync(fd);
        return new Spool(new MemorySource(buf), hashBuffer(buf), null, null, { kind: 'memory', buffer: buf });
      }
      // one reused buffer: hashing a large file must not leave a trail of garbage windows behind
      const hasher = newHasher();
      const b = Buffer.allocUnsafe(Math.min(size, 1024 * 1024));
      for (let pos = 0; pos < size; ) {
        const n = fs.readSync(fd, b, 0, Math.min(b.length, size - pos), start + pos);
        if (n === 0) break;
        hasher.update(n === b.length ? b : b.subarray(0, n));
        pos += n;
      }
      return new Spool(src, hasher.digest(), null, fd, { kind: 'file', path: input.path, start, end });
    } catch (e) {
      fs.closeSync(fd);
      throw e;
    }
  }

  /** Removes the temp file, if any. */
  dispose(): void {
    if (this.fd !== null) fs.closeSync(this.fd);
    if (this.tmpPath) removeLater(this.tmpPath);
  }
}

const writeAsync = promisify(fs.write);

/**
 * Appends to the spool file on the thread pool: a write the kernel holds up
 * (dirty pages of a large message being flushed) must not stall every other
 * session's event loop (a synchronous write here held it up to 140 ms during
 * a 200 MB delivery). The input waits meanwhile, which bounds memory.
 */
async function writeAll(fd: number, b: Buffer): Promise<void> {
  let off = 0;
  while (off < b.length) off += (await writeAsync(fd, b, off, b.length - off, null)).bytesWritten;
}

function tooLarge(max: number): MailcasError {
  return new MailcasError('E_TOO_LARGE', `message exceeds the size limit of ${max} bytes`, { data: { limit: max } });
}
