import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
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
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [BIN, ...args], {
      cwd: opts.cwd ?? ROOT,
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
