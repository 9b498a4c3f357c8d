/**
 * npm run bench:storage: raw bytes vs mailcas vs Dovecot 2.3 single-instance
 * attachment storage on the same mail. Dovecot runs when installed
 * (apt-get install dovecot-core dovecot-lmtpd) and we are root.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Store } from '../src/store.js';
import { silentLogger } from '../src/util/logger.js';
import { forEachLimit } from '../src/util/pool.js';
import { buildReport } from '../src/report/report.js';
import { corpusDataset, generatedDataset, OUT, type Dataset } from './datasets.js';
import { deliverToDovecot, dovecotAvailable, treeBytes, VARIANTS } from './dovecot.js';

const ROOT = path.dirname(path.dirname(new URL(import.meta.url).pathname));
const mb = (n: number): string => (n / 1e6).toFixed(2);

const du = (dir: string): { bytes: number; disk: number } => treeBytes(dir);

async function mailcas(ds: Dataset, work: string): Promise<{ stored: number; files: number; disk: number; exact: number }> {
  const dir = path.join(work, 'mailcas');
  fs.rmSync(dir, { recursive: true, force: true });
  const store = await Store.open(dir, { logger: silentLogger });
  const jobs = ds.users.flatMap((u) => u.files.map((f) => ({ user: u.user, f })));
  const ids: { id: string; f: string }[] = [];
  await forEachLimit(jobs, 32, async (j) => {
    ids.push({ id: (await store.ingest({ path: j.f }, { user: j.user })).id, f: j.f });
  });
  let exact = 0;
  for (const x of ids) if ((await store.fetchBuffer(x.id)).equals(fs.readFileSync(x.f))) exact++;
  const rep = buildReport(store.db);
  await store.close();
  const d = du(dir);
  fs.rmSync(dir, { recursive: true, force: true });
  return { stored: rep.storedBytes, files: d.bytes, disk: d.disk, exact };
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
  const why = dovecotAvailable();
  if (why) console.log(`(${why}: Dovecot columns skipped)\n`);
  const lines: string[][] = [['dataset', 'store', 'stored MB', 'on disk MB', 'vs raw', 'vs Dovecot best', 'byte-exact', 'failed']];
  for (const ds of datasets) {
    const raw = ds.bytes;
    lines.push([ds.name, 'raw (as delivered)', mb(raw), '', '1.00', '', '', '']);
    const m = await mailcas(ds, work);
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
