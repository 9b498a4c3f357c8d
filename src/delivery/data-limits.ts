import { Transform, type TransformCallback } from 'node:stream';
import { MailcasError } from '../errors.js';

export interface DataLimits {
  /** Longest line, in bytes without its line break. */
  maxLineBytes: number;
  /** Largest top-level header block (up to the blank line that ends it). */
  maxHeaderBytes: number;
}

/**
 * Passes message bytes through unchanged while checking them against the
 * delivery's limits; fails (E_TOO_LARGE, naming the limit) as soon as one
 * is passed. Streaming: a 200 MB message is checked without being held.
 */
export class DataLimiter extends Transform {
  /** Bytes of the current line so far (across chunks). */
  private line = 0;
  /** The byte before the current position (-1 at the start). */
  private last = -1;
  private headerDone = false;
  private seen = 0;

  constructor(private readonly limits: DataLimits) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    for (let i = 0; i < chunk.length; ) {
      const lf = chunk.indexOf(0x0a, i);
      const end = lf < 0 ? chunk.length : lf;
      this.line += end - i;
      if (end > i) this.last = chunk[end - 1];
      const content = lf >= 0 && this.line > 0 && this.last === 0x0d ? this.line - 1 : this.line;
      if (content > this.limits.maxLineBytes && (lf >= 0 || this.line > this.limits.maxLineBytes + 1)) {
        return cb(limit('a line is longer than', this.limits.maxLineBytes, 'line'));
      }
      if (!this.headerDone) {
        if (lf >= 0 && content === 0) this.headerDone = true; // the blank line
        else if (this.seen + end >= this.limits.maxHeaderBytes) return cb(limit('the header is larger than', this.limits.maxHeaderBytes, 'header'));
      }
      if (lf < 0) break;
      this.line = 0;
      this.last = 0x0a;
      i = lf + 1;
    }
    this.seen += chunk.length;
    cb(null, chunk);
  }
}

function limit(what: string, n: number, name: string): MailcasError {
  return new MailcasError('E_TOO_LARGE', `${what} ${n} bytes (the limit is ${n})`, { data: { limit: n, what: name } });
}
