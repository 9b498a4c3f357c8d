import { MailcasError, isMailcasError } from '../errors.js';
import type { BlobLocation, BlobStore } from '../cas/blob-store.js';
import type { BlobIndex } from '../blob-index/blob-index.js';
import { placeOf } from '../blob-index/refcounts.js';
import type { RangeBlobReader } from '../reassemble/range.js';
import type { Logger } from '../util/logger.js';

export interface BlobReaderDeps {
  index: BlobIndex;
  blobStore: BlobStore;
  log: Logger;
  domainKey(domain: string): Buffer | null;
  /** False once the store is closed (a late mark is then skipped). */
  isOpen(): boolean;
}

/**
 * Verified canonical blob bytes, found where the blob index says they are.
 * A blob found missing or damaged is read again (up to three times: damage
 * in transit is not damage at rest) and then marked corrupt: the next
 * ingest of the same content rewrites it, and check lists the messages
 * that need it.
 */
export class BlobReader implements RangeBlobReader {
  constructor(private readonly deps: BlobReaderDeps) {}

  private locate(hash: Buffer, size: number): BlobLocation {
    const row = this.deps.index.row(hash);
    if (!row) throw new MailcasError('E_INTEGRITY', `blob ${hash.toString('hex')} has no metadata row`, { data: { key: hash.toString('hex') } });
    return { key: hash, codec: row.codec, size, domainKey: this.deps.domainKey(row.domain), chunks: row.chunks, ...placeOf(row) };
  }

  read(hash: Buffer, size: number): AsyncGenerator<Buffer> {
    return this.markingCorrupt(hash, this.deps.blobStore.read(this.locate(hash, size)));
  }

  readRange(hash: Buffer, size: number, start: number, end: number): AsyncGenerator<Buffer> {
    return this.markingCorrupt(hash, this.deps.blobStore.readRange(this.locate(hash, size), start, end));
  }

  private async *markingCorrupt(hash: Buffer, src: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
    try {
      yield* src;
    } catch (e) {
      if (isMailcasError(e, 'E_INTEGRITY')) await this.markCorrupt(hash);
      throw e;
    }
  }

  /** Records that a blob's object is missing or damaged (best effort: check --deep finds it again if this fails). */
  async markCorrupt(hash: Buffer): Promise<void> {
    const { index, blobStore, log } = this.deps;
    if (!this.deps.isOpen()) return;
    try {
      // a read damaged on the way (a flaky network, a bad cable) is not damage at rest: read it again (up to
      // three times) before saying the object is damaged
      const row = index.row(hash);
      for (let i = 0; row && i < 3; i++) {
        if ((await blobStore.scan({ key: hash, codec: row.codec, size: row.size, domainKey: this.deps.domainKey(row.domain), ...placeOf(row) })).ok) {
          log.warn('blob-read-damaged-in-transit', { key: hash.toString('hex') });
          return;
        }
      }
    } catch {
      // the second read failed too: mark it
    }
    try {
      await index.markCorrupt(hash);
      log.info('blob-marked-corrupt', { key: hash.toString('hex') }); // the read's own error says what failed
    } catch (e) {
      log.warn('blob-corrupt-unmarked', { key: hash.toString('hex'), error: (e as Error).message });
    }
  }
}
