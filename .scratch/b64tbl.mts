import crypto from 'node:crypto';
import { base64Encoder } from '../src/recipe/base64.js';
const data = crypto.randomBytes(1 << 20);
const ALPHABET = Buffer.from('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/');
const PAIRS = new Uint16Array(4096);
for (let i = 0; i < 4096; i++) PAIRS[i] = ALPHABET[i >> 6] | (ALPHABET[i & 63] << 8);
const L = 76, bpl = 57;
function table(): Buffer {
  const nl = Math.floor(data.length / bpl);
  const out = Buffer.allocUnsafe(nl * (L + 2));
  let o = 0, i = 0;
  for (let k = 0; k < nl; k++) {
    const end = i + bpl;
    for (; i < end; i += 3) {
      const v = (data[i] << 16) | (data[i + 1] << 8) | data[i + 2];
      const p = PAIRS[v >> 12], q = PAIRS[v & 4095];
      out[o] = p & 255; out[o + 1] = p >> 8; out[o + 2] = q & 255; out[o + 3] = q >> 8;
      o += 4;
    }
    out[o++] = 13; out[o++] = 10;
  }
  return out;
}
const u32 = (): Buffer => {
  // four chars at once through a Uint32 view (little endian)
  const nl = Math.floor(data.length / bpl);
  const out = Buffer.allocUnsafe(nl * (L + 2) + 4);
  let o = 0, i = 0;
  for (let k = 0; k < nl; k++) {
    const end = i + bpl;
    for (; i < end; i += 3) {
      const v = (data[i] << 16) | (data[i + 1] << 8) | data[i + 2];
      out.writeUInt32LE((PAIRS[v >> 12] | (PAIRS[v & 4095] << 16)) >>> 0, o);
      o += 4;
    }
    out[o++] = 13; out[o++] = 10;
  }
  return out.subarray(0, o);
};
function withinWrite(): Buffer {
  const nl = Math.floor(data.length / bpl);
  const out = Buffer.allocUnsafe(nl * (L + 2));
  const base = (nl - 1) * 2;
  out.write(data.toString('base64', 0, nl * bpl), base, 'latin1');
  let o = 0;
  for (let k = 0; k < nl; k++) { const src = base + k * L; if (o !== src) out.copyWithin(o, src, src + L); o += L; out[o++] = 13; out[o++] = 10; }
  return out;
}
function blocks(): Buffer {
  const nl = Math.floor(data.length / bpl);
  const out = Buffer.allocUnsafe(nl * (L + 2));
  let o = 0;
  const B = 512;
  for (let k0 = 0; k0 < nl; k0 += B) {
    const n = Math.min(B, nl - k0);
    const base = o + (n - 1) * 2;
    out.write(data.toString('base64', k0 * bpl, (k0 + n) * bpl), base, 'latin1');
    for (let k = 0; k < n; k++) { const src = base + k * L; if (o !== src) out.copyWithin(o, src, src + L); o += L; out[o++] = 13; out[o++] = 10; }
  }
  return out;
}
const ref = withinWrite();
for (const [name, f] of [['withinWrite', withinWrite], ['table', table], ['blocks', blocks]] as const) {
  const r = f();
  const ok = r.equals(ref);
  for (let i = 0; i < 30; i++) f();
  const N = 200; const t = process.hrtime.bigint();
  for (let i = 0; i < N; i++) f();
  const s = Number(process.hrtime.bigint() - t) / 1e9;
  console.log(name.padEnd(12), (N / s).toFixed(0), 'MB/s', ok ? '' : 'MISMATCH');
}
