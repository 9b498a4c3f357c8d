// The operator's first week: exact resume after interruptions (duplicate source files included, any
// concurrency), Ctrl-C on a real terminal, special files in a directory, a typo in --store, a user who
// may only read the store, temp files left by kills, check --deep's counts, the report's text, the
// progress bar's ETA and the demo.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { Store } from '../src/store.js';
import { silentLogger } from '../src/util/logger.js';
import { SmoothRate } from '../src/cli/progress.js';
import { BIN, ROOT, corpusFiles, runCli, tmpDir } from './helpers.js';

const json = (b: Buffer | string) =>
  b
    .toString()
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));

/** A tree of messages with byte-identical copies (as real mail trees have), in nested folders. */
function treeWithDuplicates(n: number, copies: number): string {
  const dir = tmpDir();
  const files = corpusFiles().slice(0, n);
  files.forEach((f, i) => {
    const sub = path.join(dir, `f${i % 5}`);
    fs.mkdirSync(sub, { recursive: true });
    fs.copyFileSync(f, path.join(sub, `m${i}.eml`));
  });
  for (let i = 0; i < copies; i++) fs.copyFileSync(files[i % 7], path.join(dir, `f${i % 3}`, `copy${i}.eml`));
  return dir;
}

/** The multiset of message hashes per mailbox of a user. */
async function contents(store: string): Promise<string[]> {
  const s = await Store.open(store, { logger: silentLogger, readOnly: true });
  try {
    return s
      .list('u')
      .map((m) => `${m.mailbox} ${m.hash}`)
      .sort();
  } finally {
    await s.close();
  }
}

/** An import killed (SIGKILL) once `after` JSON lines are out. */
function killedImport(store: string, dir: string, after: number, concurrency: number): Promise<number> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [BIN, '--store', store, 'import', '--user', 'u', '--json', '--skip-existing', '--concurrency', String(concurrency), dir], {
      stdio: ['ignore', 'pipe', 'ignore'],
      env: { ...process.env, MAILCAS_NO_PROGRESS: '1' },
    });
    let lines = 0;
    p.stdout.on('data', (c: Buffer) => {
      lines += c.toString().split('\n').length - 1;
      if (lines >= after) p.kill('SIGKILL');
    });
    p.on('close', () => resolve(lines));
  });
}

