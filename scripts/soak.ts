/**
 * The long reliability run: the crash-injection harness (SIGKILLs at random
 * moments and at named crash points across import, deliver, LMTP, expunge,
 * gc, tier, flush and check; on the filesystem and, when an S3 server is
 * set up, on a tiered store), three cluster nodes on one bucket with SIGKILLs
 * (with an S3 server), the scale-out model, the blob lifecycle model, the sync convergence model (two and
 * three stores, syncs cut short) and the hostile-input fuzzer,
 * then a table.
 *
 *   npm run soak -- [--kills N] [--minutes M] [--seed S] [--fuzz N] [--concurrency-seconds N] [--cluster-rounds N] [--lifecycle-seeds N] [--sync-seeds N] [--hostile-seconds N]
 *
 * Defaults: 1,000 kills, 100,000 fuzz cases, 90 minutes at most. Exit 1 when
 * anything acknowledged was lost, changed, or a check failed.
 */
import path from 'node:path';
import fs from 'node:fs';
import os from 'node:os';
import { runCrashHarness, type CrashHarnessReport } from '../test/harness/crash-harness.js';
import { runFuzz } from '../test/harness/fuzz-harness.js';
import { runConcurrency } from '../test/harness/concurrency-harness.js';
import { runModel } from '../test/harness/scaleout-model.js';
import { runLifecycleModel } from '../test/harness/lifecycle-model.js';
import { runSyncModel } from '../test/harness/sync-model.js';
import { runHostileFronts, type HostileReport } from '../test/harness/hostile-fronts.js';
import { runClusterHarness, type ClusterHarnessReport } from '../test/harness/cluster-harness.js';
import { corpusFiles } from '../test/helpers.js';
import { freshBucket, s3Env } from '../test/s3-env.js';

const arg = (name: string, dflt: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const kills = arg('kills', 1000);
const fuzzCases = arg('fuzz', 100_000);
const minutes = arg('minutes', 90);
const seed = arg('seed', Math.floor(Math.random() * 2 ** 31));
const ROOT = path.dirname(path.dirname(new URL(import.meta.url).pathname));
const BIN = path.join(ROOT, 'bin', 'mailcas.js');
const LMTP = path.join(ROOT, 'test', 'delivery', 'lmtp_client.py');
const pool = corpusFiles().filter((_, i) => i % 3 === 0);
const deadline = Date.now() + minutes * 60_000;
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'mailcas-soak-'));
console.log(`soak: seed ${seed}, ${kills} kills, ${fuzzCases} fuzz cases, at most ${minutes} min (replay: --seed ${seed})`);

