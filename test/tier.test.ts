// Hot and cold tiers, packs and write-behind on a real S3 server (Ceph RGW).
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { Store } from '../src/store.js';
import { silentLogger } from '../src/util/logger.js';
import { BIN, ROOT, corpusFiles, runCli, tmpDir } from './helpers.js';
import { bucketKeys, canRestartRgw, freshBucket, restartRgw, s3Env } from './s3-env.js';
import { messageWith } from './mailgen.js';

const env = s3Env();
const json = (b: Buffer) => b.toString().trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
const hotFiles = (store: string) =>
  fs.existsSync(path.join(store, 'blobs'))
    ? fs.readdirSync(path.join(store, 'blobs'), { recursive: true, withFileTypes: true }).filter((e) => e.isFile() && !e.parentPath.includes('.tmp')).length
    : 0;

async function allExact(store: string, lines: { id: string; source: string }[], user = 'u'): Promise<number> {
  const out = tmpDir();
  expect((await runCli(['--store', store, 'export', '--user', user, '--out', out])).code).toBe(0);
  let n = 0;
  for (const l of lines) if (fs.readFileSync(path.join(out, `${l.id}.eml`)).equals(fs.readFileSync(l.source))) n++;
  return n;
}

describe.runIf(env !== null)('tiers, packs and write-behind on S3 (Ceph RGW)', () => {
  it('tiered: the corpus lands on local files, tier --older-than 0 moves it all (small blobs into packs), everything round-trips; gc empties the bucket', async () => {
    const loc = await freshBucket();
    const store = tmpDir();
    expect((await runCli(['--store', store, 'init', '--s3', `s3://${loc.bucket}`, '--s3-endpoint', env!.endpoint, '--tiered'])).code).toBe(0);
    const files = corpusFiles();
    const lines = json((await runCli(['--store', store, 'import', '--user', 'u', '--format', 'eml', '--json', ...files])).stdout).filter((l) => l.id);
    expect(lines).toHaveLength(files.length);
    const before = hotFiles(store);
    expect(before).toBeGreaterThan(100);
    expect(await bucketKeys(loc)).toEqual([]);
    const t = await runCli(['--store', store, 'tier', '--older-than', '0', '--json']);
    expect(t.code).toBe(0);
    const tr = JSON.parse(t.stdout.toString());
    expect(tr.objects + tr.packed).toBe(before);
    expect(tr.packs).toBeGreaterThan(0);
    expect(tr.pendingUploads).toBe(0);
    expect(hotFiles(store)).toBe(0);
    expect((await bucketKeys(loc)).length).toBe(tr.objects + tr.packs); // one PUT per large blob, one per pack
    expect(await allExact(store, lines)).toBe(lines.length);
    expect((await runCli(['--store', store, 'check', '--deep'])).code).toBe(0);
    // re-import: nothing new anywhere
    const again = json((await runCli(['--store', store, 'import', '--user', 'v', '--format', 'eml', '--json', ...files])).stdout).pop().summary;
    expect(again.newBlobBytes).toBe(0);
    expect(hotFiles(store)).toBe(0);
    const s = await Store.open(store, { logger: silentLogger });
    for (const user of ['u', 'v']) await s.expunge(user, s.list(user).map((m) => m.id));
    const g = await s.gc({ graceSeconds: 0 });
    expect(g.deletedPacks).toBe(tr.packs);
    await s.close();
    expect(await bucketKeys(loc)).toEqual([]);
    const c = JSON.parse((await runCli(['--store', store, 'check', '--json'])).stdout.toString());
    expect({ consistent: c.consistent, blobs: c.blobs, objects: c.objects }).toEqual({ consistent: true, blobs: 0, objects: 0 });
  });

  it('write-behind: the corpus acknowledged on local durability; report and check show the backlog; flush uploads it; the LMTP server uploads as it goes', async () => {
    const loc = await freshBucket();
    const store = tmpDir();
    expect((await runCli(['--store', store, 'init', '--s3', `s3://${loc.bucket}/wb`, '--s3-endpoint', env!.endpoint, '--write-behind'])).code).toBe(0);
    const files = corpusFiles(); // the whole corpus, acknowledged locally, then flushed
    const lines = json((await runCli(['--store', store, 'import', '--user', 'u', '--format', 'eml', '--json', ...files])).stdout).filter((l) => l.id);
    const rep = JSON.parse((await runCli(['--store', store, 'report', '--json'])).stdout.toString());
    expect(rep.pendingUploads).toBeGreaterThan(0);
    expect(rep.pendingBytes).toBeGreaterThan(0);
    const chk = JSON.parse((await runCli(['--store', store, 'check', '--json'])).stdout.toString());
    expect(chk.pendingUploads).toBe(rep.pendingUploads);
    const f = await runCli(['--store', store, 'flush', '--json']);
    expect(f.code).toBe(0);
    expect(JSON.parse(f.stdout.toString()).pendingUploads).toBe(0);
    expect(hotFiles(store)).toBe(0);
    expect(await allExact(store, lines)).toBe(lines.length);
    expect((await runCli(['--store', store, 'check'])).code).toBe(0);

    // a long-running process uploads in the background
    const sock = path.join(tmpDir(), 'lmtp.sock');
    const server = spawn(process.execPath, [BIN, '--store', store, 'lmtp', '--socket', sock], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env } });
    let log = '';
    server.stderr.on('data', (c) => (log += c));
    for (let i = 0; i < 100 && !log.includes('lmtp-listening'); i++) await new Promise((r) => setTimeout(r, 50));
    const msgs = Array.from({ length: 5 }, (_, i) => {
      const file = path.join(tmpDir(), `${i}.eml`);
      fs.writeFileSync(file, messageWith(crypto.randomBytes(20_000 + i), { subject: `lmtp ${i}` }));
      return file;
    });
    const py = spawn('python3', [path.join(ROOT, 'test', 'delivery', 'lmtp_client.py'), sock, '0', 's@x', 'w@example.org', ...msgs], { stdio: 'ignore' });
    await new Promise((r) => py.on('close', r));
    let pendingNow = -1;
    for (let i = 0; i < 100; i++) {
      pendingNow = JSON.parse((await runCli(['--store', store, 'report', '--json'])).stdout.toString()).pendingUploads;
      if (pendingNow === 0) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    server.kill('SIGTERM');
    await new Promise((r) => server.on('close', r));
    expect(pendingNow).toBe(0);
    expect((await runCli(['--store', store, 'check'])).code).toBe(0);
  });

  it('write-behind back-pressure: past the backlog limit new mail fails temporarily; after a flush it goes in', async () => {
    const loc = await freshBucket();
    const s = await Store.open(tmpDir(), { s3: loc, tiered: { writeBehind: true }, writeBehindMaxBytes: 60_000, logger: silentLogger });
    let err: { code?: string; transient?: boolean; message?: string } | null = null;
    for (let i = 0; i < 10 && !err; i++) {
      await s.ingest(messageWith(crypto.randomBytes(25_000), { subject: `bp${i}` }), { user: 'u' }).catch((e) => (err = e));
      await new Promise((r) => setTimeout(r, 1100)); // the backlog figure is refreshed every second
    }
    expect(err).toMatchObject({ code: 'E_BACKEND', transient: true, message: expect.stringMatching(/write-behind backlog is full/) });
    await s.flush();
    await new Promise((r) => setTimeout(r, 1100));
    await s.ingest(messageWith(crypto.randomBytes(25_000), { subject: 'after flush' }), { user: 'u' });
    await s.close();
  });

  it('repacking: once most of a pack is dead, gc rewrites its live entries into a new pack and deletes the old one; reads stay exact', async () => {
    const loc = await freshBucket();
    const s = await Store.open(tmpDir(), { s3: loc, tiered: {}, logger: silentLogger });
    const msgs = Array.from({ length: 40 }, (_, i) => messageWith(crypto.randomBytes(8000 + i * 100), { subject: `p${i}` }));
    const ids: string[] = [];
    for (const m of msgs) ids.push((await s.ingest(m, { user: 'u' })).id);
    const t = await s.tier({ olderThanMs: 0 });
    expect({ packed: t.packed, packs: t.packs, objects: t.objects }).toEqual({ packed: 40, packs: 1, objects: 0 });
    await s.expunge('u', ids.slice(0, 30));
    const g = await s.gc({ graceSeconds: 0 });
    expect(g.repacked).toBe(1);
    expect(g.deletedPacks).toBe(1); // the old one: retired, and past a grace of 0
    const packs = s.db.prepare('SELECT live, size FROM packs').all() as { live: number; size: number }[];
    expect(packs).toHaveLength(1);
    expect(packs[0].live).toBe(packs[0].size);
    for (let i = 30; i < 40; i++) expect((await s.fetchBuffer(ids[i])).equals(msgs[i])).toBe(true);
    expect((await s.check({ deep: true })).consistent).toBe(true);
    await s.close();
  });

  it.runIf(canRestartRgw())('the object store going down during flush: flush fails temporarily, nothing is lost; after it returns flush finishes and all is exact', async () => {
    const loc = await freshBucket();
    const dir = tmpDir();
    const s = await Store.open(dir, { s3: loc, tiered: { writeBehind: true }, logger: silentLogger, retry: { deadlineMs: 300, baseDelayMs: 20 } });
    const msgs = Array.from({ length: 30 }, (_, i) => messageWith(crypto.randomBytes(10_000 + i * 5000), { subject: `o${i}` }));
    const ids: string[] = [];
    for (const m of msgs) ids.push((await s.ingest(m, { user: 'u' })).id);
    let err: { code?: string; transient?: boolean } | null = null;
    await restartRgw(async () => {
      err = await s.flush().then(
        () => null,
        (e) => e,
      );
    });
    expect(err).toMatchObject({ code: 'E_BACKEND', transient: true });
    for (let i = 0; i < 30; i++) expect((await s.fetchBuffer(ids[i])).equals(msgs[i])).toBe(true);
    const r = await s.flush();
    expect(r.pendingUploads).toBe(0);
    for (let i = 0; i < 30; i++) expect((await s.fetchBuffer(ids[i])).equals(msgs[i])).toBe(true);
    await s.gc({ graceSeconds: 0 });
    expect((await s.check()).consistent).toBe(true);
    await s.close();
  });

  it('a SIGKILL in the middle of tier (right after a cold copy is durable) loses nothing; tier finishes the job next time; gc leaves the store clean', async () => {
    const loc = await freshBucket();
    const store = tmpDir();
    expect((await runCli(['--store', store, 'init', '--s3', `s3://${loc.bucket}`, '--s3-endpoint', env!.endpoint, '--tiered'])).code).toBe(0);
    const files = corpusFiles().slice(0, 400);
    const lines = json((await runCli(['--store', store, 'import', '--user', 'u', '--format', 'eml', '--json', ...files])).stdout).filter((l) => l.id);
    const killed = await new Promise<string | null>((resolve) => spawn(process.execPath, [path.join(ROOT, 'test', 'fixtures', 'store-op.mjs'), store, 'tier-kill-after-cold-put'], { stdio: 'ignore' }).on('close', (_c, sig) => resolve(sig)));
    expect(killed).toBe('SIGKILL');
    expect(await allExact(store, lines)).toBe(lines.length);
    expect((await runCli(['--store', store, 'tier', '--older-than', '0'])).code).toBe(0);
    // what the killed run left behind: local copies of blobs it had already moved (and one it held a lease on): gc's to reclaim
    expect(hotFiles(store)).toBeLessThanOrEqual(2);
    expect(await allExact(store, lines)).toBe(lines.length);
    expect((await runCli(['--store', store, 'gc', '--grace', '0'])).code).toBe(0);
    const c = JSON.parse((await runCli(['--store', store, 'check', '--json'])).stdout.toString());
    expect(c).toMatchObject({ consistent: true, orphans: [], coldOrphans: [], missingBlobs: [] });
    expect(hotFiles(store)).toBe(c.uncommitted.length); // only the copy under the dead process's lease, until that lease expires
  });
});
