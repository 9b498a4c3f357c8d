import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { ROOT, tmpDir } from './helpers.js';
import { newHasher } from '../src/util/hash.js';
import { Store } from '../src/store.js';
import { FsBackend } from '../src/backend/fs-backend.js';
import { silentLogger } from '../src/util/logger.js';

const RSS = path.join(ROOT, 'test', 'fixtures', 'rss.mjs');
const LIMIT_MB = 150;

/** Writes a ~200 MB message (a 150 MB base64 attachment) without holding it in memory; returns its BLAKE3. */
function writeBigMessage(file: string): string {
  const fd = fs.openSync(file, 'w');
  const h = newHasher();
  const w = (s: string | Buffer): void => {
    const b = typeof s === 'string' ? Buffer.from(s, 'latin1') : s;
    h.update(b);
    fs.writeSync(fd, b);
  };
  w('From: a@example.com\r\nSubject: big\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="XYZ"\r\n\r\n--XYZ\r\n\r\nsee attached\r\n--XYZ\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n');
  const block = 57 * 16384;
  const seed = crypto.randomBytes(block);
  for (let i = 0; i < 160; i++) {
    seed.writeUInt32LE(i, 0);
    w(seed.toString('base64').replace(/(.{76})/g, '$1\r\n'));
  }
  w('\r\n--XYZ--\r\n');
  fs.closeSync(fd);
  return h.digest().toString('hex');
}

function run(args: string[], stdinFile?: string): Promise<{ code: number; rssMB: number; hash: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [RSS, ...args], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, MAILCAS_NO_PROGRESS: '1' } });
    const h = newHasher();
    let err = '';
    p.stdout.on('data', (c: Buffer) => h.update(c));
    p.stderr.on('data', (c: Buffer) => (err += c.toString()));
    p.on('error', reject);
    p.on('close', (code) => {
      const m = /MAXRSS_KB=(\d+)/.exec(err);
      resolve({ code: code ?? -1, rssMB: m ? Number(m[1]) / 1024 : Infinity, hash: h.digest().toString('hex'), stderr: err });
    });
    if (stdinFile) fs.createReadStream(stdinFile).pipe(p.stdin);
    else p.stdin.end();
  });
}

/** n messages of about mb MB, each one compressible text attachment (base64): parts that are compressed. */
function writeTextMessages(dir: string, n: number, mb: number): void {
  const line = Buffer.from('lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore\r\n');
  for (let i = 0; i < n; i++) {
    const text = Buffer.concat([Buffer.from(`message ${i}\r\n`), Buffer.alloc(Math.floor(mb * 1e6 * 0.74), line)]);
    const b64 = text.toString('base64').replace(/(.{76})/g, '$1\r\n');
    fs.writeFileSync(
      path.join(dir, `m${i}.eml`),
      `Subject: big ${i}\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n--b\r\nContent-Type: text/csv; name=data.csv\r\nContent-Transfer-Encoding: base64\r\n\r\n${b64}\r\n--b--\r\n`,
    );
  }
}

function digest(b: Buffer): Buffer {
  const h = newHasher();
  h.update(b);
  return h.digest();
}

