// Starts what the tests need beyond the machine: a one-node Ceph RADOS Gateway (real S3) for
// the S3 tests, through the project's own scripts/ceph-rgw-up.sh (as root; it installs
// Debian's ceph packages when missing). S3_ENDPOINT already set: that server is used.
// MAILCAS_REQUIRE_S3=1 (CI): no S3 server is a failure, never a silent skip.
import fs from 'node:fs';
import { execFileSync, spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.dirname(path.dirname(fileURLToPath(import.meta.url)));

export default function setup(): (() => void) | void {
  if (process.env.S3_ENDPOINT || process.env.MAILCAS_S3 === 'off') return;
  const why = process.getuid?.() !== 0 ? 'not root (the test Ceph cluster runs as root)' : null;
  if (why) {
    if (process.env.MAILCAS_REQUIRE_S3) throw new Error(`S3 tests required but no S3 server: ${why}; set S3_ENDPOINT or run as root`);
    process.stderr.write(`mailcas tests: S3 tests skipped: ${why} (set S3_ENDPOINT, S3_ACCESS_KEY, S3_SECRET_KEY to use a server)\n`);
    return;
  }
  // a cluster already up (a developer's, or an earlier run's) is used and left running
  const dir = process.env.CEPH_RGW_DIR ?? '/tmp/mailcas-ceph-rgw';
  const wasUp = fs.existsSync(path.join(dir, 'env'));
  let env: string;
  try {
    env = execFileSync('bash', [path.join(ROOT, 'scripts', 'ceph-rgw-up.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  } catch (e) {
    if (process.env.MAILCAS_REQUIRE_S3) throw e;
    process.stderr.write(`mailcas tests: S3 tests skipped: the Ceph test cluster did not start (${(e as Error).message.split('\n')[0]})\n`);
    return;
  }
  for (const line of env.split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line);
    if (m) process.env[m[1]] = m[2];
  }
  if (wasUp) return;
  return () => {
    spawnSync('bash', [path.join(ROOT, 'scripts', 'ceph-rgw-down.sh')], { stdio: 'ignore' });
  };
}
