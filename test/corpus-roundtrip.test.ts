import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it, beforeAll } from 'vitest';
import { CORPUS, corpusFiles, runCli, tmpDir } from './helpers.js';

/**
 * The promise: every message of the corpus goes in through the real CLI and
 * comes back out byte for byte. No exceptions list.
 */
describe('corpus round trip through the CLI', () => {
  const store = tmpDir();
  const files = corpusFiles();
  const out = tmpDir();
  let bySource = new Map<string, string>();
  let firstSummary: any;

  beforeAll(async () => {
    expect(files.length).toBeGreaterThan(0);
    // import the files one PATH each would be slow; import the message files as a list of PATHs in chunks
    bySource = new Map();
    for (let i = 0; i < files.length; i += 400) {
      const chunk = files.slice(i, i + 400);
      const r = await runCli(['--store', store, 'import', '--user', 'alice', '--format', 'eml', '--json', ...chunk]);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      const lines = r.stdout.toString().trim().split('\n').map((l) => JSON.parse(l));
      const summary = lines.pop();
      expect(summary.summary.messages).toBe(chunk.length);
      firstSummary ??= summary.summary;
      for (const l of lines) bySource.set(l.source, l.id);
    }
  });

  it(`imports every corpus message (${CORPUS})`, () => {
    expect(bySource.size).toBe(files.length);
  });

  it('exports every message byte for byte', async () => {
    const r = await runCli(['--store', store, 'export', '--user', 'alice', '--out', out]);
    expect(r.code).toBe(0);
    const mismatches: string[] = [];
    for (const f of files) {
      const id = bySource.get(f)!;
      const got = fs.readFileSync(path.join(out, `${id}.eml`));
      if (!got.equals(fs.readFileSync(f))) mismatches.push(f);
    }
    expect(mismatches).toEqual([]);
  });

  it('stores fewer bytes than it was given and splits every message (no whole-message fallbacks)', async () => {
    const r = await runCli(['--store', store, 'report', '--json']);
    const rep = JSON.parse(r.stdout.toString());
    expect(rep.messages).toBe(files.length);
    expect(rep.splitFallbacks).toBe(0);
    expect(rep.storedBytes).toBeLessThan(rep.logicalBytes);
  });

  it('importing the same corpus again adds no blob bytes', async () => {
    const before = JSON.parse((await runCli(['--store', store, 'report', '--json'])).stdout.toString());
    const r = await runCli(['--store', store, 'import', '--user', 'bob', '--format', 'eml', '--json', ...files.slice(0, 800)]);
    expect(r.code).toBe(0);
    const r2 = await runCli(['--store', store, 'import', '--user', 'bob', '--format', 'eml', '--json', ...files.slice(800)]);
    expect(r2.code).toBe(0);
    const sums = [r, r2].map((x) => JSON.parse(x.stdout.toString().trim().split('\n').pop()!).summary);
    expect(sums[0].newBlobBytes + sums[1].newBlobBytes).toBe(0);
    const after = JSON.parse((await runCli(['--store', store, 'report', '--json'])).stdout.toString());
    expect(after.blobs).toBe(before.blobs);
    expect(after.blobBytes).toBe(before.blobBytes);
    expect(after.messages).toBe(2 * files.length);
  });

  it('expunging everything then gc --grace 0 empties the blob backend and check stays clean', async () => {
    for (const user of ['alice', 'bob']) {
      const st = tmpDir();
      const ex = await runCli(['--store', store, 'export', '--user', user, '--out', st]);
      expect(ex.code).toBe(0);
      const ids = fs.readdirSync(st).map((f) => f.replace(/\.eml$/, ''));
      for (let i = 0; i < ids.length; i += 500) {
        const r = await runCli(['--store', store, 'expunge', '--user', user, ...ids.slice(i, i + 500)]);
        expect(r.code).toBe(0);
      }
    }
    const gc = await runCli(['--store', store, 'gc', '--grace', '0', '--json']);
    expect(gc.code).toBe(0);
    expect(JSON.parse(gc.stdout.toString()).deletedBlobs).toBeGreaterThan(0);
    const objects = fs
      .readdirSync(path.join(store, 'blobs'), { recursive: true, withFileTypes: true })
      .filter((e) => e.isFile() && !e.parentPath.includes('.tmp'));
    expect(objects.map((e) => e.name)).toEqual([]);
    const chk = await runCli(['--store', store, 'check', '--json']);
    expect(chk.code).toBe(0);
    const rep = JSON.parse(chk.stdout.toString());
    expect(rep.consistent).toBe(true);
    expect(rep.messages).toBe(0);
    expect(rep.blobs).toBe(0);
  });
});
