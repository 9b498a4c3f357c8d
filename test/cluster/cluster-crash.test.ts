// Three node stores (separate processes, separate SQLite files) on one Ceph RGW bucket: overlapping mail,
// expunges, gc and the collector on all three at once, with SIGKILLs (test/harness/cluster-harness.ts).
import { describe, expect, it } from 'vitest';
import { runClusterHarness } from '../harness/cluster-harness.js';
import { freshBucket, s3Env } from '../s3-env.js';
import { BIN, tmpDir } from '../helpers.js';

const env = s3Env();

describe.runIf(env !== null)('three nodes on one bucket, with SIGKILLs', () => {
  it('every acknowledged message on every node fetches byte-exact, check is clean everywhere, each shared blob is in the bucket once', async () => {
    const seed = Number(process.env.MAILCAS_SEED ?? Date.now() % 1_000_000);
    const base = await freshBucket();
    const rep = await runClusterHarness({ seed, nodes: 3, operations: 90, concurrency: 6, bin: BIN, loc: { ...base, prefix: 'cluster/' }, dirs: [tmpDir(), tmpDir(), tmpDir()] });
    console.log(JSON.stringify(rep));
    expect(rep.kills).toBeGreaterThan(5);
    expect(rep.acknowledged).toBeGreaterThan(20);
    expect(rep.lost, `seed ${seed}`).toEqual([]);
    expect(rep.mismatched, `seed ${seed}`).toEqual([]);
    expect(rep.checkFailures, `seed ${seed}`).toEqual([]);
    expect(rep.verified).toBeGreaterThan(0);
    expect(rep.unreferencedInstances, `seed ${seed}`).toBe(0);
    expect(rep.instances, `seed ${seed}: each distinct shared blob once`).toBe(rep.sharedBlobs);
  }, 300_000);
});
