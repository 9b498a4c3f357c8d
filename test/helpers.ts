import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const ROOT = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
export const BIN = path.join(ROOT, 'bin', 'mailcas.js');
/** The corpus the round-trip tests run on (MAILCAS_CORPUS points elsewhere to try unseen mail). */
export const CORPUS = process.env.MAILCAS_CORPUS ?? path.join(ROOT, 'corpus');

export function tmpDir(prefix = 'mailcas-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export interface CliResult {
  code: number;
  stdout: Buffer;
  stderr: string;
}

/** Runs the real CLI in a child process. */
export function runCli(args: string[], opts: { input?: Buffer; env?: Record<string, string>; cwd?: string; uid?: number; gid?: number; timeoutMs?: number } = {}): Promise<CliResult> {
  // as another user: the copy every user can reach (the checkout may be under a directory only its owner can enter)
  const bin = opts.uid !== undefined ? installedForOthers().bin : BIN;
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [bin, ...args], {
      cwd: opts.cwd ?? (opts.uid !== undefined ? '/' : ROOT),
      env: { ...process.env, MAILCAS_NO_PROGRESS: '1', ...opts.env },
      stdio: ['pipe', 'pipe', 'pipe'],
      ...(opts.uid !== undefined ? { uid: opts.uid, gid: opts.gid ?? opts.uid } : {}),
      ...(opts.timeoutMs ? { timeout: opts.timeoutMs, killSignal: 'SIGKILL' as const } : {}),
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    p.stdout.on('data', (c) => out.push(c));
    p.stderr.on('data', (c) => err.push(c));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code: code ?? -1, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString() }));
    p.stdin.on('error', () => {});
    if (opts.input) p.stdin.end(opts.input);
    else p.stdin.end();
  });
}

/** Every message file under a corpus directory (data files and generator code excluded). */
export function corpusFiles(dir = CORPUS): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) {
        if (e.name === 'generator' || e.name === 'node_modules') continue;
        walk(p);
      } else if (e.isFile() && !/^(SOURCES\.md|INDEX\.tsv|README\.md)$/.test(e.name) && !/\.(ts|js|json)$/.test(e.name)) {
        out.push(p);
      }
    }
  };
  walk(dir);
  return out;
}

/**
 * The built package where another user can run it: package.json, bin, dist and
 * the production dependencies, copied into a directory under the system's
 * temporary directory that every user may enter (the checkout's own parents
 * may not be: root's home is 0700 on Debian). Tests that run mailcas as
 * `nobody` or as Postfix's delivery user run this copy. Made once per build
 * and shared by the test files of a run; a copy that cannot be run by
 * `nobody` (node itself out of its reach) fails with one line saying so.
 */
export function installedForOthers(): { bin: string; dir: string } {
  const base = fs.existsSync('/tmp') && (fs.statSync('/tmp').mode & 0o001) ? '/tmp' : os.tmpdir();
  const stamp = crypto.createHash('sha256');
  stamp.update(fs.readFileSync(path.join(ROOT, 'package-lock.json')));
  for (const f of fs.readdirSync(path.join(ROOT, 'dist'), { recursive: true }) as string[]) {
    const st = fs.statSync(path.join(ROOT, 'dist', f));
    if (st.isFile()) stamp.update(`${f}:${st.size}:${st.mtimeMs}\n`);
  }
  const dir = path.join(base, `mailcas-installed-${stamp.digest('hex').slice(0, 16)}`);
  const bin = path.join(dir, 'bin', 'mailcas.js');
  if (fs.existsSync(path.join(dir, '.complete'))) return { bin, dir };
  const work = fs.mkdtempSync(path.join(base, 'mailcas-installing-'));
  fs.chmodSync(work, 0o755);
  for (const f of ['package.json', 'bin', 'dist']) fs.cpSync(path.join(ROOT, f), path.join(work, f), { recursive: true });
  // the production dependency tree, as npm resolved it (top-level directories: nested ones come with them)
  const tree = spawnSync('npm', ['ls', '--omit=dev', '--all', '--parseable'], { cwd: ROOT, encoding: 'utf8' }).stdout.trim().split('\n').slice(1);
  for (const p of tree) {
    const rel = path.relative(ROOT, p);
    if (rel.split(`node_modules${path.sep}`).length !== 2) continue;
    fs.cpSync(p, path.join(work, rel), { recursive: true });
  }
  fs.writeFileSync(path.join(work, '.complete'), '');
  try {
    fs.renameSync(work, dir);
  } catch {
    fs.rmSync(work, { recursive: true, force: true }); // another test file made it first
  }
  return { bin, dir };
}

/** Why `nobody` cannot run the installed copy (one line saying what to change), or null when it can. */
export function whyNobodyCannotRun(bin: string): string | null {
  const r = spawnSync(process.execPath, [bin, '--version'], { uid: 65534, gid: 65534, encoding: 'utf8' });
  if (r.status === 0) return null;
  return `the tests that run mailcas as nobody could not run ${process.execPath} ${bin} as nobody (${(r.stderr || String(r.error ?? '')).trim().split('\n')[0]}): install node where every user may run it`;
}
