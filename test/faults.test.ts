// Backend faults and a full disk: transient errors, delays, short and corrupted reads through the
// fault-injecting wrapper (with and without the retrying one), and ENOSPC on a small real filesystem
// for both the blobs and the SQLite database. Ingest fails temporarily and cleanly, reads never hand
// out wrong bytes and name the message, retries recover, nothing unacknowledged is counted, and the
// store works again once space is freed.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { Store } from '../src/store.js';
import { FsBackend } from '../src/backend/fs-backend.js';
import { FaultBackend } from '../src/backend/fault-backend.js';
import { RetryBackend } from '../src/backend/retry-backend.js';
import { isMailcasError } from '../src/errors.js';
import { silentLogger } from '../src/util/logger.js';
import { corpusFiles, runCli, tmpDir } from './helpers.js';
import { messageWith } from './mailgen.js';

const corpus = corpusFiles().filter((_, i) => i % 9 === 0);

describe('backend faults', () => {
  it('transient failures and delays under the retrying wrapper: every ingest succeeds, every message exact', async () => {
    const dir = tmpDir();
    const fault = new FaultBackend(new FsBackend(path.join(dir, 'blobs')), { failRate: 0.25, maxDelayMs: 5 });
    const s = await Store.init(dir, { logger: silentLogger, workers: 0, backend: new RetryBackend(fault, { baseDelayMs: 1, maxDelayMs: 10, deadlineMs: 10_000 }) });
    const ids = new Map<string, Buffer>();
    for (const f of corpus) {
      const b = fs.readFileSync(f);
      ids.set((await s.ingest(b, { user: 'u' })).id, b);
    }
    for (const [id, b] of ids) expect((await s.fetchBuffer(id, { user: 'u' })).equals(b)).toBe(true);
    fault.hooks.failRate = 0;
    expect((await s.check()).consistent).toBe(true);
    await s.close();
  });

  it('without retries: each ingest succeeds exactly or fails with a temporary error, and the store stays consistent', async () => {
    const dir = tmpDir();
    const fault = new FaultBackend(new FsBackend(path.join(dir, 'blobs')), { failRate: 0.3 });
    const s = await Store.init(dir, { logger: silentLogger, workers: 0, backend: fault });
    const ok = new Map<string, Buffer>();
    let failed = 0;
    for (const f of corpus) {
      const b = fs.readFileSync(f);
      try {
        ok.set((await s.ingest(b, { user: 'u' })).id, b);
      } catch (e) {
        expect(isMailcasError(e) && e.transient, (e as Error).message).toBe(true);
        failed++;
      }
    }
    expect(failed).toBeGreaterThan(0);
    fault.hooks.failRate = 0;
    for (const [id, b] of ok) expect((await s.fetchBuffer(id, { user: 'u' })).equals(b)).toBe(true);
    expect(s.list('u').length).toBe(ok.size); // nothing that failed is there
    await s.gc({ graceSeconds: 0, now: () => Date.now() + 2 * 3600_000 });
    const c = await s.check();
    expect({ consistent: c.consistent, orphans: c.orphans, uncommitted: c.uncommitted, drift: c.drift }).toEqual({ consistent: true, orphans: [], uncommitted: [], drift: [] });
    await s.close();
  });

  it('short and corrupted reads: a fetch gives the exact bytes or fails naming the message; never other bytes', async () => {
    const dir = tmpDir();
    const fault = new FaultBackend(new FsBackend(path.join(dir, 'blobs')));
    const s = await Store.init(dir, { logger: silentLogger, workers: 0, backend: fault });
    const msgs = new Map<string, Buffer>();
    for (let i = 0; i < 12; i++) {
      const b = messageWith(crypto.randomBytes(20_000 + i * 150_000), { subject: `faulty ${i}` });
      msgs.set((await s.ingest(b, { user: 'u' })).id, b);
    }
    fault.hooks.shortReadRate = 0.3;
    fault.hooks.corruptRate = 0.3;
    let exact = 0;
    let refused = 0;
    for (let round = 0; round < 4; round++) {
      for (const [id, b] of msgs) {
        try {
          const got = await s.fetchBuffer(id, { user: 'u' });
          expect(got.equals(b), `message ${id}`).toBe(true);
          exact++;
        } catch (e) {
          expect(isMailcasError(e), (e as Error).message).toBe(true);
          expect((e as Error).message).toMatch(new RegExp(`message ${id}`));
          refused++;
        }
      }
    }
    expect(exact).toBeGreaterThan(0);
    expect(refused).toBeGreaterThan(0);
    // damage on the way is not damage at rest: a blob is marked corrupt only when three more reads fail too (here,
    // with faults this frequent, that happens); check --deep reads every blob again and clears marks that do not hold
    fault.hooks.shortReadRate = 0;
    fault.hooks.corruptRate = 0;
    const c = await s.check({ deep: true });
    expect({ consistent: c.consistent, corruptBlobs: c.corruptBlobs, damagedMessages: c.damagedMessages }).toEqual({ consistent: true, corruptBlobs: [], damagedMessages: [] });
    for (const [id, b] of msgs) expect((await s.fetchBuffer(id, { user: 'u' })).equals(b)).toBe(true);
    await s.close();
  });
});