// the kills in rounds of 100 on fresh stores (a store that grows without end slows every check)
const rounds: CrashHarnessReport[] = [];
const env = s3Env();
let done = 0;
for (let round = 0; done < kills && Date.now() < deadline - 5 * 60_000; round++) {
  // every fifth round on a tiered store (files, then S3 packs), every fifth on an S3-direct store
  const tiered = !!env && round % 5 === 4;
  const direct = !!env && round % 5 === 2;
  const n = Math.min(100, kills - done);
  const init = tiered || direct ? ['--s3', `s3://${(await freshBucket('soak')).bucket}/soak`, ...(tiered ? ['--tiered'] : []), '--s3-endpoint', env!.endpoint] : undefined;
  const rep = await runCrashHarness({ seed: seed + round, kills: n, bin: BIN, store: path.join(work, `store-${round}`), pool, lmtpClient: LMTP, tiered, init, deadlineMs: deadline - Date.now() - 5 * 60_000 });
  rounds.push(rep);
  done += rep.kills;
  console.log(`round ${round} (${tiered ? 'tiered, S3' : direct ? 'S3 direct' : 'filesystem'}, seed ${seed + round}): ${rep.kills} kills, ${rep.acknowledged} acknowledged, ${rep.verified} verified, lost ${rep.lost.length}, changed ${rep.mismatched.length}, check failures ${rep.checkFailures.length}`);
  for (const f of [...rep.lost, ...rep.mismatched, ...rep.checkFailures]) console.log(`  ! ${f}`);
  fs.rmSync(path.join(work, `store-${round}`), { recursive: true, force: true });
}
const concSeconds = arg('concurrency-seconds', 300);
// on the filesystem, then (with an S3 server) the same time on a tiered store with tier running too
const concRuns = [await runConcurrency({ seed, seconds: concSeconds, bin: BIN, store: path.join(work, 'conc'), pool, lmtpClient: LMTP })];
if (env) concRuns.push(await runConcurrency({ seed: seed + 1, seconds: concSeconds, bin: BIN, store: path.join(work, 'conc-s3'), pool, lmtpClient: LMTP, tiered: true, init: ['--s3', `s3://${(await freshBucket('soak')).bucket}/conc`, '--tiered', '--s3-endpoint', env.endpoint] }));
const conc = {
  commands: {} as Record<string, number>,
  failures: concRuns.flatMap((c) => c.failures),
  lost: concRuns.flatMap((c) => c.lost),
  mismatched: concRuns.flatMap((c) => c.mismatched),
  check: concRuns.map((c) => c.check).filter(Boolean).join('; ') || null,
};
for (const c of concRuns) for (const [k, v] of Object.entries(c.commands)) conc.commands[k] = (conc.commands[k] ?? 0) + v;
console.log(`concurrency (${concRuns.length} x ${concSeconds} s): ${JSON.stringify(conc.commands)}; failures ${conc.failures.length}, lost ${conc.lost.length}, changed ${conc.mismatched.length}, check ${conc.check ?? 'clean'}`);
// three nodes on one bucket (separate processes and SQLite files), with SIGKILLs: rounds of 200 operations
const clusterRuns: ClusterHarnessReport[] = [];
if (env) {
  for (let i = 0; i < arg('cluster-rounds', 10); i++) {
    const dirs = [0, 1, 2].map((n) => path.join(work, `cluster-${i}-${n}`));
    const rep = await runClusterHarness({ seed: seed + i, nodes: 3, operations: 200, concurrency: 8, bin: BIN, loc: { ...(await freshBucket()), prefix: 'cluster/' }, dirs });
    clusterRuns.push(rep);
    console.log(`cluster round ${i} (seed ${seed + i}): ${rep.kills} kills, ${rep.acknowledged} acknowledged, ${rep.verified} verified, lost ${rep.lost.length}, changed ${rep.mismatched.length}, check failures ${rep.checkFailures.length}, shared blobs ${rep.sharedBlobs} in ${rep.instances} instances (${rep.unreferencedInstances} unreferenced)`);
    for (const f of [...rep.lost, ...rep.mismatched, ...rep.checkFailures]) console.log(`  ! ${f}`);
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  }
}
const csum = (f: (r: ClusterHarnessReport) => number): number => clusterRuns.reduce((a, r) => a + f(r), 0);
const clusterBad = csum((r) => r.lost.length + r.mismatched.length + r.checkFailures.length + r.unreferencedInstances + (r.instances - r.sharedBlobs));
// the scale-out protocol model (docs/SCALE-OUT.md): many seeds of 2-4 nodes and a collector, with crashes
const modelSeeds = arg('model-seeds', 5000);
const model = { seeds: 0, steps: 0, collected: 0, violations: [] as string[], leaks: 0 };
for (let i = 0; i < modelSeeds; i++) {
  const rep = runModel({ seed: seed + i, nodes: 2 + (i % 3), contents: 1 + (i % 4), steps: 4000, crashRate: [0, 0.005, 0.02][i % 3] });
  model.seeds++;
  model.steps += rep.steps;
  model.collected += rep.deletedInstances;
  if (rep.violations.length) model.violations.push(`seed ${seed + i}: ${rep.violations[0]}`);
  if (rep.leaked.length) model.leaks++;
}
console.log(`scale-out model: ${model.seeds} seeds, ${model.steps} steps, ${model.collected} instances collected, ${model.violations.length} violations, ${model.leaks} leaks`);
// the single-node blob lifecycle on the real code (ingest, expunge, tier, gc at any grace and clock with repack, check --repair), request by request, with crashes
const lifecycleSeeds = arg('lifecycle-seeds', 200);
const lifecycle = { seeds: 0, steps: 0, crashes: 0, acknowledged: 0, violations: [] as string[] };
for (let i = 0; i < lifecycleSeeds && Date.now() < deadline - 10 * 60_000; i++) {
  const rep = await runLifecycleModel({ seed: seed + i, steps: 1500, crashRate: [0, 0.005, 0.02][i % 3] });
  lifecycle.seeds++;
  lifecycle.steps += rep.steps;
  lifecycle.crashes += rep.crashes;
  lifecycle.acknowledged += rep.acknowledged;
  const v = [...rep.violations, ...rep.lost, ...(rep.check ? [`check: ${rep.check}`] : [])];
  if (v.length) lifecycle.violations.push(`seed ${seed + i}: ${v[0]}`);
}
console.log(`lifecycle model: ${lifecycle.seeds} seeds, ${lifecycle.steps} requests, ${lifecycle.crashes} crashes, ${lifecycle.acknowledged} acknowledged, ${lifecycle.violations.length} violations`);
// two-way sync between two and three stores (docs/SYNC.md): random changes, random syncs cut short, convergence after every round
const syncSeeds = arg('sync-seeds', 100);
const syncModel = { seeds: 0, operations: 0, syncs: 0, cut: 0, messages: 0, failures: [] as string[] };
for (let i = 0; i < syncSeeds && Date.now() < deadline - 8 * 60_000; i++) {
  const rep = await runSyncModel({ seed: seed + i, rounds: 8, stepsPerRound: 60, stores: 2 + (i % 2) });
  syncModel.seeds++;
  syncModel.operations += rep.operations;
  syncModel.syncs += rep.syncs;
  syncModel.cut += rep.cut;
  syncModel.messages += rep.messages;
  const v = [...rep.lost.map((x) => `lost ${x}`), ...rep.resurrected.map((x) => `resurrected ${x}`), ...rep.divergent];
  if (v.length) syncModel.failures.push(`seed ${seed + i}: ${v[0].slice(0, 300)}`);
}
console.log(`sync model: ${syncModel.seeds} seeds, ${syncModel.operations} changes, ${syncModel.syncs} syncs (${syncModel.cut} cut short), ${syncModel.messages} messages, ${syncModel.failures.length} failures`);
// hostile clients at the three fronts, each shape for longer, a bigger mailbox
const hostileShapeMs = arg('hostile-seconds', 20) * 1000;
const hostile: HostileReport = await runHostileFronts({ bin: BIN, dir: fs.mkdtempSync(path.join(work, 'hostile-')), shapeMs: hostileShapeMs, mailboxSize: 8000 });
const hostileBad = hostile.shapes.filter((h) => !h.alive || h.bystander.failed || h.bystander.p99 >= 500).length + Object.values(hostile.sigtermSeconds).filter((v) => v === null).length;
for (const h of hostile.shapes) console.log(`hostile ${h.front}: ${h.shape}: ${h.answer.slice(0, 120)} | bystander p99 ${h.bystander.p99} ms, max ${h.bystander.max} ms (${h.bystander.n}) | peak RSS ${h.rssMB} MB`);
const fuzz = await runFuzz({ seed, cases: fuzzCases, pool, storeDir: path.join(work, 'fuzz'), deadlineMs: Math.max(60_000, deadline - Date.now()) });
fs.rmSync(work, { recursive: true, force: true });

