/**
 * How the inline threshold was chosen: imports the corpus (and a generated
 * mixed mailbox) at several thresholds and prints database bytes, blob
 * count and bytes, and what the store takes on disk (blob files occupy
 * whole filesystem blocks, so tiny blobs cost more than their bytes).
 *   npx tsx bench/threshold.ts
 */
import fs from 'node:fs';
import path from 'node:path';
import { Store } from '../src/store.js';
import { silentLogger } from '../src/util/logger.js';
import { forEachLimit } from '../src/util/pool.js';
import { buildReport } from '../src/report/report.js';
import { corpusDataset, generatedDataset, OUT, type Dataset } from './datasets.js';

const ROOT = path.dirname(path.dirname(new URL(import.meta.url).pathname));

function disk(dir: string): number {
  let n = 0;
  for (const e of fs.readdirSync(dir, { recursive: true, withFileTypes: true })) if (e.isFile()) n += fs.statSync(path.join(e.parentPath, e.name)).blocks * 512;
  return n;
}

async function run(ds: Dataset, threshold: number): Promise<string[]> {
  const dir = path.join(OUT, `threshold-${threshold}`);
  fs.rmSync(dir, { recursive: true, force: true });
  const s = await Store.open(dir, { inlineThreshold: threshold, logger: silentLogger });
  const t = Date.now();
  await forEachLimit(
    ds.users.flatMap((u) => u.files.map((f) => ({ u: u.user, f }))),
    32,
    async (j) => void (await s.ingest({ path: j.f }, { user: j.u })),
  );
  const secs = (Date.now() - t) / 1000;
  const r = buildReport(s.db);
  await s.close();
  const d = disk(dir);
  fs.rmSync(dir, { recursive: true, force: true });
  return [String(threshold), (r.databaseBytes / 1e6).toFixed(2), String(r.blobs), (r.blobBytes / 1e6).toFixed(2), (r.storedBytes / 1e6).toFixed(2), (d / 1e6).toFixed(2), (ds.messages / secs).toFixed(0)];
}

const sets = [corpusDataset(path.join(ROOT, 'corpus')), generatedDataset('mixed mailboxes (generated)', { seed: 21, users: 25, messages: 2500, profile: 'mixed' })];
for (const ds of sets) {
  console.log(`\n${ds.name}: ${ds.messages} messages, ${(ds.bytes / 1e6).toFixed(1)} MB`);
  const rows = [['threshold', 'db MB', 'blobs', 'blob MB', 'stored MB', 'on disk MB', 'msg/s']];
  for (const t of [0, 512, 1024, 2048, 4096, 8192, 16384, 65536]) rows.push(await run(ds, t));
  const w = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  console.log(rows.map((r) => r.map((c, i) => c.padStart(w[i])).join('  ')).join('\n'));
}
