import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { FileSource, MemorySource, type ByteSource } from '../../src/split/byte-source.js';
import { buildMessage, type BuiltMessage } from '../../src/ingest/build-message.js';
import { reassemble } from '../../src/reassemble/reassemble.js';
import { corpusFiles, tmpDir } from '../helpers.js';
import { messageWith } from '../mailgen.js';

/**
 * A message in a file is read through one window whose memory is reused at
 * every load, so any part bytes kept from it must be copies (and so must
 * the bytes of a decoding buffer that is reused). Splitting the same bytes
 * from memory and through small windows must give the same layout and the
 * same canonical bytes for every part, and both must put the input back
 * together exactly.
 */
describe('splitting through a reused file window', () => {
  const dir = tmpDir();

  function partBytes(b: BuiltMessage): Map<string, Buffer> {
    const out = new Map<string, Buffer>();
    for (const [hex, need] of b.blobs) out.set(hex, Buffer.concat([...need.data.chunks()].map((c) => Buffer.from(c))));
    return out;
  }

  async function build(src: ByteSource): Promise<{ layout: string; parts: Map<string, Buffer>; bytes: Buffer }> {
    const b = buildMessage(src, { tmpDir: path.join(dir, 'tmp'), inlineThreshold: 64, domainKey: null, decode: true });
    try {
      const parts = partBytes(b);
      const out: Buffer[] = [];
      for await (const c of reassemble(b.layout, { read: (hash) => [parts.get(hash.toString('hex'))!] })) out.push(Buffer.from(c));
      return { layout: JSON.stringify(b.layout), parts, bytes: Buffer.concat(out) };
    } finally {
      b.dispose();
    }
  }

  async function sameAsInMemory(data: Buffer, window: number): Promise<void> {
    const file = path.join(dir, 'm.eml');
    fs.writeFileSync(file, data);
    const fd = fs.openSync(file, 'r');
    try {
      const want = await build(new MemorySource(data));
      const got = await build(new FileSource(fd, data.length, window));
      expect(want.bytes.equals(data)).toBe(true);
      expect(got.bytes.equals(data)).toBe(true);
      expect(got.layout).toBe(want.layout);
      expect([...got.parts.keys()]).toEqual([...want.parts.keys()]);
      for (const [hex, bytes] of want.parts) expect(got.parts.get(hex)!.equals(bytes), hex).toBe(true);
    } finally {
      fs.closeSync(fd);
    }
  }

  it('every corpus message: the same layout and part bytes from memory as through windows of 512 B and 4 KiB', async () => {
    const files = corpusFiles();
    expect(files.length).toBeGreaterThan(50);
    for (const f of files) {
      const data = fs.readFileSync(f);
      for (const w of [512, 4096]) await sameAsInMemory(data, w);
    }
  });

  it('parts kept in memory and parts spilled to a file (identity, LF, base64 over the decoding threshold) come out the same', async () => {
    const big = crypto.randomBytes(1_500_000);
    const text = Buffer.from('a line of plain text\n'.repeat(40_000)); // 840 KB: kept in memory, read over several windows
    const cases = [
      messageWith(big, { lineLen: 76, eol: '\r\n' }), // base64 decoded in steps into one reused buffer
      messageWith(big.subarray(0, 300_000), { lineLen: 64, eol: '\n' }),
      Buffer.concat([Buffer.from('Subject: lf\nContent-Type: text/plain\n\n'), text]), // LF body
      Buffer.concat([Buffer.from('Subject: crlf\r\nContent-Type: text/plain\r\n\r\n'), Buffer.from(text.toString('latin1').replaceAll('\n', '\r\n'))]), // identity
      Buffer.concat([Buffer.from('Subject: raw\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n'), big.subarray(0, 900_000)]),
    ];
    // windows smaller than a part and larger than a read step (256 KiB), so kept views span window loads
    for (const m of cases) for (const w of [4096, 300_000, 1024 * 1024]) await sameAsInMemory(m, w);
  });
});
