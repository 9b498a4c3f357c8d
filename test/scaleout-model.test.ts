// The scale-out protocol (docs/SCALE-OUT.md), checked by randomized interleaving of three nodes and a
// collector on one bucket, with crashes: no blob a committed message references is ever deleted, and
// nothing leaks. Each deliberate flaw in the protocol is caught (the check has teeth). npm run soak
// runs many more seeds.
import { describe, expect, it } from 'vitest';
import { runModel, type Flaw } from './harness/scaleout-model.js';

const base = Number(process.env.MAILCAS_SEED ?? Math.floor(Math.random() * 2 ** 31));

describe(`scale-out protocol model (seeds from ${base})`, () => {
  it('300 seeds x 3,000 steps of 3 nodes + collector, with crashes: no violation, no leak', () => {
    let steps = 0;
    let deleted = 0;
    let extra = 0;
    for (let i = 0; i < 300; i++) {
      const rep = runModel({ seed: base + i, nodes: 3, contents: 3, steps: 3000, crashRate: 0.01 });
      expect(rep.violations, `seed ${base + i}`).toEqual([]);
      expect(rep.leaked, `seed ${base + i}`).toEqual([]);
      steps += rep.steps;
      deleted += rep.deletedInstances;
      extra += rep.extraCopies;
    }
    console.log(`model: ${steps} steps, ${deleted} instances collected, ${extra} extra copies uploaded after closing races`);
    expect(deleted).toBeGreaterThan(100);
  });

  it.each<Flaw>(['no-recheck-after-tombstone', 'no-head-object', 'marker-after-check', 'no-local-lease', 'tombstone-deleted-first'])('the flaw "%s" is caught', (flaw) => {
    let found: string | null = null;
    for (let i = 0; i < 2000 && !found; i++) {
      const rep = runModel({ seed: base + i, nodes: 3, contents: 2, steps: 2000, crashRate: 0.01, flaws: [flaw] });
      if (rep.violations.length) found = `seed ${base + i}: ${rep.violations[0]}`;
    }
    expect(found, `${flaw} was not caught`).not.toBeNull();
  });
});
