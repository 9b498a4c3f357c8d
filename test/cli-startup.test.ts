import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { ROOT, tmpDir } from './helpers.js';

const FIXTURE = path.join(ROOT, 'test', 'fixtures', 'loaded-packages.mjs');
const WATCHED = ['@aws-sdk/client-s3', 'cli-progress'];

/** Runs the CLI in a fixture process and says which of the watched packages it loaded. */
function loaded(cli: string[], input?: Buffer): Record<string, boolean> {
  const r = spawnSync(process.execPath, [FIXTURE, ...WATCHED, '--', ...cli], { input, env: { ...process.env, MAILCAS_NO_PROGRESS: '1' }, encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

/**
 * An MTA starts `mailcas deliver` for every message: a store on local files
 * must not pay for the S3 SDK (about 20 MB and a tenth of a second) or for
 * what only a terminal uses.
 */
describe('what a command on a local store loads', () => {
  it('deliver and ingest load neither the S3 SDK nor the progress bars; the check sees the SDK once it is used', () => {
    const dir = tmpDir();
    const store = path.join(dir, 'store');
    const msg = Buffer.from('From: a@example.org\r\nSubject: hi\r\n\r\nhello\r\n');
    const file = path.join(dir, 'm.eml');
    fs.writeFileSync(file, msg);
    expect(loaded(['--store', store, 'init'])).toEqual({ '@aws-sdk/client-s3': false, 'cli-progress': false });
    expect(loaded(['--store', store, 'deliver', '--user', 'u'], msg)).toEqual({ '@aws-sdk/client-s3': false, 'cli-progress': false });
    expect(loaded(['--store', store, 'ingest', '--user', 'u', file])).toEqual({ '@aws-sdk/client-s3': false, 'cli-progress': false });
    // positive control: the same process shape, with an S3 client made first
    expect(loaded(['--load-s3', '--store', store, 'check'])['@aws-sdk/client-s3']).toBe(true);
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
