import fs from 'node:fs';
import { IO_CHUNK_BYTES } from '../limits.js';

/**
 * Random-access bytes of one spooled message. The tokenizer and the part
 * canonicalisers only ever see offsets into a ByteSource, so every byte of
 * the input belongs to exactly one segment by construction.
 */
export interface ByteSource {
  readonly size: number;
  /**
   * Views of this source stay valid for good (a message in memory). When
   * false (a file read through one reused window), a view is valid only
   * until the next call on the source: whoever keeps one copies it.
   */
  readonly stable: boolean;
  /** Bytes [start, end). May be a view: callers must not keep it across calls unless they copy. */
  read(start: number, end: number): Buffer;
  /** First position >= from (and < limit) where needle starts; -1 when none. */
  indexOf(needle: Buffer, from: number, limit?: number): number;
  /** Streams bytes [start, end) in chunks of at most `chunk` bytes (views, valid until the next step). */
  chunks(start: number, end: number, chunk?: number): Iterable<Buffer>;
}

export class MemorySource implements ByteSource {
  readonly stable = true;
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
  readonly stable = false;
  private win: Buffer = Buffer.alloc(0);
  /**
   * The window's memory, read into again at every load: a fresh megabyte
   * per load left hundreds of megabytes of garbage behind a large message,
   * which V8 collects only under external-memory pressure (peak RSS of a
   * 200 MB ingest: ~20 MB more).
   */
  private winBuf: Buffer | null = null;
  private winStart = 0;
  /** Window loads so far (tests check that access costs stay linear). */
  loads = 0;
  /** Bytes [base, base + size) of the file open as fd. */
  constructor(private readonly fd: number, readonly size: number, private readonly windowBytes = 1024 * 1024, private readonly base = 0) {}

  /** Reads [start, start + len) into `into` when given (large enough), else into a new buffer. */
  private fill(start: number, len: number, into: Buffer | null = null): Buffer {
    const b = into && into.length >= len ? into.subarray(0, len) : Buffer.allocUnsafe(len);
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
    this.winBuf ??= Buffer.allocUnsafe(Math.min(this.windowBytes, this.size));
    this.win = this.fill(ws, Math.min(this.windowBytes, this.size - ws), this.winBuf);
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
    if (needle.length * 2 > this.windowBytes) return this.indexOfLong(needle, from, limit);
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

  /**
   * A needle too long for the window (a window smaller than the longest
   * boundary, as only tests make): reads of twice its length, overlapping
   * by all but one byte of it. (The window walk would never advance.)
   */
  private indexOfLong(needle: Buffer, from: number, limit: number): number {
    const span = needle.length * 2;
    for (let p = from; p + needle.length <= limit; p += span - needle.length + 1) {
      const i = this.fill(p, Math.min(span, limit - p)).indexOf(needle);
      if (i >= 0) return p + i;
    }
    return -1;
  }

  *chunks(start: number, end: number, chunk = IO_CHUNK_BYTES): Iterable<Buffer> {
    for (let p = start; p < end; p += chunk) yield this.read(p, Math.min(end, p + chunk));
  }
}
