import crypto from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { Store } from '../../src/store.js';
import { Spool } from '../../src/split/spool.js';
import { silentLogger } from '../../src/util/logger.js';
import { messageWith } from '../mailgen.js';
import { tmpDir } from '../helpers.js';

// A message big enough for a worker crosses to it in shared memory (no copy), and the
// canonical bytes come back moved, not copied: what is stored must still be exact.
describe('handing messages to the build workers', () => {
  it('a memory spool at or above sharedAbove is in shared memory, a smaller one is not', async () => {
    const big = Buffer.alloc(300_000, 'a');
    const shared = await Spool.from(Readable.from([big.subarray(0, 100_000), big.subarray(100_000)]), { tmpDir: tmpDir(), maxBytes: 1e9, sharedAbove: 256 * 1024 });
    const plain = await Spool.from(Readable.from([big.subarray(0, 1000)]), { tmpDir: tmpDir(), maxBytes: 1e9, sharedAbove: 256 * 1024 });
    try {
      expect(shared.origin.kind).toBe('memory');
      expect(shared.origin.kind === 'memory' && shared.origin.buffer.buffer instanceof SharedArrayBuffer).toBe(true);
      expect(shared.origin.kind === 'memory' && shared.origin.buffer.equals(big)).toBe(true);
      expect(plain.origin.kind === 'memory' && plain.origin.buffer.buffer instanceof SharedArrayBuffer).toBe(false);
    } finally {
      shared.dispose();
      plain.dispose();
    }
  });

  it('streamed messages prepared in a worker (shared spool, moved blob bytes) read back exactly, their blobs deduplicated', async () => {
    const store = await Store.init(tmpDir(), { logger: silentLogger, workers: 2, offloadAbove: 64 * 1024 });
    try {
      const att = [crypto.randomBytes(200_000), crypto.randomBytes(700_000), crypto.randomBytes(90_000)];
      const msgs = Array.from({ length: 12 }, (_, i) => messageWith(att[i % att.length], { subject: `m${i}`, name: `f${i % att.length}.bin` }));
      const ids = await Promise.all(msgs.map((m, i) => store.ingest(Readable.from([m.subarray(0, 4096), m.subarray(4096)]), { user: `u${i % 3}` })));
      for (let i = 0; i < msgs.length; i++) expect((await store.fetchBuffer(ids[i].id)).equals(msgs[i])).toBe(true);
      // one blob per distinct attachment, however many messages carry it
      expect(ids.filter((r) => r.newBlobs > 0).length).toBe(att.length);
      const check = await store.check();
      expect(check.consistent).toBe(true);
    } finally {
      await store.close();
    }
  });
});
