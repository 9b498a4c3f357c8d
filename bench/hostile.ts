/**
 * npm run bench:hostile: what each hostile shape costs to ingest, per MB,
 * as a Buffer, a stream and a file, next to a plain message of the same size
 * and input kind measured in the same run. Each case runs in a child process
 * of its own, so its peak RSS is its own.
 *
 *   npx tsx bench/hostile.ts [--quick]
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { Readable } from 'node:stream';
import { Store } from '../src/store.js';
import { silentLogger } from '../src/util/logger.js';
import { hostileShapes, plainMessage } from '../test/hostile-shapes.js';

type Mode = 'buffer' | 'stream' | 'file';
interface Result {
  ms: number;
  rssMB: number;
  outcome: string;
  bytes: number;
}

/** One case, in this process: ingest repeatedly for at least ~300 ms, report the mean and the peak RSS. */
async function one(shape: string, bytes: number, mode: Mode): Promise<Result> {
  const msg = shape === 'plain' ? plainMessage(bytes) : shape === 'rfc2231' ? Buffer.from('Content-Type: text/plain; name*4294967294=x\r\n\r\nhi\r\n') : hostileShapes[shape](bytes);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mailcas-hostile-'));
  const file = path.join(dir, 'm.eml');
  fs.writeFileSync(file, msg);
  const s = await Store.open(path.join(dir, 'store'), { logger: silentLogger, dictionaryAfter: 0 });
  const input = () => (mode === 'buffer' ? msg : mode === 'file' ? { path: file } : Readable.from([msg.subarray(0, msg.length >> 1), msg.subarray(msg.length >> 1)]));
  let n = 0;
  let outcome = 'stored';
  const t0 = process.hrtime.bigint();
  let elapsed = 0;
  do {
    try {
      await s.ingest(input(), { user: 'u' });
    } catch (e) {
      outcome = `refused: ${(e as Error).message}`;
    }
    n++;
    elapsed = Number(process.hrtime.bigint() - t0) / 1e6;
  } while (elapsed < 300 && n < 50);
  await s.close();
  fs.rmSync(dir, { recursive: true, force: true });
  return { ms: elapsed / n, rssMB: process.resourceUsage().maxRSS / 1024, outcome, bytes: msg.length };
}

function inChild(shape: string, bytes: number, mode: Mode): Result {
  const r = spawnSync(process.execPath, ['--import', 'tsx', new URL(import.meta.url).pathname, '--one', shape, String(bytes), mode], { encoding: 'utf8', maxBuffer: 1 << 20 });
  const line = r.stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line) as Result;
  } catch {
    return { ms: NaN, rssMB: NaN, outcome: `failed: ${r.stderr.trim().split('\n').pop()}`, bytes };
  }
}

async function main(): Promise<void> {
  if (process.argv[2] === '--one') {
    const [shape, bytes, mode] = process.argv.slice(3);
    process.stdout.write(JSON.stringify(await one(shape, Number(bytes), mode as Mode)) + '\n');
    return;
  }
  const quick = process.argv.includes('--quick');
  const MB = quick ? 2_000_000 : 5_000_000;
  // sizes each shape is accepted at (the parts limit is 5000 by default), and one over it
  const cases: [string, number][] = [
    ['dashLines', MB],
    ['headerLines', MB],
    ['base64Tails', MB],
    ['tinyParts', 170_000],
    ['emptyParts', 24_000],
    ['rfc2231', 54],
    ['emptyParts', MB],
    ['tinyParts', MB],
  ];
  const rows: string[][] = [];
  const plain = new Map<string, Result>();
  for (const [shape, bytes] of cases) {
    for (const mode of ['buffer', 'stream', 'file'] as Mode[]) {
      const key = `${bytes}|${mode}`;
      if (!plain.has(key)) plain.set(key, inChild('plain', bytes, mode));
      const base = plain.get(key)!;
      const r = inChild(shape, bytes, mode);
      const perMB = (x: Result) => x.ms / (x.bytes / 1e6);
      rows.push([
        shape,
        mode,
        (r.bytes / 1e6).toFixed(3),
        r.ms.toFixed(1),
        perMB(r).toFixed(1),
        perMB(base).toFixed(1),
        r.outcome.startsWith('refused') ? '(refused)' : `${(perMB(r) / perMB(base)).toFixed(1)}x`,
        r.rssMB.toFixed(0),
        base.rssMB.toFixed(0),
        r.outcome.slice(0, 60),
      ]);
    }
  }
  const head = ['shape', 'input', 'MB', 'ms', 'ms/MB', 'plain ms/MB', 'vs plain', 'peak RSS MB', 'plain RSS MB', 'outcome'];
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  console.log([head, ...rows].map((r) => r.map((c, i) => (i < 2 || i === 9 ? c.padEnd(w[i]) : c.padStart(w[i]))).join('  ')).join('\n'));
}

await main();