describe('faults under gc and the fronts', () => {
  it('gc with failing deletes: each run fails temporarily or finishes; nothing referenced goes; a later run completes', async () => {
    const dir = tmpDir();
    const fault = new FaultBackend(new FsBackend(path.join(dir, 'blobs')));
    const s = await Store.init(dir, { logger: silentLogger, workers: 0, backend: fault });
    const keep = new Map<string, Buffer>();
    const gone: string[] = [];
    for (const [i, f] of corpus.entries()) {
      const b = fs.readFileSync(f);
      const id = (await s.ingest(b, { user: 'u' })).id;
      if (i % 2) keep.set(id, b);
      else gone.push(id);
    }
    await s.expunge('u', gone);
    fault.hooks.failRate = 0.3;
    let failures = 0;
    for (let i = 0; i < 5; i++) {
      try {
        await s.gc({ graceSeconds: 0 });
      } catch (e) {
        expect(isMailcasError(e) && e.transient, (e as Error).message).toBe(true);
        failures++;
      }
    }
    fault.hooks.failRate = 0;
    await s.gc({ graceSeconds: 0 });
    for (const [id, b] of keep) expect((await s.fetchBuffer(id, { user: 'u' })).equals(b)).toBe(true);
    const c = await s.check();
    expect({ consistent: c.consistent, unreferenced: c.unreferenced, orphans: c.orphans }).toEqual({ consistent: true, unreferenced: 0, orphans: [] });
    expect(failures).toBeGreaterThan(0);
    await s.close();
  });

  it('the HTTP front under damaged reads: every answer is the exact bytes or a cut connection, never other bytes', async () => {
    const { HttpService } = await import('../src/service/http-server.js');
    const { Tokens } = await import('../src/service/tokens.js');
    const dir = tmpDir();
    const fault = new FaultBackend(new FsBackend(path.join(dir, 'blobs')));
    const s = await Store.init(dir, { logger: silentLogger, workers: 0, backend: fault });
    const msgs = new Map<string, Buffer>();
    for (let i = 0; i < 6; i++) {
      const b = messageWith(crypto.randomBytes(50_000 + i * 400_000), { subject: `http ${i}` });
      msgs.set((await s.ingest(b, { user: 'u' })).id, b);
    }
    const svc = new HttpService(s, Tokens.parse('tok-0123456789abcdef u\n'), { log: silentLogger });
    const base = `http://${await svc.listen({ host: '127.0.0.1', port: 0 })}`;
    fault.hooks.corruptRate = 0.4;
    fault.hooks.shortReadRate = 0.2;
    let exact = 0;
    let cut = 0;
    for (let round = 0; round < 3; round++) {
      for (const [id, b] of msgs) {
        try {
          const r = await fetch(`${base}/v1/users/u/messages/${id}`, { headers: { Authorization: 'Bearer tok-0123456789abcdef' } });
          if (r.status !== 200) {
            expect(r.status).toBeGreaterThanOrEqual(500); // damaged before the first byte: a JSON error
            cut++;
            continue;
          }
          const got = Buffer.from(await r.arrayBuffer());
          expect(got.equals(b), `message ${id}`).toBe(true);
          exact++;
        } catch {
          cut++; // the connection was cut part way: the client sees a short body, never a wrong one
        }
      }
    }
    expect(exact + cut).toBe(18);
    expect(cut).toBeGreaterThan(0);
    await svc.close(100);
    await s.close();
  });
});