const sum = (f: (r: CrashHarnessReport) => number): number => rounds.reduce((a, r) => a + f(r), 0);
const ops: Record<string, number> = {};
const at: Record<string, number> = {};
for (const r of rounds) {
  for (const [k, v] of Object.entries(r.operations)) ops[k] = (ops[k] ?? 0) + v;
  for (const [k, v] of Object.entries(r.killsAt)) at[k] = (at[k] ?? 0) + v;
}
const rows: [string, string | number][] = [
  ['seed', seed],
  ['operations run', `${sum((r) => Object.values(r.operations).reduce((a, b) => a + b, 0))} (${Object.entries(ops).map(([k, v]) => `${k} ${v}`).join(', ')})`],
  ['SIGKILLs survived', sum((r) => r.kills)],
  ['  at crash points', Object.entries(at).filter(([k]) => !k.endsWith('@random')).reduce((a, [, v]) => a + v, 0)],
  ['  at random moments', Object.entries(at).filter(([k]) => k.endsWith('@random')).reduce((a, [, v]) => a + v, 0)],
  ['messages acknowledged', sum((r) => r.acknowledged)],
  ['messages verified byte-exact', sum((r) => r.verified)],
  ['expunged (acknowledged)', sum((r) => r.expunged)],
  ['acknowledged messages lost', sum((r) => r.lost.length)],
  ['acknowledged messages changed', sum((r) => r.mismatched.length)],
  ['check failures', sum((r) => r.checkFailures.length)],
  ['refcount drift', sum((r) => r.drift)],
  ['concurrent commands (one store)', `${Object.values(conc.commands).reduce((a, b) => a + b, 0)} (${Object.entries(conc.commands).map(([k, v]) => `${k} ${v}`).join(', ')})`],
  ['  failed / lost / changed', `${conc.failures.length} / ${conc.lost.length} / ${conc.mismatched.length}; check ${conc.check ?? 'clean'}`],
  ['cluster rounds (3 nodes, 1 bucket)', `${clusterRuns.length}: ${csum((r) => Object.values(r.operations).reduce((a, b) => a + b, 0))} operations, ${csum((r) => r.kills)} SIGKILLs, ${csum((r) => r.acknowledged)} acknowledged, ${csum((r) => r.verified)} verified`],
  ['  lost / changed / check failures', `${csum((r) => r.lost.length)} / ${csum((r) => r.mismatched.length)} / ${csum((r) => r.checkFailures.length)}`],
  ['  shared blobs / instances at end', `${csum((r) => r.sharedBlobs)} / ${csum((r) => r.instances)} (${csum((r) => r.unreferencedInstances)} unreferenced)`],
  ['scale-out model seeds / steps', `${model.seeds} / ${model.steps} (${model.collected} instances collected)`],
  ['  violations / leaks', `${model.violations.length} / ${model.leaks}`],
  ['lifecycle model seeds / requests', `${lifecycle.seeds} / ${lifecycle.steps} (${lifecycle.crashes} crashes, ${lifecycle.acknowledged} acknowledged)`],
  ['  violations', lifecycle.violations.length],
  ['sync model seeds / changes', `${syncModel.seeds} / ${syncModel.operations} (${syncModel.syncs} syncs, ${syncModel.cut} cut short, ${syncModel.messages} messages)`],
  ['  lost / resurrected / divergent', syncModel.failures.length],
  ['hostile-client shapes (3 fronts)', `${hostile.shapes.length}, ${hostileShapeMs / 1000} s each: bystander p99 at most ${Math.max(...hostile.shapes.map((h) => h.bystander.p99))} ms, peak RSS at most ${Math.max(...hostile.shapes.map((h) => h.rssMB))} MB, SIGTERM ${JSON.stringify(hostile.sigtermSeconds)}`],
  ['  down / bystander failed or slow', hostileBad],
  ['fuzz cases', fuzz.cases],
  ['  round-tripped exactly', fuzz.exact],
  ['  refused naming a limit', `${Object.values(fuzz.refused).reduce((a, b) => a + b, 0)} (${Object.entries(fuzz.refused).map(([k, v]) => `${k} ${v}`).join(', ')})`],
  ['  failures', fuzz.failures.length],
  ['  slowest case (ms)', Math.round(fuzz.slowestMs)],
];
console.log('');
for (const [k, v] of rows) console.log(`${k.padEnd(32)} ${v}`);
console.log('kills by command and point:', Object.entries(at).sort().map(([k, v]) => `${k} ${v}`).join(', '));
for (const f of [...lifecycle.violations, ...syncModel.failures, ...fuzz.failures].slice(0, 20)) console.log(`  ! ${f}`);
const bad = sum((r) => r.lost.length + r.mismatched.length + r.checkFailures.length + r.drift) + fuzz.failures.length + conc.failures.length + conc.lost.length + conc.mismatched.length + (conc.check ? 1 : 0) + model.violations.length + model.leaks + lifecycle.violations.length + syncModel.failures.length + hostileBad + clusterBad;
process.exitCode = bad ? 1 : 0;
