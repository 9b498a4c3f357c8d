import crypto from 'node:crypto';
import { base64Encoder } from '../src/recipe/base64.js';
const data = crypto.randomBytes(1 << 20);
const L = 76, bpl = 57;
function current(): Buffer { const e = base64Encoder(76, true, Buffer.alloc(0)); return Buffer.concat([e.push(data), e.end()]); }
function manual(): Buffer {
  const nl = Math.floor(data.length / bpl);
  const src = Buffer.from(data.toString('base64', 0, nl * bpl), 'latin1');
  const out = Buffer.allocUnsafe(nl * (L + 2));
  let o = 0, s = 0;
  for (let k = 0; k < nl; k++) {
    for (let j = 0; j < L; j++) out[o + j] = src[s + j];
    o += L; s += L;
    out[o++] = 13; out[o++] = 10;
  }
  return out;
}
function setSub(): Buffer {
  const nl = Math.floor(data.length / bpl);
  const src = Buffer.from(data.toString('base64', 0, nl * bpl), 'latin1');
  const out = Buffer.allocUnsafe(nl * (L + 2));
  let o = 0;
  for (let k = 0; k < nl; k++) { out.set(src.subarray(k * L, k * L + L), o); o += L; out[o++] = 13; out[o++] = 10; }
  return out;
}
function copyB(): Buffer {
  const nl = Math.floor(data.length / bpl);
  const src = Buffer.from(data.toString('base64', 0, nl * bpl), 'latin1');
  const out = Buffer.allocUnsafe(nl * (L + 2));
  let o = 0;
  for (let k = 0; k < nl; k++) { src.copy(out, o, k * L, k * L + L); o += L; out[o++] = 13; out[o++] = 10; }
  return out;
}
function withinWrite(): Buffer {
  // current approach isolated: write then copyWithin per line
  const nl = Math.floor(data.length / bpl);
  const out = Buffer.allocUnsafe(nl * (L + 2));
  const base = (nl - 1) * 2;
  out.write(data.toString('base64', 0, nl * bpl), base, 'latin1');
  let o = 0;
  for (let k = 0; k < nl; k++) { const src = base + k * L; if (o !== src) out.copyWithin(o, src, src + L); o += L; out[o++] = 13; out[o++] = 10; }
  return out;
}
const ref = withinWrite();
for (const [name, f] of [['current', current], ['withinWrite', withinWrite], ['manual', manual], ['setSub', setSub], ['copy', copyB]] as const) {
  const r = f();
  const ok = r.subarray(0, ref.length - 200).equals(ref.subarray(0, ref.length - 200));
  for (let i = 0; i < 20; i++) f();
  const N = 100; const t = process.hrtime.bigint();
  for (let i = 0; i < N; i++) f();
  const s = Number(process.hrtime.bigint() - t) / 1e9;
  console.log(name.padEnd(12), (N / s).toFixed(0), 'MB/s', ok ? '' : 'MISMATCH');
}
