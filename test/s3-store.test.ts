// A store whose blobs live in a real S3 bucket (Ceph RGW): the corpus round trip through the CLI,
// gc emptying the bucket, init's contract, and an outage in the middle of a batch of ingests.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Store } from '../src/store.js';
import { silentLogger } from '../src/util/logger.js';
import { corpusFiles, runCli, tmpDir } from './helpers.js';
import { bucketKeys, canRestartRgw, freshBucket, s3Env, startRgw, stopRgw } from './s3-env.js';
import { messageWith } from './mailgen.js';

const env = s3Env();
const json = (b: Buffer) => b.toString().trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));

describe.runIf(env !== null)('a store on S3 (Ceph RGW)', () => {
  it('the whole corpus round-trips through the CLI; re-import adds no blob bytes; expunge all + gc --grace 0 leaves the bucket empty; check clean', async () => {
    const loc = await freshBucket();
    const store = tmpDir();
    const s3 = ['--s3', `s3://${loc.bucket}/corpus`, '--s3-endpoint', env!.endpoint];
    expect((await runCli(['--store', store, 'init', ...s3])).code).toBe(0);
    const imp = await runCli(['--store', store, 'import', '--user', 'u', '--json', '--format', 'eml', ...corpusFiles()]);
    expect(imp.code, imp.stderr).toBe(0);
    const lines = json(imp.stdout).filter((l) => l.id);
    expect(lines.length).toBe(corpusFiles().length);
    const out = tmpDir();
    expect((await runCli(['--store', store, 'export', '--user', 'u', '--out', out])).code).toBe(0);
    let exact = 0;
    for (const l of lines) if (fs.readFileSync(path.join(out, `${l.id}.eml`)).equals(fs.readFileSync(l.source))) exact++;
    expect(exact).toBe(lines.length);
    const objects = await bucketKeys({ ...loc, prefix: 'corpus/' });
    const rep = JSON.parse((await runCli(['--store', store, 'report', '--json'])).stdout.toString());
    expect(objects.length).toBe(rep.blobs);
    const again = json((await runCli(['--store', store, 'import', '--user', 'v', '--json', '--format', 'eml', ...corpusFiles()])).stdout).pop().summary;
    expect(again.newBlobBytes).toBe(0);
    expect((await runCli(['--store', store, 'check'])).code).toBe(0);
    const ids = (await Store.open(store, { logger: silentLogger }).then(async (s) => {
      const all = [...s.list('u'), ...s.list('v')].map((m) => [m.user, m.id]);
      await s.close();
      return all;
    })) as [string, string][];
    for (const user of ['u', 'v']) {
      const mine = ids.filter((x) => x[0] === user).map((x) => x[1]);
      for (let i = 0; i < mine.length; i += 500) expect((await runCli(['--store', store, 'expunge', '--user', user, ...mine.slice(i, i + 500)])).code).toBe(0);
    }
    expect((await runCli(['--store', store, 'gc', '--grace', '0'])).code).toBe(0);
    expect(await bucketKeys({ ...loc, prefix: 'corpus/' })).toEqual([]);
    const c = await runCli(['--store', store, 'check', '--json']);
    expect(c.code).toBe(0);
    expect(JSON.parse(c.stdout.toString()).blobs).toBe(0);
  });

  it('init records the bucket once: later commands use it without flags; init cannot change a store\'s backend', async () => {
    const loc = await freshBucket();
    const store = tmpDir();
    const s3 = ['--s3', `s3://${loc.bucket}`, '--s3-endpoint', env!.endpoint];
    expect((await runCli(['--store', store, 'init', ...s3])).code).toBe(0);
    expect((await runCli(['--store', store, 'init', ...s3])).code).toBe(0); // the same again: fine
    const m = messageWith(crypto.randomBytes(30_000));
    const id = (await runCli(['--store', store, 'ingest', '--user', 'u'], { input: m })).stdout.toString().trim();
    expect(await bucketKeys(loc)).toHaveLength(1);
    expect((await runCli(['--store', store, 'fetch', '--user', 'u', id])).stdout.equals(m)).toBe(true);
    const other = await runCli(['--store', store, 'init', '--s3', `s3://${loc.bucket}/elsewhere`, '--s3-endpoint', env!.endpoint]);
    expect(other.code).toBe(64);
    expect(other.stderr).toMatch(/cannot be changed/);
    const fsStore = tmpDir();
    await runCli(['--store', fsStore, 'ingest', '--user', 'u'], { input: m });
    const r = await runCli(['--store', fsStore, 'init', ...s3]);
    expect(r.code).toBe(64);
    expect(r.stderr).toMatch(/files under blobs\/: a store's backend cannot be changed/);
    // a bucket that does not exist yet is created
    const fresh = tmpDir();
    const name = `mailcas-new-${crypto.randomBytes(4).toString('hex')}`;
    expect((await runCli(['--store', fresh, 'init', '--s3', `s3://${name}/p`, '--s3-endpoint', env!.endpoint])).code).toBe(0);
    expect((await runCli(['--store', fresh, 'ingest', '--user', 'u'], { input: m })).code).toBe(0);
  });

  it.runIf(canRestartRgw())('the object store going down in the middle of a batch: ingests fail temporarily, nothing half-committed; after it returns every acknowledged message is exact and check is clean', async () => {
    const loc = await freshBucket();
    const dir = tmpDir();
    const s = await Store.open(dir, { s3: loc, logger: silentLogger, retry: { deadlineMs: 300, baseDelayMs: 20 } });
    const msgs = Array.from({ length: 40 }, (_, i) => messageWith(crypto.randomBytes(20_000 + i), { subject: `n${i}` }));
    const acked = new Map<string, Buffer>();
    const failures: { code: string; transient: boolean }[] = [];
    let i = 0;
    const run = async (): Promise<void> => {
      for (; i < msgs.length; ) {
        const m = msgs[i++];
        try {
          acked.set((await s.ingest(m, { user: 'u' })).id, m);
        } catch (e) {
          failures.push({ code: (e as { code: string }).code, transient: (e as { transient: boolean }).transient });
        }
      }
    };
    const workers = Promise.all([run(), run(), run()]);
    while (acked.size < 8) await new Promise((r) => setTimeout(r, 10));
    stopRgw();
    try {
      await workers;
    } finally {
      await startRgw();
    }
    expect(failures.length).toBeGreaterThan(0);
    expect(failures.every((f) => f.code === 'E_BACKEND' && f.transient)).toBe(true);
    expect(s.list('u').length).toBe(acked.size); // nothing half-committed
    for (const [id, m] of acked) expect((await s.fetchBuffer(id)).equals(m)).toBe(true);
    await s.gc({ graceSeconds: 0 }); // objects of failed ingests are uncommitted, reclaimed once their leases expire
    const c = await s.check();
    expect({ consistent: c.consistent, missing: c.missingBlobs, drift: c.drift }).toEqual({ consistent: true, missing: [], drift: [] });
    // the same messages go in now
    for (const m of msgs.slice(0, 3)) await s.ingest(m, { user: 'w' });
    await s.close();
  });
});
