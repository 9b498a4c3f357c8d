// Every command as a new operator meets it: bad arguments, wrong kinds of paths, damaged or
// unwritable stores, interrupted imports. Each case: one line on stderr (no stack trace), a
// sysexits code, and a store that still passes check.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { BIN, corpusFiles, runCli, tmpDir, type CliResult, installedForOthers, whyNobodyCannotRun } from './helpers.js';
import { messageWith } from './mailgen.js';

const json = (b: Buffer) => b.toString().trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));

/** One line on stderr, starting "mailcas: ", no stack trace; the expected exit code. */
function oneLine(r: CliResult, code: number, pattern: RegExp): void {
  expect({ code: r.code, stderr: r.stderr }).toMatchObject({ code, stderr: expect.stringMatching(pattern) });
  expect(r.stderr.trim().split('\n'), r.stderr).toHaveLength(1);
  expect(r.stderr).toMatch(/^mailcas: /);
  expect(r.stderr).not.toMatch(/\n\s+at |\.(js|ts):\d+/);
}

async function checkClean(store: string): Promise<void> {
  const c = await runCli(['--store', store, 'check', '--json']);
  expect(c.code, c.stdout.toString() + c.stderr).toBe(0);
}

async function storeWith(n = 2): Promise<{ store: string; ids: string[]; msgs: Buffer[] }> {
  const store = tmpDir();
  const msgs = Array.from({ length: n }, (_, i) => messageWith(crypto.randomBytes(10_000), { subject: `m${i}` }));
  const ids: string[] = [];
  for (const m of msgs) ids.push((await runCli(['--store', store, 'ingest', '--user', 'u'], { input: m })).stdout.toString().trim());
  return { store, ids, msgs };
}

const isRoot = process.getuid?.() === 0;
const NOBODY = 65534;

