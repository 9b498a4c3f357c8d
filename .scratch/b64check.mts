import crypto from 'node:crypto';
import { base64Encoder } from '../src/recipe/base64.js';
let bad = 0;
for (let t = 0; t < 400; t++) {
  const n = Math.floor(Math.random() * 200_000);
  const data = crypto.randomBytes(n);
  const L = [76, 64, 72, 60, 0, 4][t % 6];
  const crlf = t % 2 === 0;
  const s = data.toString('base64');
  const ref = L ? (s.match(new RegExp(`.{1,${L}}`, 'g')) ?? []).join(crlf ? '\r\n' : '\n') : s;
  const e = base64Encoder(L, crlf, Buffer.alloc(0));
  const out: Buffer[] = [];
  let i = 0;
  while (i < n) { const k = Math.min(n - i, 1 + Math.floor(Math.random() * 90_000)); out.push(e.push(data.subarray(i, i + k))); i += k; }
  out.push(e.end());
  if (Buffer.concat(out).toString('latin1') !== ref) bad++;
}
console.log('mismatches', bad);
