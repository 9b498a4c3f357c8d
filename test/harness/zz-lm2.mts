import { runLifecycleModel } from './lifecycle-model.js';
let bad = 0, steps = 0, crashes = 0, acked = 0;
for (let seed = 100; seed < 130; seed++) {
  const rep = await runLifecycleModel({ seed, steps: 500, crashRate: [0, 0.005, 0.02][seed % 3] });
  steps += rep.steps; crashes += rep.crashes; acked += rep.acknowledged;
  const v = [...rep.violations, ...rep.lost, ...(rep.check ? [rep.check] : [])];
  if (v.length) { bad++; console.log(seed, v.slice(0, 2)); }
}
console.log(JSON.stringify({ seeds: 30, steps, crashes, acked, bad }));