// A real full disk: a small tmpfs, where the machine lets the test mount one (root); otherwise said and skipped.
const mountPoint = path.join(tmpDir(), 'small');
fs.mkdirSync(mountPoint, { recursive: true });
const mounted = process.getuid?.() === 0 && spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=6m', 'tmpfs', mountPoint]).status === 0;
if (!mounted) console.log('disk-full tests skipped: cannot mount a small tmpfs here (needs root)');
afterAll(() => {
  if (mounted) spawnSync('umount', ['-l', mountPoint]);
});

describe.runIf(mounted)('a full disk (6 MB tmpfs)', () => {
  const fill = (name: string, leave: number): void => {
    const st = fs.statfsSync(mountPoint);
    const free = st.bavail * st.bsize;
    fs.writeFileSync(path.join(mountPoint, name), Buffer.alloc(Math.max(0, free - leave)));
  };

  it('blobs: ENOSPC is a temporary failure (exit 75) naming it; nothing half-written; works again once space is freed', async () => {
    const store = path.join(mountPoint, 'a');
    expect((await runCli(['--store', store, 'init'])).code).toBe(0);
    fill('filler-a', 300 * 1024);
    const big = path.join(tmpDir(), 'big.eml');
    fs.writeFileSync(big, messageWith(crypto.randomBytes(600_000), { subject: 'too big for the space left' }));
    const r = await runCli(['--store', store, 'ingest', '--user', 'u', big]);
    expect(r.code).toBe(75);
    expect(r.stderr.toString()).toMatch(/ENOSPC|no space|disk is full/i);
    expect(r.stderr.toString().trim().split('\n')).toHaveLength(1);
    const chk = await runCli(['--store', store, 'check', '--json']);
    const rep = JSON.parse(chk.stdout.toString());
    expect({ code: chk.code, orphans: rep.orphans, messages: rep.messages }).toEqual({ code: 0, orphans: [], messages: 0 });
    expect(fs.readdirSync(path.join(store, 'tmp'))).toEqual([]);
    fs.rmSync(path.join(mountPoint, 'filler-a'));
    const again = await runCli(['--store', store, 'ingest', '--user', 'u', big]);
    expect(again.code).toBe(0);
    const f = await runCli(['--store', store, 'fetch', '--user', 'u', again.stdout.toString().trim()]);
    expect(f.stdout.equals(fs.readFileSync(big))).toBe(true);
    fs.rmSync(store, { recursive: true, force: true });
  });

  it('the database: a volume with no room for SQLite gives a temporary failure that says the disk is full; works again after', async () => {
    const store = path.join(mountPoint, 'b');
    expect((await runCli(['--store', store, 'init'])).code).toBe(0);
    const small = path.join(tmpDir(), 'small.eml');
    fs.writeFileSync(small, `Subject: small\n\n${crypto.randomBytes(2000).toString('base64')}\n`);
    expect((await runCli(['--store', store, 'ingest', '--user', 'u', small])).code).toBe(0);
    fill('filler-b', 0);
    let r = await runCli(['--store', store, 'ingest', '--user', 'u', small]);
    for (let i = 0; i < 20 && r.code === 0; i++) r = await runCli(['--store', store, 'ingest', '--user', 'u', small]);
    expect(r.code).toBe(75);
    expect(r.stderr.toString()).toMatch(/disk is full|ENOSPC|no space/i);
    fs.rmSync(path.join(mountPoint, 'filler-b'));
    const ok = await runCli(['--store', store, 'ingest', '--user', 'u', small]);
    expect(ok.code).toBe(0);
    const chk = await runCli(['--store', store, 'check', '--json']);
    expect(chk.code).toBe(0);
    const list = await runCli(['--store', store, 'list', '--user', 'u', '--json']);
    for (const l of list.stdout.toString().trim().split('\n')) {
      const f = await runCli(['--store', store, 'fetch', '--user', 'u', JSON.parse(l).id]);
      expect(f.stdout.equals(fs.readFileSync(small))).toBe(true);
    }
  });
});
