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
    // search only up to limit (a view, no copy): a search must never cost more than the range it was given
    return limit >= this.buf.length ? this.buf.indexOf(needle, from) : this.buf.subarray(0, limit).indexOf(needle, from);
  }
  *chunks(start: number, end: number, chunk = IO_CHUNK_BYTES): Iterable<Buffer> {
    for (let p = start; p < end; p += chunk) yield this.buf.subarray(p, Math.min(end, p + chunk));
  }
}

/** Bytes kept on the near side of a window load (at most 1/16 of the window). */
const WINDOW_SLACK = 64 * 1024;

/**
 * A file-backed source with one window (bounded memory whatever the file
 * size). Every access pattern of the tokenizer and the canonicalisers costs
 * about one window load per window of input: reads and searches inside the
 * window never reload it, a search goes on from where the window ends, and
 * a read just before the window (scanning backwards, e.g. for trailing
 * whitespace) loads the window that ends there.
 */
export class FileSource implements ByteSource {
  private win: Buffer = Buffer.alloc(0);
  private winStart = 0;
  /** Window loads so far (tests check that access costs stay linear). */
  loads = 0;
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

  private get winEnd(): number {
    return this.winStart + this.win.length;
  }

  /**
   * Loads a window holding [start, end) (end - start <= windowBytes), with
   * some slack on the side the access came from: a forward load keeps the
   * bytes just before `start` (the tokenizer looks back one or two bytes for
   * a line break), a backward load the bytes just after `end`.
   */
  private load(start: number, end: number): void {
    const backwards = start < this.winStart && this.win.length > 0;
    const slack = Math.min(WINDOW_SLACK, this.windowBytes >> 4);
    let ws = backwards ? end + slack - this.windowBytes : start - slack;
    ws = Math.max(0, Math.min(start, Math.max(ws, end - this.windowBytes)));
    this.winStart = ws;
    this.win = this.fill(ws, Math.min(this.windowBytes, this.size - ws));
    this.loads++;
  }

  read(start: number, end: number): Buffer {
    end = Math.min(end, this.size);
    if (end <= start) return Buffer.alloc(0);
    if (start >= this.winStart && end <= this.winEnd) return this.win.subarray(start - this.winStart, end - this.winStart);
    if (end - start > this.windowBytes) return this.fill(start, end - start);
    this.load(start, end);
    return this.win.subarray(start - this.winStart, end - this.winStart);
  }

  indexOf(needle: Buffer, from: number, limit = this.size): number {
    limit = Math.min(limit, this.size);
    let p = from;
    while (p + needle.length <= limit) {
      if (p < this.winStart || p + needle.length > this.winEnd) this.load(p, p + needle.length);
      const searchEnd = Math.min(limit, this.winEnd);
      const i = this.win.subarray(0, searchEnd - this.winStart).indexOf(needle, p - this.winStart);
      if (i >= 0) return this.winStart + i;
      if (searchEnd >= limit) return -1;
      p = searchEnd - needle.length + 1; // overlap by the needle, then the next window
      this.load(p, p + needle.length);
    }
    return -1;
  }

  *chunks(start: number, end: number, chunk = IO_CHUNK_BYTES): Iterable<Buffer> {
    for (let p = start; p < end; p += chunk) yield this.read(p, Math.min(end, p + chunk));
  }
}
