// Quick versions of the reliability harnesses (npm run soak runs the long ones): SIGKILLs at random
// moments and at named crash points across import, deliver, LMTP, expunge, gc and check, on the
// filesystem and on a tiered store with S3 (tier, flush, packs; tier beside gc with late cold PUTs and a
// clock hours ahead); and the hostile-input fuzzer.
// Seeds are printed: MAILCAS_SEED=N replays a run.
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCrashHarness } from './harness/crash-harness.js';
import { runFuzz } from './harness/fuzz-harness.js';
import { runConcurrency } from './harness/concurrency-harness.js';
import { BIN, ROOT, corpusFiles, tmpDir } from './helpers.js';
import { freshBucket, s3Env } from './s3-env.js';

const seed = Number(process.env.MAILCAS_SEED ?? Math.floor(Math.random() * 2 ** 31));
const LMTP_CLIENT = path.join(ROOT, 'test', 'delivery', 'lmtp_client.py');
const pool = corpusFiles().filter((_, i) => i % 7 === 0);
const env = s3Env();

describe(`reliability harnesses (seed ${seed})`, () => {
  it('crash harness on the filesystem: every acknowledged message survives every kill, check stays clean', async () => {
    const rep = await runCrashHarness({ seed, kills: 14, bin: BIN, store: path.join(tmpDir(), 'store'), pool, lmtpClient: LMTP_CLIENT });
    console.log(`crash harness (fs, seed ${seed}): ${JSON.stringify({ ...rep, operations: rep.operations })}`);
    expect(rep.kills).toBe(14);
    expect({ lost: rep.lost, mismatched: rep.mismatched, checkFailures: rep.checkFailures, drift: rep.drift }).toEqual({ lost: [], mismatched: [], checkFailures: [], drift: 0 });
    expect(rep.verified).toBeGreaterThan(0);
  });

  it.runIf(env)('crash harness on a tiered store (files, then S3 packs): the same, with tier and flush killed too', async () => {
    const loc = await freshBucket('harness');
    const rep = await runCrashHarness({
      seed: seed + 1,
      kills: 10,
      bin: BIN,
      store: path.join(tmpDir(), 'store'),
      pool,
      lmtpClient: LMTP_CLIENT,
      tiered: true,
      init: ['--s3', `s3://${loc.bucket}/harness`, '--tiered', '--s3-endpoint', env!.endpoint],
    });
    console.log(`crash harness (tiered, seed ${seed + 1}): ${JSON.stringify(rep)}`);
    expect({ lost: rep.lost, mismatched: rep.mismatched, checkFailures: rep.checkFailures, drift: rep.drift }).toEqual({ lost: [], mismatched: [], checkFailures: [], drift: 0 });
    expect(rep.verified).toBeGreaterThan(0);
  });

  it('many writers at once (3 importers, 2 deliverers, LMTP, expunges of content ingested again, gc --grace 0, check, compact): all succeed, counts exact, every message exact', async () => {
    const rep = await runConcurrency({ seed, seconds: 20, bin: BIN, store: path.join(tmpDir(), 'store'), pool, lmtpClient: LMTP_CLIENT });
    console.log(`concurrency (seed ${seed}): ${JSON.stringify(rep)}`);
    expect({ failures: rep.failures, lost: rep.lost, mismatched: rep.mismatched, check: rep.check }).toEqual({ failures: [], lost: [], mismatched: [], check: null });
    expect(rep.verified).toBeGreaterThan(20);
    expect(rep.expunged).toBeGreaterThan(0);
    expect(rep.commands.gc).toBeGreaterThan(2);
  });

  it.runIf(env)('many writers at once on a tiered store (S3): tier with late cold PUTs beside gc --grace 0 and gc with its clock two hours ahead, repacks included: all succeed, nothing lost', async () => {
    const loc = await freshBucket('conc');
    const rep = await runConcurrency({
      seed: seed + 2,
      seconds: 20,
      bin: BIN,
      store: path.join(tmpDir(), 'store'),
      pool,
      lmtpClient: LMTP_CLIENT,
      tiered: true,
      init: ['--s3', `s3://${loc.bucket}/conc`, '--tiered', '--s3-endpoint', env!.endpoint],
    });
    console.log(`concurrency (tiered, seed ${seed + 2}): ${JSON.stringify(rep)}`);
    expect({ failures: rep.failures, lost: rep.lost, mismatched: rep.mismatched, check: rep.check }).toEqual({ failures: [], lost: [], mismatched: [], check: null });
    expect(rep.verified).toBeGreaterThan(20);
    expect(rep.commands.tier).toBeGreaterThan(2);
    expect(rep.commands['gc (clock ahead)']).toBeGreaterThan(0);
  });

  it('fuzzer: mutated corpus messages and hostile shapes round-trip exactly or are refused naming a limit', async () => {
    const rep = await runFuzz({ seed, cases: 1500, pool, storeDir: tmpDir() });
    console.log(`fuzz (seed ${seed}): ${JSON.stringify(rep)}`);
    expect(rep.failures).toEqual([]);
    expect(rep.exact).toBeGreaterThan(rep.cases * 0.8);
  });
});
