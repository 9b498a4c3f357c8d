/**
 * The hostile-input fuzzer: corpus messages and generated hostile shapes,
 * mutated at random (byte flips, truncation, spliced delimiters and
 * boundaries, deep nesting, huge header lines, NULs and bare CRs, broken
 * base64 and quoted-printable, duplicated parts), each ingested and fetched
 * back. Every case must round-trip byte-exact or be refused with a clear
 * error that names a limit; never a crash, never a hang (the slowest case is
 * reported). Seeded: a failure prints the seed and case number to replay.
 */
import fs from 'node:fs';
import { Store } from '../../src/store.js';
import { isMailcasError } from '../../src/errors.js';
import { silentLogger } from '../../src/util/logger.js';
import { hostileShapes } from '../hostile-shapes.js';
import { prng } from './crash-harness.js';

export interface FuzzOptions {
  seed: number;
  cases: number;
  pool: string[];
  storeDir: string;
  deadlineMs?: number;
}

export interface FuzzReport {
  seed: number;
  cases: number;
  exact: number;
  refused: Record<string, number>;
  failures: string[];
  slowestMs: number;
  bytes: number;
}

type Mutation = (b: Buffer, r: () => number) => Buffer;

const int = (r: () => number, n: number): number => Math.floor(r() * n);
const at = (b: Buffer, r: () => number): number => int(r, b.length + 1);
const splice = (b: Buffer, i: number, ins: Buffer | string, del = 0): Buffer => Buffer.concat([b.subarray(0, i), Buffer.from(ins as string, 'latin1'), b.subarray(i + del)]);

const MUTATIONS: Record<string, Mutation> = {
  flip: (b, r) => {
    const c = Buffer.from(b);
    for (let k = 1 + int(r, 8); k > 0 && c.length; k--) c[int(r, c.length)] ^= 1 << int(r, 8);
    return c;
  },
  truncate: (b, r) => b.subarray(0, at(b, r)),
  boundaryLine: (b, r) => {
    const m = /boundary="?([^";\r\n]+)/i.exec(b.toString('latin1'));
    const d = m ? m[1] : 'x';
    return splice(b, at(b, r), ['\n--' + d + '\n', '\r\n--' + d + '--\r\n', '\n--' + d + ' trailing\n', '--' + d][int(r, 4)]);
  },
  newBoundary: (b, r) => splice(b, at(b, r), `Content-Type: multipart/mixed; boundary="${['', 'a', '=?x', '--', 'b'.repeat(int(r, 200))][int(r, 5)]}"\n`),
  nest: (b, r) => {
    const depth = 1 + int(r, 80);
    let s = '';
    for (let k = 0; k < depth; k++) s += `Content-Type: multipart/mixed; boundary="n${k}"\n\n--n${k}\n`;
    return Buffer.concat([Buffer.from(s), b]);
  },
  longHeader: (b, r) => splice(b, 0, `X-Long: ${'y'.repeat(int(r, 300_000))}\n`),
  foldedHeader: (b, r) => splice(b, 0, `X-Fold: a${'\n b'.repeat(int(r, 20_000))}\n`),
  nul: (b, r) => splice(b, at(b, r), '\0'.repeat(1 + int(r, 20))),
  bareCr: (b, r) => splice(b, at(b, r), '\r'.repeat(1 + int(r, 5))),
  crlfMix: (b, r) => {
    const s = b.toString('latin1');
    return Buffer.from(r() < 0.5 ? s.replace(/\n/g, '\r\n') : s.replace(/\r\n/g, '\n'), 'latin1');
  },
  badBase64: (b, r) => {
    const i = b.indexOf('base64');
    if (i < 0) return splice(b, at(b, r), 'Content-Transfer-Encoding: base64\n\n@@@!!==abc\n');
    return splice(b, Math.min(b.length, i + 40 + int(r, 400)), ['=', '*', '====', '\n \n', 'A'][int(r, 5)]);
  },
  badQp: (b, r) => splice(b, at(b, r), ['=', '=\n', '=ZZ', '=3', '=\r\n=\r\n', ' \n'][int(r, 6)]),
  duplicate: (b, r) => {
    const i = at(b, r);
    const j = Math.min(b.length, i + int(r, 5000));
    return Buffer.concat([b.subarray(0, j), b.subarray(i, j), b.subarray(j)]);
  },
  tinyParts: (b, r) => {
    let s = 'Content-Type: multipart/mixed; boundary=t\n\n';
    for (let k = int(r, 3000); k > 0; k--) s += '--t\n\n';
    return Buffer.concat([Buffer.from(s), b]);
  },
  empty: () => Buffer.alloc(0),
};
const NAMES = Object.keys(MUTATIONS);

export async function runFuzz(o: FuzzOptions): Promise<FuzzReport> {
  const r = prng(o.seed);
  const rep: FuzzReport = { seed: o.seed, cases: 0, exact: 0, refused: {}, failures: [], slowestMs: 0, bytes: 0 };
  const s = await Store.init(o.storeDir, { logger: silentLogger, workers: 0 });
  const shapes = Object.values(hostileShapes);
  const deadline = o.deadlineMs ? Date.now() + o.deadlineMs : Infinity;
  const bases = o.pool.map((f) => fs.readFileSync(f));
  try {
    for (let k = 0; k < o.cases && Date.now() < deadline; k++) {
      let b = r() < 0.9 ? bases[int(r, bases.length)] : shapes[int(r, shapes.length)](4096 + int(r, 64 * 1024));
      const applied: string[] = [];
      for (let m = 1 + int(r, 3); m > 0; m--) {
        const name = NAMES[int(r, NAMES.length)];
        applied.push(name);
        b = MUTATIONS[name](b, r);
      }
      rep.cases++;
      rep.bytes += b.length;
      const t0 = performance.now();
      try {
        const { id } = await s.ingest(b, { user: 'fuzz' });
        const back = await s.fetchBuffer(id, { user: 'fuzz' });
        if (back.equals(b)) rep.exact++;
        else rep.failures.push(`seed ${o.seed} case ${k} (${applied.join('+')}): fetched bytes differ`);
        if (k % 50 === 0) await s.expunge('fuzz', [id]); // keep the store small; gc below
      } catch (e) {
        // a clear refusal names its limit; an empty message is refused for what it is
        if (isMailcasError(e) && (e.code === 'E_TOO_LARGE' || e.code === 'E_REFUSED') && /limit|empty/.test(e.message)) {
          const what = String(e.data.what ?? (e.code === 'E_REFUSED' ? 'empty' : 'size'));
          rep.refused[what] = (rep.refused[what] ?? 0) + 1;
        } else rep.failures.push(`seed ${o.seed} case ${k} (${applied.join('+')}): ${(e as Error).message}`);
      }
      rep.slowestMs = Math.max(rep.slowestMs, performance.now() - t0);
      if (k % 1000 === 999) await s.gc({ graceSeconds: 0 });
    }
  } finally {
    await s.close();
  }
  return rep;
}
