/**
 * npm run bench: ingest/export throughput and analysis speed against
 * baselines measured in the same run on the same files:
 *   - write baseline: copy each file into a Maildir-like directory (write, fsync, rename);
 *   - read baseline: read each of those files back.
 * Prints MB/s (10^6 bytes) and messages/s, and mailcas / baseline ratios.
 */
import fs from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import { execSync } from 'node:child_process';
import { pipeline } from 'node:stream/promises';
import { Store } from '../src/store.js';
import { silentLogger } from '../src/util/logger.js';
import { forEachLimit } from '../src/util/pool.js';
import { analyze } from '../src/analyze/analyze.js';
import { corpusDataset, generatedDataset, OUT, type Dataset } from './datasets.js';

const ROOT = path.dirname(path.dirname(new URL(import.meta.url).pathname));

interface Row {
  dataset: string;
  op: string;
  seconds: number;
  bytes: number;
  messages: number;
}

function fmt(rows: Row[], baseline: Map<string, number>): string {
  const head = ['dataset', 'operation', 'MB', 'msgs', 'sec', 'MB/s', 'msg/s', 'vs baseline'];
  const body = rows.map((r) => {
    const mbs = r.bytes / 1e6 / r.seconds;
    const base = baseline.get(`${r.dataset}|${r.op.startsWith('mailcas export') ? 'read' : r.op.startsWith('mailcas') ? 'write' : r.op}`);
    const ratio = r.op.startsWith('mailcas') && base ? `${(mbs / base).toFixed(2)}x` : '';
    return [r.dataset, r.op, (r.bytes / 1e6).toFixed(1), String(r.messages), r.seconds.toFixed(2), mbs.toFixed(1), (r.messages / r.seconds).toFixed(0), ratio];
  });
  const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  return [head, ...body].map((r) => r.map((c, i) => (i < 2 ? c.padEnd(w[i]) : c.padStart(w[i]))).join('  ')).join('\n');
}

/** Flushes dirty pages so one phase's writeback does not slow the next one down. */
function settle(): void {
  execSync('sync');
}

async function timeIt(fn: () => Promise<void> | void): Promise<number> {
  const t = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t) / 1e9;
}

/** The write baseline: a Maildir-style copy (tmp file, fsync, rename into cur/). */
async function copyBaseline(ds: Dataset, dir: string): Promise<string[]> {
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(path.join(dir, 'tmp'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'cur'), { recursive: true });
  const out: string[] = [];
  let n = 0;
  for (const u of ds.users)
    for (const f of u.files) {
      const data = fs.readFileSync(f);
      const tmp = path.join(dir, 'tmp', `${n}`);
      const fd = fs.openSync(tmp, 'w');
      fs.writeSync(fd, data);
      fs.fsyncSync(fd);
      fs.closeSync(fd);
      const dst = path.join(dir, 'cur', `${n++}:2,S`);
      fs.renameSync(tmp, dst);
      out.push(dst);
    }
  const dfd = fs.openSync(path.join(dir, 'cur'), 'r');
  fs.fsyncSync(dfd);
  fs.closeSync(dfd);
  return out;
}

async function main(): Promise<void> {
  const quick = process.argv.includes('--quick');
  fs.mkdirSync(OUT, { recursive: true });
  const datasets: Dataset[] = [
    corpusDataset(path.join(ROOT, 'corpus')),
    generatedDataset('attachment-heavy (generated)', { seed: 11, users: 12, messages: quick ? 300 : 600, profile: 'attachments' }),
    generatedDataset('small messages (generated)', { seed: 12, users: 20, messages: quick ? 2000 : 10000, profile: 'small' }),
  ];
  const rows: Row[] = [];
  const baseline = new Map<string, number>();
  console.log(`node ${process.version}, ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? '?'}), bench dir ${OUT}\n`);
  for (const ds of datasets) {
    const work = path.join(OUT, 'work');
    fs.rmSync(work, { recursive: true, force: true });
    fs.mkdirSync(work, { recursive: true });
    // baselines
    let copies: string[] = [];
    settle();
    const tw = await timeIt(async () => {
      copies = await copyBaseline(ds, path.join(work, 'maildir'));
    });
    rows.push({ dataset: ds.name, op: 'write', seconds: tw, bytes: ds.bytes, messages: ds.messages });
    baseline.set(`${ds.name}|write`, ds.bytes / 1e6 / tw);
    const tr = await timeIt(() => {
      for (const f of copies) fs.readFileSync(f);
    });
    rows.push({ dataset: ds.name, op: 'read', seconds: tr, bytes: ds.bytes, messages: ds.messages });
    baseline.set(`${ds.name}|read`, ds.bytes / 1e6 / tr);

    // mailcas import (as `mailcas import`: files read in place, 32 in flight, group commit)
    const store = await Store.open(path.join(work, 'store'), { logger: silentLogger });
    const ids: string[] = [];
    const jobs = ds.users.flatMap((u) => u.files.map((f) => ({ user: u.user, f })));
    settle();
    const ti = await timeIt(async () => {
      await forEachLimit(jobs, 32, async (j) => {
        ids.push((await store.ingest({ path: j.f }, { user: j.user })).id);
      });
    });
    rows.push({ dataset: ds.name, op: 'mailcas import', seconds: ti, bytes: ds.bytes, messages: ds.messages });
    // mailcas export (as `mailcas export`: every message to <id>.eml)
    const exp = path.join(work, 'export');
    fs.mkdirSync(exp);
    settle();
    const te = await timeIt(async () => {
      await forEachLimit(ids, 4, async (id) => {
        const file = path.join(exp, `${id}.eml`);
        if (store.get(id).size <= 1024 * 1024) fs.writeFileSync(file, await store.fetchBuffer(id));
        else await pipeline(await store.fetch(id), fs.createWriteStream(file));
      });
    });
    rows.push({ dataset: ds.name, op: 'mailcas export', seconds: te, bytes: ds.bytes, messages: ds.messages });
    const rep = (await import('../src/report/report.js')).buildReport(store.db);
    await store.close();
    // analysis (writes nothing)
    const paths = ds.users.flatMap((u) => u.files);
    let a = 0;
    settle();
    const ta = await timeIt(async () => {
      a = (await analyze(paths, { format: 'eml' })).messages;
    });
    rows.push({ dataset: ds.name, op: 'mailcas analyze', seconds: ta, bytes: ds.bytes, messages: a });
    console.log(`${ds.name}: ${ds.messages} messages, ${(ds.bytes / 1e6).toFixed(1)} MB -> stored ${(rep.storedBytes / 1e6).toFixed(1)} MB (${rep.dedupRatio.toFixed(2)}x)`);
  }
  console.log('\n' + fmt(rows, baseline));
  console.log(`\ntargets: import >= 100 MB/s (attachment-heavy) and >= 2000 msg/s (small); export >= 300 MB/s; analyze >= 150 MB/s`);
  fs.rmSync(path.join(OUT, 'work'), { recursive: true, force: true });
}

await main();
