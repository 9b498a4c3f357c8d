import { createRequire } from 'node:module';
import { SMTPStream } from 'smtp-server/lib/smtp-stream.js';

type Done = (err?: Error | null) => void;

/** What the feed touches of the smtp-server package's parser (its private state, pinned by the exact version in package.json). */
interface ParserState {
  _dataStream: (NodeJS.WritableStream & { writable: boolean; destroyed: boolean }) | null;
  _lastBytes: Buffer | false;
  _atDataStart: boolean;
  _countDataBytes(len: number): void;
  _endDataMode(chunk: Buffer | false, remainder: Buffer, done: Done): void;
  _feedDataStream(chunk: Buffer, done: Done): void;
}

const END = Buffer.from('\r\n.\r\n');
const LF_DOT = Buffer.from('\n.');

/**
 * The smtp-server package's DATA parser (SMTPStream#_feedDataStream) with
 * its byte-by-byte search for a dot at the start of a line replaced by
 * Buffer#indexOf: the same decisions at the same offsets (the end marker,
 * escape dots, the bytes kept back across chunks, the start-of-DATA rule),
 * found natively instead of in a JavaScript loop over every byte. Profiled
 * on `mailcas lmtp` it was the largest single cost on the event loop (about
 * 0.7 ms of a 300 KB message); test/delivery/data-feed.test.ts checks it
 * against the package's own method on random input and chunkings.
 */
export function feedDataStream(this: ParserState, input: Buffer, done: Done): void {
  const dataStream = this._dataStream!;
  let chunk = input;
  if (this._lastBytes && this._lastBytes.length) {
    chunk = Buffer.concat([this._lastBytes, chunk], this._lastBytes.length + chunk.length);
    this._lastBytes = false;
  }
  let len = chunk.length;
  // a "." line at the very start ends an empty message (only while nothing was consumed: see the package)
  if (this._atDataStart && len >= 3 && chunk[0] === 0x2e && chunk[1] === 0x0d && chunk[2] === 0x0a) {
    this._endDataMode(false, chunk.subarray(3), done);
    return;
  }
  if (this._atDataStart && len >= 2 && chunk[0] === 0x2e && chunk[1] === 0x2e) {
    chunk = chunk.subarray(1);
    len--;
    this._atDataStart = false;
  }
  // each "\n." at p is a dot at i = p + 1 that starts a line; the package looks at i in [2, len - 2)
  for (let p = chunk.indexOf(LF_DOT, 1); p >= 0 && p + 1 < len - 2; p = chunk.indexOf(LF_DOT, p + 1)) {
    const i = p + 1;
    if (chunk.compare(END, 0, END.length, i - 2, i + 3) === 0) {
      const buf = chunk.subarray(0, i); // the CRLF that ends the last line is content
      this._countDataBytes(buf.length);
      this._endDataMode(buf, chunk.subarray(i + 3), done);
      return;
    }
    if (chunk[i + 1] === 0x2e) {
      // an escape dot: emit what comes before it, go on after it
      const buf = chunk.subarray(0, i);
      this._lastBytes = false;
      this._countDataBytes(buf.length);
      if (dataStream.writable) dataStream.write(buf);
      const rest = chunk.subarray(i + 1);
      setImmediate(() => this._feedDataStream(rest, done));
      return;
    }
  }
  // keep the last bytes back: the end marker may straddle this chunk and the next
  this._lastBytes = chunk.length < 4 ? chunk : chunk.subarray(chunk.length - 4);
  if (this._lastBytes.length >= chunk.length) return done();
  const buf = chunk.subarray(0, chunk.length - this._lastBytes.length);
  this._countDataBytes(buf.length);
  if (!dataStream.writable) return done();
  if (dataStream.write(buf) || dataStream.destroyed) return done();
  // wait for drain; a stream the application destroys never drains, it only closes
  const onDrain = (): void => {
    dataStream.removeListener('drain', onDrain);
    dataStream.removeListener('close', onDrain);
    done();
  };
  dataStream.once('drain', onDrain);
  dataStream.once('close', onDrain);
}

/** The package's own method, kept for the differential test. */
export const packageFeedDataStream = SMTPStream.prototype._feedDataStream;

/** The smtp-server version whose parser state feedDataStream was written against (package.json pins it). */
export const DATA_FEED_FOR_VERSION = '3.21.6';

let installed = false;

/**
 * Makes every SMTPStream (every LMTP session's parser) use feedDataStream,
 * when the installed smtp-server is the version it was written for; any
 * other version keeps its own method (slower, never wrong). Returns whether
 * it is installed.
 */
export function installDataFeed(): boolean {
  if (installed) return true;
  const version = (createRequire(import.meta.url)('smtp-server/package.json') as { version: string }).version;
  if (version !== DATA_FEED_FOR_VERSION || typeof SMTPStream.prototype._feedDataStream !== 'function') return false;
  installed = true;
  (SMTPStream.prototype as unknown as ParserState)._feedDataStream = feedDataStream;
  return true;
}
