// The sync convergence harness (test/harness/sync-model.ts) over a few seeds: two and three stores, random
// changes, random pair syncs cut short at random points; after every full round the stores agree,
// nothing the users kept is lost and nothing they expunged comes back. A planted flaw is caught.
import { describe, expect, it } from 'vitest';
import { runSyncModel } from './harness/sync-model.js';

const base = Number(process.env.MAILCAS_SEED ?? Date.now() % 1_000_000_000);

describe(`sync convergence (seeds from ${base})`, () => {
  it('6 seeds x 4 rounds x 40 changes, on two stores and on three syncing in pairs: no divergence, nothing lost, nothing resurrected', async () => {
    const totals = { operations: 0, syncs: 0, cut: 0, messages: 0 };
    for (let i = 0; i < 6; i++) {
      const rep = await runSyncModel({ seed: base + i, rounds: 4, stepsPerRound: 40, stores: 2 + (i % 2) });
      expect({ seed: rep.seed, lost: rep.lost, resurrected: rep.resurrected, divergent: rep.divergent }).toEqual({ seed: base + i, lost: [], resurrected: [], divergent: [] });
      for (const k of Object.keys(totals) as (keyof typeof totals)[]) totals[k] += rep[k];
    }
    console.log(`sync model: ${JSON.stringify(totals)}`);
    expect(totals.cut).toBeGreaterThan(0);
  });

  it('the harness has teeth: a store that silently drops a message is caught', async () => {
    const rep = await runSyncModel({
      seed: base,
      rounds: 2,
      stepsPerRound: 30,
      flaw: (s) => {
        const m = s.list('u')[0];
        if (m) s.db.prepare('DELETE FROM messages WHERE id = ?').run(Number(m.id));
      },
    });
    expect(rep.divergent.length + rep.lost.length).toBeGreaterThan(0);
  });
});
