import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { FileSource, MemorySource } from '../../src/split/byte-source.js';
import { tokenize } from '../../src/split/tokenizer.js';
import { tmpDir } from '../helpers.js';

/** The file-backed source (large messages) must answer exactly like the in-memory one, whatever its window. */
describe('FileSource behaves like MemorySource', () => {
  const dir = tmpDir();
  it('read, indexOf and chunks agree for random data, windows and offsets', () => {
    fc.assert(
      fc.property(
        fc
          .uint8Array({ maxLength: 5000 })
          .map(
            (a) =>
              'Content-Type: multipart/mixed; boundary=b\n\n' +
              Buffer.from(a)
                .toString('latin1')
                .replace(/[\x00-\x05]/g, (c) => ['\n--b\n', '\n--b--\n', '\n--', '\nContent-Type: multipart/alternative; boundary=c\n\n', '\n--c\n', '\n\n'][c.charCodeAt(0)]),
          ),
        fc.integer({ min: 8, max: 700 }),
        fc.integer({ min: 0, max: 64 }),
        fc.array(fc.tuple(fc.nat(), fc.nat()), { maxLength: 20 }),
        (text, window, base, ranges) => {
          const data = Buffer.from(text, 'latin1');
          const file = path.join(dir, 'f');
          fs.writeFileSync(file, Buffer.concat([Buffer.alloc(base, 0x41), data, Buffer.from('trailing bytes beyond the range')]));
          const fd = fs.openSync(file, 'r');
          try {
            const f = new FileSource(fd, data.length, window, base);
            const m = new MemorySource(data);
            for (const [a, b] of ranges) {
              const s = a % (data.length + 1);
              const e = s + (b % (data.length + 1 - s + 1));
              expect(Buffer.from(f.read(s, e)).equals(m.read(s, Math.min(e, data.length)))).toBe(true);
              // and needles longer than the window (a boundary longer than a tiny window): taken from the data, so they occur
              const long = data.subarray(Math.floor(s / 2), Math.floor(s / 2) + window + 3);
              for (const needle of ['\n--', '\n', '--', 'x', ...(long.length ? [long] : [])]) {
                const nb = Buffer.from(needle);
                expect(f.indexOf(nb, s)).toBe(m.indexOf(nb, s));
                expect(f.indexOf(nb, s, e)).toBe(m.indexOf(nb, s, e));
              }
            }
            // each chunk is a view valid until the next step (the window is reused): copied as it comes
            expect(Buffer.concat(Array.from(f.chunks(0, data.length, 97), (c) => Buffer.from(c))).equals(data)).toBe(true);
            // the tokenizer sees the same segments either way
            const st = tokenize(m).segments.map((x) => [x.kind, x.start, x.end]);
            expect(tokenize(new FileSource(fd, data.length, window, base)).segments.map((x) => [x.kind, x.start, x.end])).toEqual(st);
          } finally {
            fs.closeSync(fd);
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
