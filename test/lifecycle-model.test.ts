// The single-node blob lifecycle (ingest, expunge, tier, gc with repack at any grace and any clock,
// check --repair) on the real code, interleaved request by request by a seeded scheduler, with
// crashes: no referenced object is ever gone and every acknowledged message reads back. Each
// deliberate flaw patched into the blob index is caught. npm run soak runs many more seeds.
import { describe, expect, it } from 'vitest';
import { runLifecycleModel, type LifecycleFlaw } from './harness/lifecycle-model.js';

const base = Number(process.env.MAILCAS_SEED ?? Math.floor(Math.random() * 2 ** 31));

describe(`blob lifecycle model (seeds from ${base})`, () => {
  it('6 seeds x 400 requests of six workers, with crashes: no violation, nothing lost, check consistent', async () => {
    const sum = { steps: 0, crashes: 0, acknowledged: 0, expunged: 0, ops: {} as Record<string, number> };
    for (let i = 0; i < 6; i++) {
      const rep = await runLifecycleModel({ seed: base + i, steps: 400, crashRate: 0.01 });
      expect(rep.violations, `seed ${base + i}`).toEqual([]);
      expect(rep.lost, `seed ${base + i}`).toEqual([]);
      expect(rep.check, `seed ${base + i}`).toBeNull();
      sum.steps += rep.steps;
      sum.crashes += rep.crashes;
      sum.acknowledged += rep.acknowledged;
      sum.expunged += rep.expunged;
      for (const [k, v] of Object.entries(rep.ops)) sum.ops[k] = (sum.ops[k] ?? 0) + v;
    }
    console.log(`lifecycle model: ${JSON.stringify(sum)}`);
    expect(sum.acknowledged).toBeGreaterThan(20);
  });

  it.each<LifecycleFlaw>(['pack-deletable-before-put', 'switch-without-lease-recheck', 'gc-trusts-its-clock'])('the flaw "%s" is caught', async (flaw) => {
    let found: string | null = null;
    for (let i = 0; i < 40 && !found; i++) {
      const rep = await runLifecycleModel({ seed: base + i, steps: 400, crashRate: 0, flaws: [flaw] });
      const v = [...rep.violations, ...rep.lost, ...(rep.check ? [rep.check] : [])];
      if (v.length) found = `seed ${base + i}: ${v[0]}`;
    }
    console.log(`${flaw}: ${found}`);
    expect(found, `${flaw} was not caught`).not.toBeNull();
  });
});
