// Inputs whose cost used to be out of proportion to their size (fuzzing found them).
// Costs are asserted as counts and limits, never as wall times (bench/hostile.ts measures times).
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Store } from '../src/store.js';
import { FileSource } from '../src/split/byte-source.js';
import { buildMessage } from '../src/ingest/build-message.js';
import { parseParamValue } from '../src/split/header-fields.js';
import { DEFAULT_MAX_PARTS } from '../src/limits.js';
import { silentLogger } from '../src/util/logger.js';
import { runCli, tmpDir } from './helpers.js';
import { hostileShapes } from './hostile-shapes.js';

const open = (dir: string, extra: Partial<Parameters<typeof Store.open>[1]> = {}) => Store.open(dir, { logger: silentLogger, ...extra });

describe('hostile input', () => {
  it('an RFC 2231 section index of 4294967294 is a literal name, not a range to walk', { timeout: 10_000 }, async () => {
    const msg = Buffer.from('Content-Type: text/plain; name*4294967294=x\r\n\r\nhi\r\n');
    expect({ ...parseParamValue('text/plain; name*4294967294=x').params }).toEqual({ 'name*4294967294': 'x' });
    expect({ ...parseParamValue('text/plain; name*1=b; name*0=a; name*999=c; name*1000=d').params }).toEqual({ name: 'abc', 'name*1000': 'd' });
    const s = await open(tmpDir());
    const r = await s.ingest(msg, { user: 'u' });
    expect((await s.fetchBuffer(r.id)).equals(msg)).toBe(true);
    await s.close();
  });

  it('a large message read from a file costs about one window load per MB whatever its shape (dash lines, header lines, tiny parts)', () => {
    const dir = tmpDir();
    for (const [name, make] of Object.entries(hostileShapes)) {
      if (name === 'emptyParts') continue; // refused by the parts limit long before its size matters (next test)
      const msg = make(3_000_000);
      const file = path.join(dir, name);
      fs.writeFileSync(file, msg);
      const fd = fs.openSync(file, 'r');
      try {
        const src = new FileSource(fd, msg.length);
        const built = buildMessage(src, { tmpDir: dir, inlineThreshold: 4096, domainKey: null, decode: true, maxParts: 1_000_000 });
        built.dispose();
        const windows = Math.ceil(msg.length / (1024 * 1024));
        expect(src.loads, `${name}: ${src.loads} window loads for ${windows} windows`).toBeLessThanOrEqual(windows * 3 + 4);
      } finally {
        fs.closeSync(fd);
      }
    }
  });

  it(`more MIME parts than the limit (${DEFAULT_MAX_PARTS} by default, configurable) are refused with the limit named; below it they are stored exactly`, async () => {
    const empty = (n: number) => Buffer.from('Content-Type: multipart/mixed; boundary=b\r\n\r\n' + '--b\r\n'.repeat(n));
    const s = await open(tmpDir());
    const err = await s.ingest(empty(DEFAULT_MAX_PARTS + 1), { user: 'u' }).catch((e) => e);
    expect(err.code).toBe('E_TOO_LARGE');
    expect(err.message).toMatch(new RegExp(`more than ${DEFAULT_MAX_PARTS} MIME parts`));
    // 3 MB of nothing but delimiters: refused as soon as the limit is passed, not after building 600,000 parts
    const big = await s.ingest(empty(600_000), { user: 'u' }).catch((e) => e);
    expect(big.code).toBe('E_TOO_LARGE');
    const ok = empty(DEFAULT_MAX_PARTS - 2);
    const r = await s.ingest(ok, { user: 'u' });
    expect((await s.fetchBuffer(r.id)).equals(ok)).toBe(true);
    expect(s.list('u')).toHaveLength(1);
    await s.close();

    const small = await open(tmpDir(), { maxParts: 10 });
    await expect(small.ingest(empty(10), { user: 'u' })).rejects.toMatchObject({ code: 'E_TOO_LARGE' });
    await small.ingest(empty(8), { user: 'u' });
    await small.close();

    const store = tmpDir();
    const c = await runCli(['--store', store, 'ingest', '--user', 'u'], { input: empty(20_000) });
    expect(c.code).toBe(65);
    expect(c.stderr).toMatch(/^mailcas: message has more than \d+ MIME parts \(the limit is \d+\)\n$/);
    const c2 = await runCli(['--store', store, '--max-parts', '30000', 'ingest', '--user', 'u'], { input: empty(20_000) });
    expect(c2.code).toBe(0);
  });

  it('a store refuses an inline threshold that would make every tiny part a durable object write', async () => {
    await expect(open(tmpDir(), { inlineThreshold: 0 })).rejects.toMatchObject({ code: 'E_USAGE', message: expect.stringMatching(/from 1024/) });
  });
});
