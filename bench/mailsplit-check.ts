/**
 * Why mailcas carries its own MIME tokenizer: runs every corpus message
 * through @zone-eu/mailsplit (Splitter -> Joiner, unmodified, 64 KiB writes)
 * and through mailcas's tokenizer (segments concatenated), and counts the
 * messages each gives back byte for byte.
 *   npx tsx bench/mailsplit-check.ts [corpus-dir]
 */
import fs from 'node:fs';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import mailsplit from '@zone-eu/mailsplit';
import { tokenize } from '../src/split/tokenizer.js';
import { MemorySource } from '../src/split/byte-source.js';

const dir = process.argv[2] ?? path.join(path.dirname(path.dirname(new URL(import.meta.url).pathname)), 'corpus');
const files: string[] = [];
const walk = (d: string): void => {
  for (const e of fs.readdirSync(d, { withFileTypes: true })) {
    const p = path.join(d, e.name);
    if (e.isDirectory()) {
      if (e.name !== 'generator') walk(p);
    } else if (p.endsWith('.eml')) files.push(p);
  }
};
walk(dir);

async function viaMailsplit(buf: Buffer): Promise<Buffer> {
  const out: Buffer[] = [];
  const chunks: Buffer[] = [];
  for (let i = 0; i < buf.length; i += 65536) chunks.push(buf.subarray(i, i + 65536));
  await pipeline(
    Readable.from(chunks),
    new mailsplit.Splitter({ maxHeadSize: 16 * 1024 * 1024 }),
    new mailsplit.Joiner(),
    new Writable({
      write(c, _e, cb) {
        out.push(c);
        cb();
      },
    }),
  );
  return Buffer.concat(out);
}

let msOk = 0;
let ourOk = 0;
const msBad: string[] = [];
for (const f of files) {
  const buf = fs.readFileSync(f);
  try {
    if ((await viaMailsplit(buf)).equals(buf)) msOk++;
    else msBad.push(path.basename(f));
  } catch (e) {
    msBad.push(`${path.basename(f)} (${(e as Error).message})`);
  }
  const t = tokenize(new MemorySource(buf));
  if (Buffer.concat(t.segments.map((s) => buf.subarray(s.start, s.end))).equals(buf)) ourOk++;
}
console.log(`@zone-eu/mailsplit: ${msOk}/${files.length} byte-exact${msBad.length ? `; not exact: ${msBad.join(', ')}` : ''}`);
console.log(`mailcas tokenizer:  ${ourOk}/${files.length} byte-exact`);
