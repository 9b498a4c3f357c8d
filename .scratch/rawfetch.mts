import { Store } from '../src/store.js';
import { silentLogger } from '../src/util/logger.js';
const s = await Store.open('/tmp/fetchprof-store', { logger: silentLogger });
const ids = s.list('u1').map((m) => m.id);
for (let pass = 0; pass < 4; pass++) {
  let n = 0;
  const t = process.hrtime.bigint();
  for (const id of ids) { const a = s.access(id, { user: 'u1' }); for await (const c of a.bytes(0, a.size)) n += c.length; }
  const sec = Number(process.hrtime.bigint() - t) / 1e9;
  let n2 = 0;
  const t2 = process.hrtime.bigint();
  for (const id of ids) n2 += (await s.fetchBuffer(id)).length;
  const sec2 = Number(process.hrtime.bigint() - t2) / 1e9;
  console.log(`access().bytes: ${(n / 1e6 / sec).toFixed(0)} MB/s; fetchBuffer: ${(n2 / 1e6 / sec2).toFixed(0)} MB/s`);
}
await s.close();
