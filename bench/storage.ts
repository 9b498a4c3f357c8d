/**
 * npm run bench:storage: raw bytes vs mailcas vs Dovecot 2.3 single-instance
 * attachment storage on the same mail. Dovecot runs when installed
 * (apt-get install dovecot-core dovecot-lmtpd) and we are root.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Store } from '../src/store.js';
import { FsBackend } from '../src/backend/fs-backend.js';
import { silentLogger } from '../src/util/logger.js';
import { forEachLimit } from '../src/util/pool.js';
import { buildReport } from '../src/report/report.js';
import { corpusDataset, generatedDataset, OUT, type Dataset } from './datasets.js';
import { deliverToDovecot, dovecotAvailable, treeBytes, VARIANTS } from './dovecot.js';

const ROOT = path.dirname(path.dirname(new URL(import.meta.url).pathname));
const mb = (n: number): string => (n / 1e6).toFixed(2);

const du = (dir: string): { bytes: number; disk: number } => treeBytes(dir);

/**
 * mailcas as it stores mail, and (cold) as the same mail is kept once it
 * is old: every blob moved to the cold tier (`tier --older-than 0`: small
 * blobs into packs, re-encoded with brotli; large ones as objects, brotli too)
 * and the metadata compacted (`compact --older-than 0 --vacuum`). The cold tier is a local directory here:
 * an object store holds the same objects, byte for byte.
 */
async function mailcas(ds: Dataset, work: string, cold = false): Promise<{ stored: number; files: number; disk: number; exact: number }> {
  const dir = path.join(work, 'mailcas');
  fs.rmSync(dir, { recursive: true, force: true });
  const store = await Store.open(dir, cold ? { logger: silentLogger, backend: new FsBackend(path.join(dir, 'blobs')), coldBackend: new FsBackend(path.join(dir, 'cold')) } : { logger: silentLogger });
  const jobs = ds.users.flatMap((u) => u.files.map((f) => ({ user: u.user, f })));
  const ids: { id: string; f: string }[] = [];
  await forEachLimit(jobs, 32, async (j) => {
    ids.push({ id: (await store.ingest({ path: j.f }, { user: j.user })).id, f: j.f });
  });
  if (cold) {
    await store.tier({ olderThanMs: 0 });
    await store.compact({ olderThanMs: 0, vacuum: true });
  }
  let exact = 0;
  for (const x of ids) if ((await store.fetchBuffer(x.id)).equals(fs.readFileSync(x.f))) exact++;
  const rep = buildReport(store.db);
  // packs count whole (dead space included), not just the entries rows point at
  const packs = store.db.prepare('SELECT coalesce(sum(size), 0) AS size, coalesce(sum(live), 0) AS live FROM packs').get() as { size: number; live: number };
  await store.close();
  const d = du(dir);
  fs.rmSync(dir, { recursive: true, force: true });
  return { stored: rep.storedBytes + packs.size - packs.live, files: d.bytes, disk: d.disk, exact };
}

async function main(): Promise<void> {
  const quick = process.argv.includes('--quick');
  const work = path.join(OUT, 'storage-work');
  fs.mkdirSync(work, { recursive: true });
  const datasets = [
    corpusDataset(path.join(ROOT, 'corpus')),
    generatedDataset('mixed mailboxes (generated)', { seed: 21, users: 25, messages: quick ? 500 : 2500, profile: 'mixed' }),
    generatedDataset('attachment-heavy (generated)', { seed: 11, users: 12, messages: quick ? 300 : 600, profile: 'attachments' }),
  ];
  const only = process.argv.indexOf('--only');
  if (only > 0) datasets.splice(0, datasets.length, ...datasets.filter((d) => d.name.startsWith(process.argv[only + 1] ?? '')));
  const why = dovecotAvailable();
  if (why) console.log(`(${why}: Dovecot columns skipped)\n`);
  const lines: string[][] = [['dataset', 'store', 'stored MB', 'on disk MB', 'vs raw', 'vs Dovecot best', 'byte-exact', 'failed']];
  for (const ds of datasets) {
    const raw = ds.bytes;
    lines.push([ds.name, 'raw (as delivered)', mb(raw), '', '1.00', '', '', '']);
    const m = await mailcas(ds, work);
    const mc = await mailcas(ds, work, true);
    const dv: Awaited<ReturnType<typeof deliverToDovecot>>[] = [];
    if (!why) for (const v of VARIANTS) dv.push(await deliverToDovecot(ds, v, work, v === VARIANTS[VARIANTS.length - 1]));
    const best = dv.length ? Math.min(...dv.map((d) => d.totalBytes)) : 0;
    lines.push([
      '',
      'mailcas',
      mb(m.stored),
      mb(m.disk),
      (m.stored / raw).toFixed(2),
      best ? (m.stored / best).toFixed(2) : 'n/a',
      `${m.exact}/${ds.messages}`,
      '0',
    ]);
    lines.push(['', 'mailcas, old (cold packs, compacted)', mb(mc.stored), mb(mc.disk), (mc.stored / raw).toFixed(2), best ? (mc.stored / best).toFixed(2) : 'n/a', `${mc.exact}/${ds.messages}`, '0']);
    for (const d of dv)
      lines.push(['', `${d.variant}`, mb(d.totalBytes), mb(d.diskBytes), (d.totalBytes / raw).toFixed(2), (d.totalBytes / best).toFixed(2), d.exact !== null ? `${d.exact}/${ds.messages}` : '', String(d.failed)]);
  }
  const w = lines[0].map((_, i) => Math.max(...lines.map((l) => l[i].length)));
  console.log(lines.map((l) => l.map((c, i) => (i < 2 ? c.padEnd(w[i]) : c.padStart(w[i]))).join('  ')).join('\n'));
  console.log(
    '\nstored MB: mailcas = database pages in use + blob bytes; Dovecot = mail files, attachment files and its index/cache files.' +
      '\non disk: allocated blocks (st_blocks). Target: mailcas <= 0.8x of Dovecot best (SIS min 1 + zlib) with every message byte-exact.',
  );
  fs.rmSync(work, { recursive: true, force: true });
}

await main();
