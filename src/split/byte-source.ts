import fs from 'node:fs';
import { IO_CHUNK_BYTES } from '../limits.js';

/**
 * Random-access bytes of one spooled message. The tokenizer and the part
 * canonicalisers only ever see offsets into a ByteSource, so every byte of
 * the input belongs to exactly one segment by construction.
 */
export interface ByteSource {
  readonly size: number;
  /** Bytes [start, end). May be a view: callers must not keep it across calls unless they copy. */
  read(start: number, end: number): Buffer;
  /** First position >= from (and < limit) where needle starts; -1 when none. */
  indexOf(needle: Buffer, from: number, limit?: number): number;
  /** Streams bytes [start, end) in chunks of at most `chunk` bytes (views, valid until the next step). */
  chunks(start: number, end: number, chunk?: number): Iterable<Buffer>;
}

export class MemorySource implements ByteSource {
  constructor(readonly buf: Buffer) {}
  get size(): number {
    return this.buf.length;
  }
  read(start: number, end: number): Buffer {
    return this.buf.subarray(start, end);
  }
  indexOf(needle: Buffer, from: number, limit = this.buf.length): number {
    const i = this.buf.indexOf(needle, from);
    return i >= 0 && i + needle.length <= limit ? i : -1;
  }
  *chunks(start: number, end: number, chunk = IO_CHUNK_BYTES): Iterable<Buffer> {
    for (let p = start; p < end; p += chunk) yield this.buf.subarray(p, Math.min(end, p + chunk));
  }
}

/** A file-backed source with one read-ahead window (bounded memory whatever the file size). */
export class FileSource implements ByteSource {
  private win: Buffer = Buffer.alloc(0);
  private winStart = 0;
  /** Bytes [base, base + size) of the file open as fd. */
  constructor(private readonly fd: number, readonly size: number, private readonly windowBytes = 1024 * 1024, private readonly base = 0) {}

  private fill(start: number, len: number): Buffer {
    const b = Buffer.allocUnsafe(len);
    let got = 0;
    while (got < len) {
      const n = fs.readSync(this.fd, b, got, len - got, this.base + start + got);
      if (n === 0) break;
      got += n;
    }
    return got === len ? b : b.subarray(0, got);
  }

  read(start: number, end: number): Buffer {
    end = Math.min(end, this.size);
    if (end <= start) return Buffer.alloc(0);
    if (start >= this.winStart && end <= this.winStart + this.win.length) {
      return this.win.subarray(start - this.winStart, end - this.winStart);
    }
    if (end - start > this.windowBytes) return this.fill(start, end - start);
    this.winStart = start;
    this.win = this.fill(start, Math.min(this.windowBytes, this.size - start));
    return this.win.subarray(0, end - start);
  }

  indexOf(needle: Buffer, from: number, limit = this.size): number {
    limit = Math.min(limit, this.size);
    const step = this.windowBytes;
    for (let p = from; p + needle.length <= limit; p += step - needle.length + 1) {
      const end = Math.min(limit, p + step);
      const b = this.read(p, end);
      const i = b.indexOf(needle);
      if (i >= 0) return p + i;
      if (end === limit) break;
    }
    return -1;
  }

  *chunks(start: number, end: number, chunk = IO_CHUNK_BYTES): Iterable<Buffer> {
    for (let p = start; p < end; p += chunk) yield this.read(p, Math.min(end, p + chunk));
  }
}