describe("the operator's first week", () => {
  it('re-running an import after any interruption ends with exactly what one uninterrupted run stores (duplicate files too, concurrency 1 and 32)', async () => {
    const dir = treeWithDuplicates(120, 25);
    const reference = path.join(tmpDir(), 'store');
    expect((await runCli(['--store', reference, 'import', '--user', 'u', dir])).code).toBe(0);
    const want = await contents(reference);
    expect(want.length).toBe(145); // every file a message, the 25 byte-identical copies included
    for (const concurrency of [1, 32]) {
      // --skip-existing on an empty store: the same as without it
      const fresh = path.join(tmpDir(), 'store');
      expect((await runCli(['--store', fresh, 'import', '--user', 'u', '--skip-existing', '--concurrency', String(concurrency), dir])).code).toBe(0);
      expect(await contents(fresh)).toEqual(want);
      // killed twice, then run to the end: the same again
      const store = path.join(tmpDir(), 'store');
      await killedImport(store, dir, 30, concurrency);
      await killedImport(store, dir, 60, concurrency);
      const last = await runCli(['--store', store, 'import', '--user', 'u', '--json', '--skip-existing', '--concurrency', String(concurrency), dir]);
      expect(last.code).toBe(0);
      expect(await contents(store)).toEqual(want);
      // and once more: nothing new
      const again = json((await runCli(['--store', store, 'import', '--user', 'u', '--json', '--skip-existing', dir])).stdout).pop().summary;
      expect(again).toMatchObject({ messages: 0, skipped: 145 });
    }
  });

  it.runIf(spawnSync('script', ['--version']).status === 0)('Ctrl-C on a terminal: the terminal restored, one line on what was committed and how to resume, every committed message has its --json line, exit 130', async () => {
    const store = path.join(tmpDir(), 'store');
    const out = path.join(tmpDir(), 'lines.jsonl');
    const files = corpusFiles();
    const env = { ...process.env };
    delete env.MAILCAS_NO_PROGRESS;
    // a real pseudo-terminal (script(1)); ^C typed into it is SIGINT to the import, as at a prompt
    const cmd = `${process.execPath} ${BIN} --store ${store} import --user u --json --concurrency 8 ${path.join(ROOT, 'corpus')} > ${out}`;
    const p = spawn('script', ['-qfec', cmd, '/dev/null'], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let tty = '';
    p.stdout.on('data', (c: Buffer) => (tty += c.toString('latin1')));
    for (let i = 0; i < 300 && !/import \[/.test(tty); i++) await new Promise((r) => setTimeout(r, 20));
    await new Promise((r) => setTimeout(r, 800));
    p.stdin.write('\x03');
    const code = await new Promise<number | null>((r) => p.on('close', r));
    expect(code).toBe(130);
    expect(tty).toContain('\x1b[?25l'); // the bar hid the cursor...
    expect(tty.lastIndexOf('\x1b[?25h')).toBeGreaterThan(tty.lastIndexOf('\x1b[?25l')); // ...and showed it again
    expect(tty).toMatch(/interrupted \(SIGINT\): \d+ messages committed.*run the same command with --skip-existing to finish/);
    const lines = json(fs.readFileSync(out));
    const summary = lines.pop().summary;
    expect(summary.interrupted).toBe('SIGINT');
    const committed = (await contents(store)).length;
    expect(committed).toBeGreaterThan(0);
    expect(committed).toBeLessThan(files.length);
    expect(lines.filter((l) => l.id).length).toBe(committed); // no committed message without its line
  });

  it('a FIFO, a socket and a link to /dev/zero in a directory: each a failed entry with its reason, never opened; exit 66; the mail beside them imported', async () => {
    const dir = tmpDir();
    fs.copyFileSync(corpusFiles()[0], path.join(dir, 'a.eml'));
    spawnSync('mkfifo', [path.join(dir, 'fifo')]);
    const server = net.createServer().listen(path.join(dir, 'sock'));
    await new Promise((r) => server.once('listening', r));
    fs.symlinkSync('/dev/zero', path.join(dir, 'zero'));
    const r = await runCli(['--store', path.join(tmpDir(), 'store'), 'import', '--user', 'u', '--json', dir], { timeoutMs: 30_000 });
    server.close();
    expect(r.code).toBe(66);
    const lines = json(r.stdout);
    const summary = lines.pop().summary;
    expect(summary).toMatchObject({ messages: 1, failed: 3, unreadable: 3, refused: 0 });
    const failed = Object.fromEntries(lines.filter((l) => l.error).map((l) => [path.basename(l.source), l]));
    expect(failed.fifo).toMatchObject({ code: 'E_SOURCE', error: expect.stringMatching(/is a FIFO, not a message file/) });
    expect(failed.sock).toMatchObject({ code: 'E_SOURCE', error: expect.stringMatching(/is a socket/) });
    expect(failed.zero).toMatchObject({ code: 'E_SOURCE', error: expect.stringMatching(/is a character device/) });
    expect(r.stderr).toMatch(/fifo is a FIFO/);
  });

  it('a typo in --store: check, report, list, gc and export exit 66 naming the directory and create nothing', async () => {
    const typo = path.join(tmpDir(), 'no-such-store');
    for (const args of [['check'], ['report'], ['list', '--user', 'u'], ['gc'], ['export', '--user', 'u', '--out', tmpDir()]]) {
      const r = await runCli(['--store', typo, ...args]);
      expect(r.code, args[0]).toBe(66);
      expect(r.stderr).toContain(`no mailcas store in ${typo}`);
    }
    expect(fs.existsSync(typo)).toBe(false);
  });

  it.runIf(process.getuid?.() === 0)('a user who may read the store but not write it runs list and report (as nobody)', async () => {
    const dir = tmpDir();
    fs.chmodSync(dir, 0o755);
    const store = path.join(dir, 'store');
    expect((await runCli(['--store', store, 'ingest', '--user', 'u', corpusFiles()[0]])).code).toBe(0);
    const list = await runCli(['--store', store, 'list', '--user', 'u'], { uid: 65534 });
    expect(list.stderr).toBe('');
    expect(list.code).toBe(0);
    expect(list.stdout.toString().split('\n').filter(Boolean)).toHaveLength(1);
    const report = await runCli(['--store', store, 'report', '--json'], { uid: 65534 });
    expect(report.code).toBe(0);
    expect(JSON.parse(report.stdout.toString()).messages).toBe(1);
    expect(fs.readdirSync(store).sort()).toEqual(['blobs', 'meta.sqlite', 'tmp']); // nothing written into it
  });

  it('temp files left by killed writers: check reports them, gc removes those older than its grace (10 minutes at least); check --deep says what it re-hashed', async () => {
    const store = path.join(tmpDir(), 'store');
    expect((await runCli(['--store', store, 'ingest', '--user', 'u', corpusFiles()[3]])).code).toBe(0);
    const old = Date.now() / 1000 - 3600;
    for (const [d, n] of [
      [path.join(store, 'blobs', '.tmp'), 'blob-left'],
      [path.join(store, 'tmp'), 'spool-left'],
    ]) {
      fs.writeFileSync(path.join(d, n), Buffer.alloc(1000));
      fs.utimesSync(path.join(d, n), old, old);
    }
    fs.writeFileSync(path.join(store, 'tmp', 'spool-fresh'), Buffer.alloc(10)); // a writer in flight
    const c = JSON.parse((await runCli(['--store', store, 'check', '--json'])).stdout.toString());
    expect(c).toMatchObject({ consistent: true, tempFiles: 3, tempBytes: 2010 });
    const g = JSON.parse((await runCli(['--store', store, 'gc', '--grace', '0', '--json'])).stdout.toString());
    expect(g).toMatchObject({ deletedTempFiles: 2, deletedTempBytes: 2000 });
    expect(fs.existsSync(path.join(store, 'tmp', 'spool-fresh'))).toBe(true);
    const deep = await runCli(['--store', store, 'check', '--deep']);
    expect(deep.stdout.toString()).toMatch(/re-hashed: \d+ blobs \(\d+ bytes\), every one read back whole/);
  });

  it('the report: small sizes in their unit, the savings lines explained, inline parts at their stored share, a filename of two encoded-words joined', async () => {
    const store = path.join(tmpDir(), 'store');
    const name = '=?UTF-8?B?cmVwb3J0Lmdp?= =?UTF-8?B?Zg==?=';
    const msg = Buffer.from(
      `Subject: s\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n${'hello world, hello again. '.repeat(30)}\r\n--b\r\nContent-Type: image/gif; name="${name}"\r\nContent-Transfer-Encoding: base64\r\n\r\n${Buffer.alloc(6000, 7).toString('base64')}\r\n--b--\r\n`,
    );
    for (const u of ['a', 'b']) expect((await runCli(['--store', store, 'ingest', '--user', u], { input: msg })).code).toBe(0);
    const text = (await runCli(['--store', store, 'report'])).stdout.toString();
    expect(text).not.toMatch(/0\.00 MB/);
    expect(text).toMatch(/\d+(\.\d+)? KB/);
    expect(text).toMatch(/the three overlap.*need not add up to "saved"/);
    const r = JSON.parse((await runCli(['--store', store, 'report', '--json'])).stdout.toString());
    const plain = r.byContentType.find((c: { contentType: string }) => c.contentType === 'text/plain');
    const inline = r.byComponent.find((c: { component: string }) => c.component === 'inlineBodies');
    expect(plain.storedBytes).toBeLessThanOrEqual(inline.storedBytes); // its share of the compressed column, not its canonical size
    expect(plain.storedBytes).toBeLessThan(plain.logicalBytes);
    expect(r.topShared[0].filenames).toEqual(['report.gif']);
  });

  it("the progress bar's ETA follows a rate smoothed over time, not the last message's size", () => {
    let t = 0;
    const r = new SmoothRate(() => t);
    const etas: number[] = [];
    const secs = (s: string): number => (/^(\d+)m(\d+)s$/.test(s) ? Number(RegExp.$1) * 60 + Number(RegExp.$2) : Number(s.replace('s', '')));
    // 10 MB/s on average, as one 8 MB message and then a run of tiny ones each half second
    for (let i = 0; i < 60; i++) {
      t += 500;
      r.add(i % 8 === 0 ? 40_000_000 : 10_000);
      if (i > 16) etas.push(secs(r.eta(1_000_000_000)));
    }
    const lo = Math.min(...etas);
    const hi = Math.max(...etas);
    expect(hi / lo).toBeLessThan(2); // the per-message estimate swings by a factor of thousands here
  });

  it('npm run demo imports only mail, proves the round trip and can run twice', { timeout: 240_000 }, () => {
    const cwd = tmpDir();
    const run = () => spawnSync(process.execPath, [path.join(ROOT, 'scripts', 'demo.mjs')], { cwd, encoding: 'utf8', env: { ...process.env, MAILCAS_NO_PROGRESS: '1' } });
    const first = run();
    expect(first.status, first.stderr).toBe(0);
    const n = corpusFiles().length;
    expect(first.stdout).toContain(`imported ${n} messages`);
    expect(first.stdout).toContain(`round trip: ${n} of ${n} messages exported byte-identical to their source files`);
    expect(first.stdout).toMatch(/re-hashed: \d+ blobs/);
    expect(first.stdout).toMatch(/saved .*ratio/);
    const second = run();
    expect(second.status).toBe(0);
    expect(second.stdout).toContain(`imported 0 messages (0.0 MB); ${n} already there`);
  });
});
