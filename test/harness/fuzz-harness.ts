/**
 * The hostile-input fuzzer: corpus messages and generated hostile shapes,
 * mutated at random (byte flips, truncation, spliced delimiters and
 * boundaries, deep nesting, huge header lines, NULs and bare CRs, broken
 * base64 and quoted-printable, duplicated parts), each ingested and fetched
 * back. Every case must round-trip byte-exact or be refused with a clear
 * error that names a limit; never a crash, never a hang (the slowest case is
 * reported). The cases come from fast-check, seeded: a failure is shrunk to
 * the smallest failing case and printed with the seed and path to replay it.
 */
import fs from 'node:fs';
import fc from 'fast-check';
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

/** One case: a base message (a corpus file or a generated hostile shape) and up to three seeded mutations. */
interface FuzzCase {
  shape: number | null;
  base: number;
  size: number;
  mutations: { name: string; seed: number }[];
}

const caseArb = (pool: number, shapes: number): fc.Arbitrary<FuzzCase> =>
  fc.record({
    shape: fc.oneof({ weight: 9, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: fc.nat({ max: shapes - 1 }) }),
    base: fc.nat({ max: pool - 1 }),
    size: fc.integer({ min: 4096, max: 4096 + 64 * 1024 }),
    mutations: fc.array(fc.record({ name: fc.constantFrom(...NAMES), seed: fc.nat() }), { minLength: 1, maxLength: 3 }),
  });

const describeCase = (c: FuzzCase): string => `${c.shape === null ? `corpus #${c.base}` : `shape #${c.shape}`}: ${c.mutations.map((m) => `${m.name}(${m.seed})`).join('+')}`;

/**
 * Runs the cases through fast-check (seeded: the same seed gives the same
 * cases). The first failing case stops the run and is shrunk to a smallest
 * failing one (fewer, simpler mutations), which is what the failure names,
 * with fast-check's replay path.
 */
export async function runFuzz(o: FuzzOptions): Promise<FuzzReport> {
  const rep: FuzzReport = { seed: o.seed, cases: 0, exact: 0, refused: {}, failures: [], slowestMs: 0, bytes: 0 };
  const s = await Store.init(o.storeDir, { logger: silentLogger, workers: 0 });
  const shapes = Object.values(hostileShapes);
  const deadline = o.deadlineMs ? Date.now() + o.deadlineMs : Infinity;
  const bases = o.pool.map((f) => fs.readFileSync(f));
  let shrinking = false;
  const build = (c: FuzzCase): Buffer => {
    let b = c.shape === null ? bases[c.base % bases.length] : shapes[c.shape](c.size);
    for (const m of c.mutations) b = MUTATIONS[m.name](b, prng(m.seed));
    return b;
  };
  /** One case: null when it round-trips or is refused naming a limit, else what went wrong. */
  const run = async (c: FuzzCase, k: number): Promise<string | null> => {
    const b = build(c);
    if (!shrinking) {
      rep.cases++;
      rep.bytes += b.length;
    }
    const t0 = performance.now();
    try {
      const { id } = await s.ingest(b, { user: 'fuzz' });
      const back = await s.fetchBuffer(id, { user: 'fuzz' });
      if (k % 50 === 0 || shrinking) await s.expunge('fuzz', [id]); // keep the store small; gc below
      if (!back.equals(b)) return 'fetched bytes differ';
      if (!shrinking) rep.exact++;
    } catch (e) {
      // a clear refusal names its limit; an empty message is refused for what it is
      if (isMailcasError(e) && (e.code === 'E_TOO_LARGE' || e.code === 'E_REFUSED') && /limit|empty/.test(e.message)) {
        if (!shrinking) {
          const what = String(e.data.what ?? (e.code === 'E_REFUSED' ? 'empty' : 'size'));
          rep.refused[what] = (rep.refused[what] ?? 0) + 1;
        }
      } else return (e as Error).message;
    } finally {
      if (!shrinking) rep.slowestMs = Math.max(rep.slowestMs, performance.now() - t0);
    }
    return null;
  };
  let k = 0;
  try {
    await fc.assert(
      fc.asyncProperty(caseArb(bases.length, shapes.length), async (c) => {
        const i = k++;
        const why = await run(c, i);
        if (!shrinking && i % 1000 === 999) await s.gc({ graceSeconds: 0 });
        if (why) {
          shrinking = true;
          throw new Error(`${describeCase(c)}: ${why}`);
        }
      }),
      { seed: o.seed, numRuns: o.cases, interruptAfterTimeLimit: deadline === Infinity ? undefined : Math.max(1, deadline - Date.now()), markInterruptAsFailure: false },
    );
  } catch (e) {
    // fast-check's report: the seed, the replay path and the smallest failing case
    rep.failures.push(`seed ${o.seed}: ${(e as Error).message.split('\n').slice(0, 6).join(' | ')}`);
  } finally {
    await s.close();
  }
  return rep;
}
