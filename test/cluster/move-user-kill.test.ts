// move-user between two nodes of a cluster, killed (SIGKILL) again and again part way, then run to the end:
// at every stop each of the user's messages is readable, exactly, on one node or the other; at the end all are on
// the target, none on the source, both check clean, and the shared blobs are still in the bucket once.
import crypto from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Store } from '../../src/store.js';
import { silentLogger } from '../../src/util/logger.js';
import { hashBuffer } from '../../src/util/hash.js';
import { freshBucket, s3Env } from '../s3-env.js';
import { messageWith } from '../mailgen.js';
import { run } from '../harness/crash-harness.js';
import { BIN, tmpDir } from '../helpers.js';

const env = s3Env();

describe.runIf(env !== null)('move-user between nodes, with SIGKILLs', () => {
  it('never loses a message: each is on one side or the other at every stop, and a last run finishes the move', async () => {
    const base = await freshBucket();
    const s3 = ['--s3', `s3://${base.bucket}/mv`, '--s3-endpoint', env!.endpoint];
    const [a, b] = [tmpDir(), tmpDir()];
    for (const [d, n] of [[a, 'a'], [b, 'b']] as const) expect((await run(BIN, ['--store', d, 'init', ...s3, '--node', n])).code).toBe(0);
    const atts = Array.from({ length: 4 }, () => crypto.randomBytes(300 * 1024));
    const msgs = Array.from({ length: 40 }, (_, i) => messageWith(atts[i % atts.length], { subject: `message ${i}` }));
    const sa = await Store.open(a, { logger: silentLogger, workers: 0 });
    for (const m of msgs) await sa.ingest(m, { user: 'mover' });
    await sa.close();
    const want = new Set(msgs.map((m) => hashBuffer(m).toString('hex')));
    const readable = async (): Promise<{ onA: number; onB: number; missing: number }> => {
      const seen = new Set<string>();
      const counts = { onA: 0, onB: 0, missing: 0 };
      for (const [d, side] of [[a, 'onA'], [b, 'onB']] as const) {
        const s = await Store.open(d, { logger: silentLogger, workers: 0 });
        try {
          for (const m of s.list('mover')) {
            const bytes = await s.fetchBuffer(m.id);
            seen.add(hashBuffer(bytes).toString('hex'));
            counts[side]++;
          }
        } finally {
          await s.close();
        }
      }
      for (const h of want) if (!seen.has(h)) counts.missing++;
      return counts;
    };
    // killed sooner, then later and later, until a run gets to the end
    const stops: string[] = [];
    for (let delay = 200; delay < 8000; delay += 100) {
      const r = await run(BIN, ['--store', a, 'move-user', '--user', 'mover', '--to', b], { killAfterMs: delay });
      const c = await readable();
      expect(c.missing, `after a stop at ${delay} ms`).toBe(0);
      stops.push(`${r.signal ?? r.code}: a ${c.onA}, b ${c.onB}`);
      if (r.signal !== 'SIGKILL') break;
    }
    console.log(`stops: ${stops.join('; ')}`);
    // some stops fell in the middle: copies on the target while the source still held everything
    expect(stops.filter((x) => /^SIGKILL: a \d+, b [1-9]/.test(x)).length).toBeGreaterThan(0);
    const last = await run(BIN, ['--store', a, 'move-user', '--user', 'mover', '--to', b, '--json']);
    expect(last.code, last.stderr).toBe(0);
    const c = await readable();
    expect(c).toEqual({ onA: 0, onB: msgs.length, missing: 0 });
    for (const d of [a, b]) {
      const g = await run(BIN, ['--store', d, 'gc', '--grace', '0']);
      expect(g.code, g.stderr).toBe(0);
      const k = await run(BIN, ['--store', d, 'check', '--deep']);
      expect(k.code, k.stdout + k.stderr).toBe(0);
    }
    const col = JSON.parse((await run(BIN, ['--store', b, 'cluster', 'collect', '--grace', '0', '--json'])).stdout);
    expect(col.instances - col.deleted).toBe(atts.length);
  }, 240_000);
});