describe('bounded memory', () => {
  it('32 messages of 8 MB in flight at once (import --concurrency 32) share one memory budget: peak RSS stays under 260 MB', async () => {
    const dir = tmpDir();
    const src = path.join(dir, 'in');
    fs.mkdirSync(src);
    writeTextMessages(src, 32, 8);
    const r = await run(['--store', path.join(dir, 'store'), 'import', '--user', 'u', '--concurrency', '32', src]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/imported 32 messages/);
    console.log(`peak RSS MB: import of 32 x 8 MB at concurrency 32: ${r.rssMB.toFixed(0)}`);
    expect(r.rssMB, /SAMPLED_PEAK.*/.exec(r.stderr)?.[0]).toBeLessThan(260);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it(`a 200 MB message goes in (from a file and from stdin) and comes out with peak RSS under ${LIMIT_MB} MB`, async () => {
    const dir = tmpDir();
    const file = path.join(dir, 'big.eml');
    const hash = writeBigMessage(file);
    expect(fs.statSync(file).size).toBeGreaterThan(200_000_000);
    const store = path.join(dir, 'store');

    const fromFile = await run(['--store', store, 'ingest', '--user', 'u', file]);
    expect(fromFile.code).toBe(0);
    const stdinRun = await run(['--store', store, 'ingest', '--user', 'u'], file);
    expect(stdinRun.code).toBe(0);
    const fetched = await run(['--store', store, 'fetch', '--user', 'u', '1']);
    expect(fetched.code).toBe(0);
    expect(fetched.hash).toBe(hash);
    const fetched2 = await run(['--store', store, 'fetch', '--user', 'u', '2']);
    expect(fetched2.hash).toBe(hash);
    console.log(`peak RSS MB: ingest(file) ${fromFile.rssMB.toFixed(0)}, ingest(stdin) ${stdinRun.rssMB.toFixed(0)}, fetch ${fetched.rssMB.toFixed(0)}`);
    for (const [what, r] of Object.entries({ 'ingest(file)': fromFile, 'ingest(stdin)': stdinRun, fetch: fetched })) {
      expect(r.rssMB, `${what}: ${/SAMPLED_PEAK.*/.exec(r.stderr)?.[0]}`).toBeLessThan(LIMIT_MB);
    }
    // one blob for both copies
    const blobs = fs.readdirSync(path.join(store, 'blobs'), { recursive: true, withFileTypes: true }).filter((e) => e.isFile() && /^[0-9a-f]{64}$/.test(e.name));
    expect(blobs.length).toBe(1);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('tier of 128 messages each with a distinct 4 MiB log (deflated to ~20 KB: packed small) peaks under 300 MB RSS: bytes waiting to be packed are bounded, not blobs', async () => {
    const dir = tmpDir();
    const open = () => Store.open(dir, { backend: new FsBackend(path.join(dir, 'blobs')), coldBackend: new FsBackend(path.join(dir, 'cold')), logger: silentLogger, workers: 0 });
    const s = await open();
    const hashes: Buffer[] = [];
    const ids: string[] = [];
    for (let i = 0; i < 128; i++) {
      // 32 lines of this message's own, over and over, with a counter now and then: distinct, and very compressible
      const lines = Array.from({ length: 32 }, () => `${new Date(1.7e12 + i * 1e6).toISOString()} app[${i}]: ${crypto.randomBytes(24).toString('hex')}`);
      const parts: string[] = [];
      for (let k = 0, n = 0; n < 4 * 1024 * 1024 - 200; k++) {
        const l = `${lines[k % 32]}${k % 64 === 0 ? ` seq=${k}` : ''}\r\n`;
        parts.push(l);
        n += l.length;
      }
      const m = Buffer.from(`Subject: log ${i}\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nthe log\r\n--b\r\nContent-Type: text/plain; name=app.log\r\n\r\n${parts.join('')}\r\n--b--\r\n`);
      hashes.push(digest(m));
      ids.push((await s.ingest(m, { user: 'u' })).id);
    }
    await s.close();
    const r = await new Promise<{ code: number; rssMB: number; out: string; stderr: string }>((resolve, reject) => {
      const p = spawn(process.execPath, [path.join(ROOT, 'test', 'fixtures', 'tier-rss.mjs'), dir], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      p.stdout.on('data', (c) => (out += c));
      p.stderr.on('data', (c) => (err += c));
      p.on('error', reject);
      p.on('close', (code) => {
        const m = /MAXRSS_KB=(\d+)/.exec(err);
        resolve({ code: code ?? -1, rssMB: m ? Number(m[1]) / 1024 : Infinity, out, stderr: err });
      });
    });
    expect(r.code, r.stderr).toBe(0);
    const rep = JSON.parse(r.out);
    expect(rep.packed).toBe(128);
    expect(rep.pendingUploads).toBe(0);
    console.log(`peak RSS MB: tier of 128 x 4 MiB logs: ${r.rssMB.toFixed(0)} (${rep.packs} packs, ${rep.packedBytes} bytes)`);
    expect(r.rssMB, /SAMPLED_PEAK.*/.exec(r.stderr)?.[0]).toBeLessThan(300);
    const again = await open();
    for (const i of [0, 63, 127]) expect(digest(await again.fetchBuffer(ids[i])).equals(hashes[i])).toBe(true);
    expect((await again.check()).consistent).toBe(true);
    await again.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