describe('the command line under hostile arguments and environments', () => {
  it('ingest: a directory, a missing file, an empty file and empty stdin are refused in one line; nothing is stored', async () => {
    const { store } = await storeWith(1);
    oneLine(await runCli(['--store', store, 'ingest', '--user', 'a', os.tmpdir()]), 66, /is a directory, not a message file/);
    oneLine(await runCli(['--store', store, 'ingest', '--user', 'a', '/nonexistent/m.eml']), 66, /no such file: \/nonexistent\/m.eml/);
    const empty = path.join(tmpDir(), 'empty.eml');
    fs.writeFileSync(empty, '');
    oneLine(await runCli(['--store', store, 'ingest', '--user', 'a', empty]), 65, /empty message/);
    oneLine(await runCli(['--store', store, 'ingest', '--user', 'a'], { input: Buffer.alloc(0) }), 65, /empty message/);
    expect(JSON.parse((await runCli(['--store', store, 'report', '--json'])).stdout.toString()).messages).toBe(1);
    await checkClean(store);
  });

  it('missing and extra arguments, bad numbers, unknown commands: usage errors (64) in one line', async () => {
    const { store, ids } = await storeWith(1);
    for (const args of [
      ['ingest'],
      ['fetch', '--user', 'u'],
      ['fetch', '--user', 'u', ids[0], 'extra'],
      ['export', '--user', 'u'],
      ['expunge', '--user', 'u'],
      ['import', '--user', 'u'],
      ['gc', '--grace', 'soon'],
      ['import', '--user', 'u', '--concurrency', '0', os.tmpdir()],
      ['report', '--top', 'x'],
      ['frobnicate'],
      ['--max-parts', '-3', 'report'],
    ]) {
      oneLine(await runCli(['--store', store, ...args]), 64, /./);
    }
    await checkClean(store);
  });

  it('export --out naming an existing file is a usage error; the file is untouched', async () => {
    const { store } = await storeWith(1);
    const f = path.join(tmpDir(), 'existing');
    fs.writeFileSync(f, 'keep me');
    oneLine(await runCli(['--store', store, 'export', '--user', 'u', '--out', f]), 64, /exists and is not a directory/);
    expect(fs.readFileSync(f, 'utf8')).toBe('keep me');
  });

  it('a damaged database says so, where, and what to do (exit 74), for every command', async () => {
    const { store } = await storeWith(1);
    const db = path.join(store, 'meta.sqlite');
    for (const f of fs.readdirSync(store).filter((n) => n.startsWith('meta.sqlite-'))) fs.rmSync(path.join(store, f));
    fs.writeFileSync(db, Buffer.concat([Buffer.from('this is no database '), crypto.randomBytes(8000)]));
    for (const args of [['report'], ['fetch', '--user', 'u', '1'], ['check'], ['ingest', '--user', 'u']]) {
      oneLine(await runCli(['--store', store, ...args], { input: Buffer.from('Subject: x\n\ny\n') }), 74, new RegExp(`database ${db.replace(/[.]/g, '\\.')} is damaged.*restore it from a backup`));
    }
  });

  it('store paths that cannot be made fail at once: under /proc, a file, an unusable $MAILCAS_STORE', { timeout: 30_000 }, async () => {
    const m = Buffer.from('Subject: x\n\ny\n');
    oneLine(await runCli(['--store', '/proc/x', 'ingest', '--user', 'u'], { input: m, timeoutMs: 10_000 }), 74, /cannot create directory \/proc\/x/);
    oneLine(await runCli(['ingest', '--user', 'u'], { input: m, env: { MAILCAS_STORE: '/proc/nowhere/store' }, timeoutMs: 10_000 }), 74, /cannot create directory \/proc\/nowhere/);
    const file = path.join(tmpDir(), 'a-file');
    fs.writeFileSync(file, 'x');
    oneLine(await runCli(['--store', file, 'ingest', '--user', 'u'], { input: m }), 74, /exists and is not a directory/);
    oneLine(await runCli(['--store', file, 'report']), 74, /exists and is not a directory/);
  });

  it.runIf(isRoot)('a store the user cannot write, and message files it cannot read (run as nobody)', async () => {
    // (nobody runs a copy of the package it can reach, wherever the checkout is: see installedForOthers)
    expect(whyNobodyCannotRun(installedForOthers().bin)).toBeNull();
    const { store } = await storeWith(1);
    oneLine(await runCli(['--store', store, 'ingest', '--user', 'u'], { input: Buffer.from('Subject: x\n\ny\n'), uid: NOBODY }), 74, /cannot|readonly|read-only|permission/i);
    const mine = tmpDir();
    fs.chmodSync(mine, 0o777);
    const secret = path.join(mine, 'secret.eml');
    fs.writeFileSync(secret, 'Subject: s\n\nsecret\n');
    fs.chmodSync(secret, 0o000);
    const s2 = path.join(mine, 'store');
    oneLine(await runCli(['--store', s2, 'ingest', '--user', 'u', secret], { uid: NOBODY }), 66, /cannot read .*secret\.eml: permission denied/);
    const dir = path.join(mine, 'msgs');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'a.eml'), 'Subject: a\n\nA\n');
    fs.copyFileSync(secret, path.join(dir, 'b.eml'));
    fs.chmodSync(path.join(dir, 'b.eml'), 0o000);
    fs.chmodSync(dir, 0o777);
    const r = await runCli(['--store', s2, 'import', '--user', 'u', '--json', dir], { uid: NOBODY });
    expect(r.code).toBe(66); // an entry could not be read (refused input would be 65)
    const lines = json(r.stdout);
    expect(lines.filter((l) => l.id)).toHaveLength(1);
    expect(lines.filter((l) => l.error)[0]).toMatchObject({ error: expect.stringMatching(/permission denied/), code: 'E_SOURCE' });
    expect(lines.pop().summary).toMatchObject({ messages: 1, failed: 1 });
    const c = await runCli(['--store', s2, 'check'], { uid: NOBODY });
    expect(c.code).toBe(0);
  });

  it('import checks every PATH before importing anything: a missing one in the middle imports nothing', async () => {
    const store = tmpDir();
    const d1 = tmpDir();
    const d2 = tmpDir();
    for (let i = 0; i < 5; i++) fs.writeFileSync(path.join(d1, `${i}.eml`), `Subject: ${i}\n\nx\n`);
    fs.writeFileSync(path.join(d2, 'z.eml'), 'Subject: z\n\nz\n');
    oneLine(await runCli(['--store', store, 'import', '--user', 'a', d1, '/missing', d2]), 66, /no such file or directory: \/missing/);
    expect(fs.existsSync(path.join(store, 'meta.sqlite'))).toBe(false); // nothing imported, not even a store made
  });

  it('a missing blob directory: fetch names the damage, check reports it, nothing crashes', async () => {
    const { store, ids } = await storeWith(2);
    fs.rmSync(path.join(store, 'blobs'), { recursive: true, force: true });
    oneLine(await runCli(['--store', store, 'fetch', '--user', 'u', ids[0]]), 1, new RegExp(`message ${ids[0]}, part 2: blob [0-9a-f]+ is missing`));
    const c = await runCli(['--store', store, 'check', '--json']);
    expect(c.code).toBe(1);
    expect(JSON.parse(c.stdout.toString()).damagedMessages).toEqual(ids);
  });

  it('an interrupted import resumes with --skip-existing: every message once, the rest reported as skipped', async () => {
    const store = tmpDir();
    const files = corpusFiles().slice(0, 300);
    const acked = await new Promise<string[]>((resolve) => {
      const p = spawn(process.execPath, [BIN, '--store', store, 'import', '--user', 'u', '--format', 'eml', '--json', ...files], { stdio: ['ignore', 'pipe', 'ignore'], env: { ...process.env, MAILCAS_NO_PROGRESS: '1' } });
      const lines: string[] = [];
      let buf = '';
      p.stdout.on('data', (c: Buffer) => {
        buf += c.toString();
        let i;
        while ((i = buf.indexOf('\n')) >= 0) {
          lines.push(buf.slice(0, i));
          buf = buf.slice(i + 1);
          if (lines.length === 120) p.kill('SIGKILL');
        }
      });
      p.on('close', () => resolve(lines));
    });
    expect(acked.length).toBeGreaterThanOrEqual(120);
    const before = JSON.parse((await runCli(['--store', store, 'report', '--json'])).stdout.toString()).messages as number;
    expect(before).toBeGreaterThanOrEqual(120); // committed; some perhaps not yet printed when the kill came
    const again = await runCli(['--store', store, 'import', '--user', 'u', '--format', 'eml', '--json', '--skip-existing', ...files]);
    expect(again.code).toBe(0);
    const lines = json(again.stdout);
    const summary = lines.pop().summary;
    const skipped = lines.filter((l) => l.skipped);
    expect(skipped.length).toBeGreaterThanOrEqual(120);
    for (const l of skipped) expect(Object.keys(l).sort()).toEqual(['id', 'size', 'skipped', 'source']);
    expect(summary.skipped + summary.messages).toBe(files.length);
    const rep = JSON.parse((await runCli(['--store', store, 'report', '--json'])).stdout.toString());
    expect(rep.messages).toBe(before + summary.messages); // nothing stored the first time was stored again
    // running it a third time adds nothing
    const third = json((await runCli(['--store', store, 'import', '--user', 'u', '--format', 'eml', '--json', '--skip-existing', ...files])).stdout).pop().summary;
    expect(third.messages).toBe(0);
    await checkClean(store);
  });

  it('report on an empty store says so plainly; --json keeps its numbers sane', async () => {
    const store = tmpDir();
    expect((await runCli(['--store', store, 'init'])).code).toBe(0);
    const h = await runCli(['--store', store, 'report']);
    expect(h.code).toBe(0);
    expect(h.stdout.toString()).toMatch(/^the store is empty: no messages yet/);
    const j = JSON.parse((await runCli(['--store', store, 'report', '--json'])).stdout.toString());
    expect(j).toMatchObject({ messages: 0, bytesSaved: 0, dedupRatio: null });
    for (const k of ['dedupSaved', 'decodeSaved', 'compressionSaved']) expect(j[k]).toBeGreaterThanOrEqual(0);
  });

  it('--help shows an example for every command; --version prints the version', async () => {
    const v = await runCli(['--version']);
    expect(v.stdout.toString().trim()).toBe(JSON.parse(fs.readFileSync(path.join(path.dirname(BIN), '..', 'package.json'), 'utf8')).version);
    const top = (await runCli(['--help'])).stdout.toString();
    expect(top).toMatch(/Examples:\n\s+\$ mailcas/);
    for (const cmd of ['ingest', 'import', 'fetch', 'list', 'export', 'expunge', 'gc', 'check', 'report', 'analyze', 'tier', 'flush', 'compact', 'deliver', 'lmtp', 'serve', 'imap', 'move-user']) {
      const r = await runCli([cmd, '--help']);
      expect(r.code).toBe(0);
      expect(r.stdout.toString(), cmd).toMatch(new RegExp(`Examples:\\n\\s+\\$ mailcas [^\\n]*\\b${cmd}\\b`));
      // each default said once (the parser prints "(default: X)" for options that have one)
      expect(r.stdout.toString().replace(/\s+/g, ' '), cmd).not.toMatch(/\(default [^)]*\) \(default:/);
    }
  });
});
