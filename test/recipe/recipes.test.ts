import { describe, expect, it } from 'vitest';
import crypto from 'node:crypto';
import { MemorySource } from '../../src/split/byte-source.js';
import { base64Canonicalize } from '../../src/recipe/base64.js';
import { qpCanonicalize, qpEncode } from '../../src/recipe/qp.js';
import { lfCanonicalize } from '../../src/recipe/lf.js';
import { encoderFor } from '../../src/recipe/choose.js';
import type { Canonicalizer } from '../../src/recipe/canonicalizer.js';
import type { Recipe } from '../../src/recipe/recipe.js';

function run(c: Canonicalizer, raw: Buffer): { recipe: Recipe | null; canonical: Buffer } {
  const parts: Buffer[] = [];
  const recipe = c(new MemorySource(raw), 0, raw.length, { write: (b) => parts.push(Buffer.from(b)), reset: () => (parts.length = 0) });
  return { recipe, canonical: Buffer.concat(parts) };
}

function reencode(recipe: Recipe, canonical: Buffer, chunk = 1000): Buffer {
  const e = encoderFor(recipe);
  const out: Buffer[] = [];
  for (let i = 0; i < canonical.length; i += chunk) out.push(e.push(canonical.subarray(i, i + chunk)));
  out.push(e.end());
  return Buffer.concat(out);
}

export function wrapB64(data: Buffer, lineLen: number, eol: string, finalEol: boolean): Buffer {
  const s = data.toString('base64');
  const lines: string[] = [];
  if (lineLen === 0) lines.push(s);
  else for (let i = 0; i < s.length; i += lineLen) lines.push(s.slice(i, i + lineLen));
  return Buffer.from(lines.join(eol) + (finalEol ? eol : ''), 'latin1');
}

describe('base64 recipe', () => {
  const data = crypto.randomBytes(10_000);
  for (const L of [76, 72, 64, 60, 4, 0])
    for (const eol of ['\n', '\r\n'])
      for (const fin of [true, false])
        it(`regular geometry L=${L} ${JSON.stringify(eol)} finalEol=${fin} decodes and re-encodes exactly`, () => {
          for (const n of [0, 1, 2, 3, 57, 58, 59, 10_000]) {
            if (n === 0) continue;
            const raw = wrapB64(data.subarray(0, n), L, eol, fin);
            const { recipe, canonical } = run(base64Canonicalize, raw);
            expect(recipe?.t).toBe('base64');
            expect(canonical.equals(data.subarray(0, n))).toBe(true);
            for (const chunk of [1, 7, 4096]) expect(reencode(recipe!, canonical, chunk).equals(raw)).toBe(true);
          }
        });

  const good = wrapB64(crypto.randomBytes(500), 76, '\r\n', true).toString('latin1');
  const irregular: Record<string, string> = {
    'mixed line lengths': good.replace('\r\n', '').replace(/(.{10})/, '$1\r\n'),
    'trailing space on a line': good.replace('\r\n', ' \r\n'),
    'missing padding': wrapB64(Buffer.from('ab'), 76, '\n', true).toString().replace(/=+/, ''),
    'url-safe alphabet': Buffer.from([0xfb, 0xff, 0xfe, 0xfb, 0xef]).toString('base64url') + '==\n',
    'data after padding': 'YQ==YQ==\n',
    'non-zero pad bits': 'YR==\n',
    'blank line inside': good.replace('\r\n', '\r\n\r\n'),
    'mixed line endings': good.replace('\r\n', '\n'),
    'invalid character': good.replace(/^(.{5})./, '$1*'),
    'lower line length not multiple of 4': 'YWJj\nZA\nZA==\n',
  };
  for (const [name, raw] of Object.entries(irregular))
    it(`irregular: ${name} is stored as it came`, () => {
      expect(run(base64Canonicalize, Buffer.from(raw, 'latin1')).recipe).toBeNull();
    });
});

describe('quoted-printable recipe', () => {
  it('decodes what the greedy encoder produced, for both line endings, to canonical CRLF text', () => {
    const text = Buffer.from('Grüße aus Köln = schön!\r\nA long line '.repeat(20) + '\r\ntrailing space \r\nend', 'utf8');
    for (const crlf of [false, true]) {
      const raw = qpEncode(text, { lineMax: 76, crlf, text: true, extra: Buffer.alloc(0) });
      expect(raw.includes('\r')).toBe(crlf);
      const { recipe, canonical } = run(qpCanonicalize, raw);
      expect(recipe?.t).toBe('qp');
      expect(canonical.equals(text)).toBe(true);
      expect(reencode(recipe!, canonical).equals(raw)).toBe(true);
    }
  });
  it('binary quoted-printable (CR and LF escaped, only soft breaks) decodes to the exact bytes', () => {
    const bin = Buffer.from(Array.from({ length: 3000 }, (_, i) => (i * 31 + 7) & 255));
    const raw = qpEncode(bin, { lineMax: 76, crlf: true, text: false, extra: Buffer.alloc(0) });
    const { recipe, canonical } = run(qpCanonicalize, raw);
    expect(recipe).toMatchObject({ t: 'qp', text: false });
    expect(canonical.equals(bin)).toBe(true);
    expect(reencode(recipe!, canonical).equals(raw)).toBe(true);
  });
  it('keeps lower-case hex, bad escapes and mixed whitespace conventions as they came', () => {
    for (const raw of ['caf=c3=a9\n', 'bad =ZZ escape', 'ends with =4', 'a literal \nand an escaped=20\nend']) {
      expect(run(qpCanonicalize, Buffer.from(raw)).recipe).toBeNull();
    }
  });
  it('word-wrapping encoders, literal trailing whitespace and a trailing "=" are reproduced exactly', () => {
    const cases = [
      'A line wrapped at a word boundary by a client that prefers =\r\nspaces, and another short =\r\nline.\r\nNext paragraph.',
      'trailing space left literal \nby an old encoder\n',
      '<html>soft break at the very end=',
      '=\n=\nempty soft lines=\n',
    ];
    for (const c of cases) {
      const raw = Buffer.from(c, 'latin1');
      const { recipe, canonical } = run(qpCanonicalize, raw);
      expect(recipe?.t).toBe('qp');
      expect(reencode(recipe!, canonical).equals(raw)).toBe(true);
    }
  });
});

describe('lf recipe', () => {
  it('LF text is stored as canonical CRLF text and restored', () => {
    const raw = Buffer.from('line one\nline two\n\nlast');
    const { recipe, canonical } = run(lfCanonicalize, raw);
    expect(recipe?.t).toBe('lf');
    expect(canonical.toString()).toBe('line one\r\nline two\r\n\r\nlast');
    for (const chunk of [1, 2, 3, 100]) expect(reencode(recipe!, canonical, chunk).equals(raw)).toBe(true);
  });
  it('CRLF text is already canonical; bare CR, mixed endings or no line break are not LF text', () => {
    for (const raw of ['a\r\nb\r\n', 'a\r\nb\nc', 'a\rb\n', 'no breaks']) expect(run(lfCanonicalize, Buffer.from(raw)).recipe).toBeNull();
  });
});
