// FETCH primitives: bytes by range equal the slice of the message; structure, headers and sizes
// read no blob; a partial fetch of a large part reads only the chunks it needs.
import crypto from 'node:crypto';
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Store } from '../src/store.js';
import { silentLogger } from '../src/util/logger.js';
import { bodyStructure, envelope, parseSection, resolveSection } from '../src/fetch/structure.js';
import { parseFields } from '../src/fetch/header.js';
import { corpusFiles, tmpDir } from './helpers.js';
import { messageWith } from './mailgen.js';
import { freshBucket, s3Env } from './s3-env.js';

const drain = async (it: AsyncIterable<Buffer> | Iterable<Buffer>): Promise<Buffer> => {
  const parts: Buffer[] = [];
  for await (const c of it) parts.push(c);
  return Buffer.concat(parts);
};

describe('fetch by range', () => {
  it('any range of any corpus message equals the same slice of its bytes (identity, lf, base64 and quoted-printable parts, inline and blobs)', async () => {
    const s = await Store.open(tmpDir(), { logger: silentLogger, workers: 0 });
    const files = corpusFiles();
    const ids: { id: string; bytes: Buffer }[] = [];
    for (const f of files) {
      const b = fs.readFileSync(f);
      ids.push({ id: (await s.ingest(b, { user: 'u' })).id, bytes: b });
    }
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: ids.length - 1 }), fc.double({ min: 0, max: 1, noNaN: true }), fc.double({ min: 0, max: 1, noNaN: true }), async (k, x, y) => {
        const { id, bytes } = ids[k];
        const a = Math.floor(Math.min(x, y) * bytes.length);
        const b = Math.ceil(Math.max(x, y) * bytes.length);
        const got = await drain(s.access(id).bytes(a, b));
        expect(got.equals(bytes.subarray(a, b))).toBe(true);
      }),
      { numRuns: 600 },
    );
    // every message's structure comes from the metadata alone
    const before = s.readStats();
    for (const { id } of ids.slice(0, 400)) {
      const m = s.access(id);
      const tree = await m.tree();
      await bodyStructure(tree, { header: (a, b) => m.buffer(a, b) }, true);
      await envelope(parseFields(await m.buffer(tree.headerStart, tree.bodyStart)));
    }
    expect(s.readStats()).toEqual(before);
    await s.close();
  });

  const env = s3Env();
  if (process.env.MAILCAS_REQUIRE_S3 && !env) throw new Error('MAILCAS_REQUIRE_S3 is set and there is no S3 server');
  const backends = [['the filesystem', false] as const, ...(env ? [['S3 (Ceph RGW)', true] as const] : [])];
  it.each(backends)('on %s: BODY[2]<0.1024> and BINARY[2]<3000000.1000> of a 6 MB attachment read about one 1 MiB chunk, not 6 MB; structure reads nothing', async (_name, onS3) => {
    const s = await Store.open(tmpDir(), { logger: silentLogger, workers: 0, ...(onS3 ? { s3: await freshBucket() } : {}) });
    const att = crypto.randomBytes(6 * 1024 * 1024);
    const msg = messageWith(att);
    const r = await s.ingest(msg, { user: 'u' });
    const m = s.access(r.id);
    const tree = await m.tree();
    const zero = s.readStats();
    await bodyStructure(tree, { header: (a, b) => m.buffer(a, b) }, true);
    await envelope(parseFields(await m.buffer(tree.headerStart, tree.bodyStart)));
    expect(s.readStats()).toEqual(zero);
    const t = resolveSection(tree, m.size, parseSection('2')!)!;
    expect(t.kind).toBe('range');
    if (t.kind !== 'range') return;
    let before = s.readStats();
    const head = await drain(m.bytes(t.start, t.start + 1024));
    expect(head.equals(msg.subarray(t.start, t.start + 1024))).toBe(true);
    let after = s.readStats();
    expect(after.reads - before.reads).toBe(1);
    expect(after.bytes - before.bytes).toBeLessThanOrEqual(1024 * 1024);
    before = after;
    const mid = await drain(m.bytes(t.start + 5_000_000, t.start + 5_001_000));
    expect(mid.equals(msg.subarray(t.start + 5_000_000, t.start + 5_001_000))).toBe(true);
    after = s.readStats();
    expect(after.bytes - before.bytes).toBeLessThanOrEqual(2 * 1024 * 1024); // the chunk(s) the range touches
    before = after;
    const bin = await m.binary(tree.children[1], 'base64');
    expect(bin.size).toBe(att.length);
    const slice = await drain(bin.bytes(3_000_000, 3_001_000));
    expect(slice.equals(att.subarray(3_000_000, 3_001_000))).toBe(true);
    after = s.readStats();
    expect(after.bytes - before.bytes).toBeLessThanOrEqual(1024 * 1024);
    await s.close();
  });
});
