/**
 * bench:sync: two-way sync between two stores (docs/SYNC.md), first slice (a
 * peer store directory; no wire protocol yet, so "sent" is what the receiving
 * store's ingest reads, and blob bytes are what it had to write).
 *
 * 1. Both stores start from the same generated mailbox (synced once), then
 *    each takes N new messages of the same generator (attachments reused
 *    across messages, as in real mail); one sync. Reported: message bytes
 *    crossing, blob bytes the receivers wrote, against the new unique content
 *    (the blob bytes the messages cost where they arrived first) and against
 *    copying the new messages whole.
 * 2. A mailbox of M small messages, synced; then syncs with nothing new: their time.
 *
 *   npx tsx bench/sync.ts [--new N] [--big M]
 */
import fs from 'node:fs';
import path from 'node:path';
import { Store } from '../src/store.js';
import { silentLogger } from '../src/util/logger.js';
import { syncUser } from '../src/sync/sync-user.js';
import { generatedDataset } from './datasets.js';

const arg = (name: string, dflt: number): number => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const NEW = arg('--new', 1000);
const BIG = arg('--big', 20_000);
const open = (dir: string) => Store.open(dir, { logger: silentLogger });
const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;

async function main(): Promise<void> {
  const work = fs.mkdtempSync('/tmp/mailcas-bench-sync-');
  const ds = generatedDataset('mixed', { seed: 21, users: 1, messages: 400 + 2 * NEW, profile: 'mixed' });
  const files = ds.users[0].files;
  const base = files.slice(0, 400);
  const newA = files.slice(400, 400 + NEW);
  const newB = files.slice(400 + NEW, 400 + 2 * NEW);
  const a = await open(path.join(work, 'a'));
  const b = await open(path.join(work, 'b'));
  for (const f of base) await a.ingest(fs.readFileSync(f), { user: 'u' });
  await syncUser(a, b, 'u');
  let unique = 0;
  let whole = 0;
  for (const [s, list] of [
    [a, newA],
    [b, newB],
  ] as const) {
    for (const f of list) {
      const bytes = fs.readFileSync(f);
      whole += bytes.length;
      unique += (await s.ingest(bytes, { user: 'u' })).newBlobBytes;
    }
  }
  const t0 = performance.now();
  const r = await syncUser(a, b, 'u');
  const ms = performance.now() - t0;
  const crossed = r.sent.bytes + r.received.bytes;
  const written = r.sent.blobBytes + r.received.blobBytes;
  console.log(`sync after ${NEW} new messages on each side (${mb(whole)} in all; the blobs they added where they arrived: ${mb(unique)}, much of it the same content on both sides):`);
  console.log(`  ${r.sent.messages} + ${r.received.messages} messages in ${(ms / 1000).toFixed(1)} s; message bytes read across ${mb(crossed)} (${(crossed / whole).toFixed(2)}x copying them whole: no part-level protocol yet); blob bytes the receivers wrote, the content each lacked, ${mb(written)} (${(written / whole).toFixed(3)}x the messages, ${(written / unique).toFixed(2)}x the blobs the new mail added where it arrived)`);
  await a.close();
  await b.close();

  const c = await open(path.join(work, 'c'));
  const d = await open(path.join(work, 'd'));
  for (let i = 0; i < BIG; i++) await c.ingest(Buffer.from(`From: s${i}@example.org\r\nSubject: small ${i}\r\nMessage-ID: <s${i}@bench>\r\n\r\nbody ${i}\r\n`), { user: 'big' });
  const t1 = performance.now();
  await syncUser(c, d, 'big');
  const first = performance.now() - t1;
  const times: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t = performance.now();
    await syncUser(c, d, 'big');
    times.push(performance.now() - t);
  }
  times.sort((x, y) => x - y);
  console.log(`a mailbox of ${BIG} messages: first sync ${(first / 1000).toFixed(1)} s (${(BIG / (first / 1000)).toFixed(0)} msg/s); a sync with nothing new ${times[2].toFixed(1)} ms (median of 5)`);
  await c.close();
  await d.close();
  fs.rmSync(work, { recursive: true, force: true });
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
