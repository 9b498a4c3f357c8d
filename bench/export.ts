/**
 * Export throughput of an existing store, alone: every message to <id>.eml
 * (small ones in one write, large ones streamed), 4 in flight.
 *   npx tsx bench/export.ts STORE_DIR [OUT_DIR]
 */
import fs from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import { pipeline } from 'node:stream/promises';
import { Store } from '../src/store.js';
import { silentLogger } from '../src/util/logger.js';
import { forEachLimit } from '../src/util/pool.js';

const dir = process.argv[2];
if (!dir) throw new Error('usage: bench/export.ts STORE_DIR [OUT_DIR]');
const out = process.argv[3] ?? fs.mkdtempSync(path.join(os.tmpdir(), 'mailcas-export-'));
const store = await Store.open(dir, { logger: silentLogger });
const rows = store.db.prepare('SELECT id, size FROM messages').all() as { id: number; size: number }[];
let bytes = 0;
const t = process.hrtime.bigint();
await forEachLimit(rows, 4, async (r) => {
  const file = path.join(out, `${r.id}.eml`);
  if (r.size <= 1024 * 1024) fs.writeFileSync(file, await store.fetchBuffer(String(r.id)));
  else await pipeline(await store.fetch(String(r.id)), fs.createWriteStream(file));
  bytes += r.size;
});
const s = Number(process.hrtime.bigint() - t) / 1e9;
console.log(`export: ${rows.length} messages, ${(bytes / 1e6).toFixed(1)} MB in ${s.toFixed(2)} s: ${(bytes / 1e6 / s).toFixed(0)} MB/s, ${(rows.length / s).toFixed(0)} msg/s`);
await store.close();
fs.rmSync(out, { recursive: true, force: true });
