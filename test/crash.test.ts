import fs from 'node:fs';
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { BIN, corpusFiles, runCli, tmpDir } from './helpers.js';

/** Starts the real CLI and SIGKILLs it after it has printed `afterLines` lines (or after `afterMs`). */
function killMidway(args: string[], afterLines: number, afterMs = 60_000): Promise<string[]> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'ignore'], env: { ...process.env, MAILCAS_NO_PROGRESS: '1' } });
    let buf = '';
    const lines: string[] = [];
    const t = setTimeout(() => p.kill('SIGKILL'), afterMs);
    p.stdout.on('data', (c: Buffer) => {
      buf += c.toString();
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        lines.push(buf.slice(0, i));
        buf = buf.slice(i + 1);
        if (lines.length >= afterLines) p.kill('SIGKILL');
      }
    });
    p.on('close', () => {
      clearTimeout(t);
      resolve(lines);
    });
  });
}

describe('crash safety (SIGKILL at arbitrary moments)', () => {
  it('after a kill mid-import the store opens, passes check, and holds every message it acknowledged', async () => {
    const store = tmpDir();
    const files = corpusFiles();
    const acked = new Map<string, string>(); // id -> source
    for (const [i, n] of [3, 57, 211, 640].entries()) {
      const subset = files.slice(i * 300, i * 300 + 700);
      const lines = await killMidway(['--store', store, 'import', '--user', 'u', '--format', 'eml', '--json', ...subset], n);
      for (const l of lines) {
        const o = JSON.parse(l);
        if (o.id) acked.set(o.id, o.source);
      }
      const chk = await runCli(['--store', store, 'check', '--json']);
      const rep = JSON.parse(chk.stdout.toString());
      expect({ code: chk.code, drift: rep.drift, missing: rep.missingBlobs, orphans: rep.orphans }).toEqual({ code: 0, drift: [], missing: [], orphans: [] });
    }
    expect(acked.size).toBeGreaterThan(50);
    const out = tmpDir();
    const ex = await runCli(['--store', store, 'export', '--user', 'u', '--out', out]);
    expect(ex.code).toBe(0);
    for (const [id, src] of acked) {
      expect(fs.readFileSync(`${out}/${id}.eml`).equals(fs.readFileSync(src))).toBe(true);
    }
  });

  it('a kill during gc leaves a store that passes check and gc finishes the job', async () => {
    const store = tmpDir();
    const files = corpusFiles().slice(0, 600);
    const imp = await runCli(['--store', store, 'import', '--user', 'u', '--format', 'eml', '--json', ...files]);
    expect(imp.code).toBe(0);
    const ids = imp.stdout.toString().trim().split('\n').map((l) => JSON.parse(l)).filter((o) => o.id).map((o) => o.id as string);
    const gone = ids.filter((_, i) => i % 2 === 0);
    expect((await runCli(['--store', store, 'expunge', '--user', 'u', ...gone])).code).toBe(0);
    await killMidway(['--store', store, 'gc', '--grace', '0'], 1, 150);
    const chk = await runCli(['--store', store, 'check', '--json']);
    expect(chk.code).toBe(0);
    expect((await runCli(['--store', store, 'gc', '--grace', '0'])).code).toBe(0);
    const chk2 = JSON.parse((await runCli(['--store', store, 'check', '--json'])).stdout.toString());
    expect(chk2.consistent).toBe(true);
    expect(chk2.unreferenced).toBe(0);
    const out = tmpDir();
    expect((await runCli(['--store', store, 'export', '--user', 'u', '--out', out])).code).toBe(0);
    expect(fs.readdirSync(out).length).toBe(ids.length - gone.length);
  });
});
