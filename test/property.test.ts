import fs from 'node:fs';
import { describe, expect, it, beforeAll, afterAll } from 'vitest';
import fc from 'fast-check';
import { Store } from '../src/store.js';
import { MemoryBackend } from '../src/backend/memory-backend.js';
import { qpEncode } from '../src/recipe/qp.js';
import type { MailcasError } from '../src/errors.js';
import { corpusFiles, tmpDir } from './helpers.js';

type Leaf = { t: 'leaf'; cte: string; data: Uint8Array; lineLen: number; finalEol: boolean; type: string; noHeader: boolean };
type Multi = { t: 'multi'; boundary: string; parts: Node[]; preamble: string; epilogue: string; close: boolean; padding: string; type: string };
type Msg = { t: 'msg'; inner: Node };
type Node = Leaf | Multi | Msg;

const eolArb = fc.constantFrom('\n', '\r\n', '\r\n', '\r');
const textBytes = fc.oneof(
  fc.uint8Array({ maxLength: 2500 }),
  fc.string({ maxLength: 1500 }).map((s) => new TextEncoder().encode(s)),
  fc.array(fc.constantFrom('line of text', '', ' trailing ', '--not-a-boundary', 'From x', '=3D', '\t'), { maxLength: 60 }).map((a) => new TextEncoder().encode(a.join('\n'))),
);
const leafArb: fc.Arbitrary<Leaf> = fc.record({
  t: fc.constant('leaf' as const),
  cte: fc.constantFrom('base64', 'quoted-printable', '7bit', '8bit', '', 'binary', 'x-unknown'),
  data: textBytes,
  lineLen: fc.constantFrom(76, 72, 64, 60, 0, 2),
  finalEol: fc.boolean(),
  type: fc.constantFrom('text/plain', 'application/pdf', 'image/png', 'text/html'),
  noHeader: fc.boolean(),
});
const boundaryArb = fc.stringMatching(/^[A-Za-z0-9'()+_,./:=? -]{1,40}[A-Za-z0-9]$/);

const treeArb = fc.letrec<{ node: Node }>((tie) => ({
  node: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    leafArb,
    fc.record({
      t: fc.constant('multi' as const),
      boundary: boundaryArb,
      parts: fc.array(tie('node'), { maxLength: 4 }),
      preamble: fc.constantFrom('', 'This is a multi-part message in MIME format.', '--almost'),
      epilogue: fc.constantFrom('', 'epilogue text', '--garbage--'),
      close: fc.boolean(),
      padding: fc.constantFrom('', ' ', '\t  '),
      type: fc.constantFrom('multipart/mixed', 'multipart/alternative', 'multipart/digest'),
    }),
    fc.record({ t: fc.constant('msg' as const), inner: tie('node') }),
  ),
})).node;

function encodeBody(l: Leaf, eol: string): string {
  const data = Buffer.from(l.data);
  if (l.cte === 'base64') {
    const s = data.toString('base64');
    const lines: string[] = [];
    if (l.lineLen === 0) lines.push(s);
    else for (let i = 0; i < s.length; i += l.lineLen) lines.push(s.slice(i, i + l.lineLen));
    return lines.join(eol) + (l.finalEol ? eol : '');
  }
  if (l.cte === 'quoted-printable') {
    const text = l.finalEol; // reuse the flag: text mode (hard breaks) or binary mode
    const canon = text ? Buffer.from(data.toString('latin1').replace(/\r?\n/g, '\r\n'), 'latin1') : data;
    return qpEncode(canon, { lineMax: l.lineLen === 0 ? 0 : Math.max(4, l.lineLen), crlf: eol === '\r\n', text, extra: Buffer.alloc(0) }).toString('latin1');
  }
  return data.toString('latin1').replace(/\n/g, eol);
}

function render(n: Node, eol: string, mutateEol: () => string): string {
  const E = (): string => mutateEol() || eol;
  if (n.t === 'leaf') {
    const head = n.noHeader ? '' : `Content-Type: ${n.type}${E()}` + (n.cte ? `Content-Transfer-Encoding: ${n.cte}${E()}` : '');
    return head + E() + encodeBody(n, eol);
  }
  if (n.t === 'msg') return `Content-Type: message/rfc822${E()}${E()}Subject: inner${E()}` + render(n.inner, eol, mutateEol);
  let s = `Content-Type: ${n.type}; boundary="${n.boundary}"${E()}${E()}${n.preamble}`;
  for (const p of n.parts) s += `${E()}--${n.boundary}${n.padding}${E()}` + render(p, eol, mutateEol);
  if (n.close) s += `${E()}--${n.boundary}--${n.padding}${E()}${n.epilogue}`;
  return s;
}

describe('property: everything round-trips byte for byte', () => {
  let store: Store;
  const dir = tmpDir();
  beforeAll(async () => {
    store = await Store.open(dir, { backend: new MemoryBackend(), inlineThreshold: 1024, dictionaryAfter: 0 });
  });
  afterAll(async () => {
    await store.close();
  });

  const roundTrip = async (bytes: Buffer): Promise<void> => {
    const r = await store.ingest(bytes, { user: 'p' });
    expect(r.fallback).toBe(false);
    const back = await store.fetchBuffer(r.id);
    expect(back.equals(bytes)).toBe(true);
  };

  it('random MIME trees with random encodings, line endings and defects', async () => {
    await fc.assert(
      fc.asyncProperty(treeArb, eolArb, fc.array(fc.integer({ min: 0, max: 9 }), { maxLength: 50 }), async (tree, eol, eolNoise) => {
        let i = 0;
        const noise = (): string => {
          const v = eolNoise[i++ % Math.max(1, eolNoise.length)];
          return v === 0 ? '\n' : v === 1 ? '\r\n' : v === 2 ? '\r' : '';
        };
        const msg = `From: a@example.com${eol}Subject: t${eol}` + render(tree, eol, noise);
        await roundTrip(Buffer.from(msg, 'latin1'));
      }),
      { numRuns: 400 },
    );
  });

  it('random byte-level mutations of corpus messages', async () => {
    const files = corpusFiles().filter((f) => fs.statSync(f).size < 200_000);
    const mutation = fc.oneof(
      fc.record({ op: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 40 }) }),
      fc.record({ op: fc.constant('delete' as const), at: fc.nat(), len: fc.integer({ min: 1, max: 200 }) }),
      fc.record({ op: fc.constant('dup' as const), at: fc.nat(), len: fc.integer({ min: 1, max: 500 }), to: fc.nat() }),
      fc.record({ op: fc.constant('line' as const), at: fc.nat(), line: fc.constantFrom('\n--', '\r\n\r\n', '\n\n', '\r', '=', '\x00', '\nContent-Type: multipart/mixed; boundary=x\n', '\n--x\n') }),
      fc.record({ op: fc.constant('truncate' as const), at: fc.nat() }),
    );
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: files.length - 1 }), fc.array(mutation, { minLength: 1, maxLength: 6 }), async (fi, muts) => {
        let b = fs.readFileSync(files[fi]);
        for (const m of muts) {
          const at = b.length ? m.at % (b.length + 1) : 0;
          if (m.op === 'insert') b = Buffer.concat([b.subarray(0, at), Buffer.from(m.bytes), b.subarray(at)]);
          else if (m.op === 'delete') b = Buffer.concat([b.subarray(0, at), b.subarray(at + m.len)]);
          else if (m.op === 'dup') {
            const piece = b.subarray(at, at + m.len);
            const to = b.length ? m.to % (b.length + 1) : 0;
            b = Buffer.concat([b.subarray(0, to), piece, b.subarray(to)]);
          } else if (m.op === 'line') b = Buffer.concat([b.subarray(0, at), Buffer.from(m.line, 'latin1'), b.subarray(at)]);
          else b = b.subarray(0, at);
        }
        if (b.length === 0) await expect(store.ingest(b, { user: 'p' })).rejects.toMatchObject({ code: 'E_REFUSED' });
        else await roundTrip(b);
      }),
      { numRuns: 300 },
    );
  });

  it('hostile shapes (huge RFC 2231 indices, many "--" lines, many parts, many header lines): exact round trip, or a refusal naming the limit', async () => {
    const limited = await Store.open(tmpDir(), { backend: new MemoryBackend(), dictionaryAfter: 0, maxParts: 150 });
    const shape = fc.oneof(
      fc.record({ k: fc.constant('rfc2231' as const), idx: fc.array(fc.oneof(fc.nat({ max: 2000 }), fc.constant(4294967294), fc.constant(999), fc.constant(1000)), { maxLength: 6 }) }),
      fc.record({ k: fc.constant('dashes' as const), lines: fc.array(fc.constantFrom('--', '--b', '--b--', '--x', '-- b', '--b ', 'text'), { maxLength: 2000 }) }),
      fc.record({ k: fc.constant('parts' as const), n: fc.nat({ max: 300 }), empty: fc.boolean() }),
      fc.record({ k: fc.constant('headers' as const), n: fc.nat({ max: 3000 }), folded: fc.boolean() }),
    );
    await fc.assert(
      fc.asyncProperty(shape, eolArb, async (sh, eol) => {
        let msg: string;
        if (sh.k === 'rfc2231') msg = `Content-Type: multipart/mixed; boundary=b${sh.idx.map((i, j) => `; name*${i}${j % 2 ? '*' : ''}=v${j}`).join('')}${eol}${eol}--b${eol}${eol}one${eol}--b--${eol}`;
        else if (sh.k === 'dashes') msg = `Content-Type: multipart/mixed; boundary=b${eol}${eol}--b${eol}Content-Type: text/plain${eol}${eol}${sh.lines.join(eol)}${eol}--b--${eol}`;
        else if (sh.k === 'parts') msg = `Content-Type: multipart/mixed; boundary=b${eol}${eol}` + Array.from({ length: sh.n }, (_, i) => `--b${eol}${sh.empty ? '' : `${eol}part ${i}${eol}`}`).join('');
        else msg = Array.from({ length: sh.n }, (_, i) => `X-H-${i}: value${sh.folded && i % 3 === 0 ? `${eol}\tfolded` : ''}${eol}`).join('') + `${eol}body${eol}`;
        const bytes = Buffer.from(msg, 'latin1');
        const r = await limited.ingest(bytes, { user: 'h' }).catch((e) => e);
        if (r instanceof Error) {
          expect(sh.k).toBe('parts');
          expect((r as MailcasError).code).toBe('E_TOO_LARGE');
          expect(r.message).toMatch(/more than 150 MIME parts/);
          return;
        }
        expect((await limited.fetchBuffer(r.id)).equals(bytes)).toBe(true);
      }),
      { numRuns: 150 },
    );
    await limited.close();
  });

  it('the generated mail exercised every decoding recipe (the properties above were not vacuous)', () => {
    const rows = store.db.prepare('SELECT recipe, count(*) AS n FROM parts GROUP BY recipe').all() as { recipe: string; n: number }[];
    const by = Object.fromEntries(rows.map((r) => [r.recipe, r.n]));
    for (const k of ['base64', 'qp', 'lf', 'identity']) expect(by[k] ?? 0).toBeGreaterThan(20);
  });
});
