// The operator's config file: defaults for any option, global and per command; the command line and the
// environment win; typos are refused with their line; required options can come from it.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli, tmpDir } from './helpers.js';

describe('config file', () => {
  it('sets the store, limits and per-command options; command line and environment win; typos and bad values are refused', async () => {
    const dir = tmpDir();
    const store = path.join(dir, 'store');
    const conf = path.join(dir, 'mailcas.conf');
    fs.writeFileSync(conf, `# test\nstore = ${store}\nmax-parts = 3\n\n[list]\njson = true\n`);
    const parts = path.join(dir, 'parts.eml');
    fs.writeFileSync(parts, 'Subject: a\nContent-Type: multipart/mixed; boundary=b\n\n--b\n\nx\n--b\n\ny\n--b\n\nz\n--b--\n');
    const ok = path.join(dir, 'ok.eml');
    fs.writeFileSync(ok, 'Subject: ok\n\nhi\n');
    // the limit from the file refuses, naming it
    const refused = await runCli(['--config', conf, 'ingest', '--user', 'u', parts]);
    expect(refused.code).toBe(65);
    expect(refused.stderr.toString()).toMatch(/limit is 3/);
    // the store from the file, through $MAILCAS_CONFIG too
    expect((await runCli(['--config', conf, 'ingest', '--user', 'u', ok])).code).toBe(0);
    const listed = await runCli(['list', '--user', 'u'], { env: { MAILCAS_CONFIG: conf } });
    expect(JSON.parse(listed.stdout.toString().trim()).subject).toBe('ok'); // [list] json = true
    // the command line wins over the file, the environment too
    expect((await runCli(['--config', conf, '--max-parts', '10', 'ingest', '--user', 'u', parts])).code).toBe(0);
    expect((await runCli(['--config', conf, 'ingest', '--user', 'u', parts], { env: { MAILCAS_MAX_PARTS: '10' } })).code).toBe(0);
    const other = path.join(dir, 'other');
    expect((await runCli(['--config', conf, '--store', other, 'ingest', '--user', 'u', ok])).code).toBe(0);
    expect(fs.existsSync(path.join(other, 'meta.sqlite'))).toBe(true);
    // a typo, an unknown section and a bad value: one line each, exit 64
    for (const [text, msg] of [
      ['[lmtp]\nmax-recipent = 5\n', /line 2: \[lmtp\] has no option max-recipent/],
      ['[nope]\nx = 1\n', /no command \[nope\]/],
      ['[lmtp]\nmax-recipients = lots\n', /line 2: .*max-recipients/],
      ['this is not a setting\n', /line 1: expected/],
    ] as const) {
      fs.writeFileSync(conf, text);
      const r = await runCli(['--config', conf, 'list', '--user', 'u', '--store', store]);
      expect(r.code, text).toBe(64);
      expect(r.stderr.toString(), text).toMatch(msg);
      expect(r.stderr.toString().trim().split('\n')).toHaveLength(1);
    }
    // a required option from the file (serve --listen/--tokens): the command starts (and fails on the tokens file it names)
    fs.writeFileSync(conf, `[serve]\nlisten = 127.0.0.1:0\ntokens = ${path.join(dir, 'missing-tokens')}\n`);
    const serve = await runCli(['--config', conf, '--store', store, 'serve']);
    expect(serve.code).toBe(64);
    expect(serve.stderr.toString()).toMatch(/cannot read the tokens file/);
  });
});
