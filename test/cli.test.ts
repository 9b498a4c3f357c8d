import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { corpusFiles, runCli, tmpDir } from './helpers.js';
import { messageWith } from './mailgen.js';

const json = (b: Buffer) => b.toString().trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));

describe('command-line contract', () => {
  it('ingest reads stdin or a FILE and prints the id; fetch writes the exact bytes; --mailbox defaults to INBOX', async () => {
    const store = tmpDir();
    const msg = Buffer.from('Subject: hi\r\nFrom: a@b\r\n\r\nbody with \x00 NUL and \xff\r\n', 'latin1');
    const r = await runCli(['--store', store, 'ingest', '--user', 'alice'], { input: msg });
    expect(r.code).toBe(0);
    const id = r.stdout.toString().trim();
    expect(id).toMatch(/^\d+$/);
    const f = await runCli(['--store', store, 'fetch', '--user', 'alice', id]);
    expect(f.code).toBe(0);
    expect(f.stdout.equals(msg)).toBe(true);
    const file = path.join(tmpDir(), 'm.eml');
    fs.writeFileSync(file, msg);
    const r2 = await runCli(['--store', store, 'ingest', '--user', 'alice', '--mailbox', 'Archive', file]);
    expect(r2.code).toBe(0);
    const { Store } = await import('../src/store.js');
    const s = await Store.open(store);
    expect(s.list('alice').map((m) => m.mailbox)).toEqual(['INBOX', 'Archive']);
    await s.close();
  });

  it('the store defaults to $MAILCAS_STORE, else ./mailcas-data, created on first use', async () => {
    const cwd = tmpDir();
    const r = await runCli(['ingest', '--user', 'u'], { input: Buffer.from('Subject: x\n\ny\n'), cwd, env: { MAILCAS_STORE: '' } });
    // an empty MAILCAS_STORE is not a directory name: fall back to ./mailcas-data
    expect(r.code).toBe(0);
    expect(fs.existsSync(path.join(cwd, 'mailcas-data', 'meta.sqlite'))).toBe(true);
    const envStore = path.join(tmpDir(), 'from-env');
    const r2 = await runCli(['ingest', '--user', 'u'], { input: Buffer.from('Subject: x\n\ny\n'), cwd, env: { MAILCAS_STORE: envStore } });
    expect(r2.code).toBe(0);
    expect(fs.existsSync(path.join(envStore, 'meta.sqlite'))).toBe(true);
  });

  it('fetch of another user\'s or an unknown message: one clear line on stderr, non-zero exit, no stack trace', async () => {
    const store = tmpDir();
    const id = (await runCli(['--store', store, 'ingest', '--user', 'alice'], { input: Buffer.from('Subject: s\n\nb\n') })).stdout.toString().trim();
    for (const args of [
      ['fetch', '--user', 'bob', id],
      ['fetch', '--user', 'alice', '999'],
      ['fetch', '--user', 'alice', 'not-an-id'],
    ]) {
      const r = await runCli(['--store', store, ...args]);
      expect(r.code).not.toBe(0);
      expect(r.stdout.length).toBe(0);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(/^mailcas: message .* not found/);
      expect(r.stderr).not.toMatch(/\bat .*\.(js|ts):\d+/);
    }
    const u = await runCli(['--store', store, 'ingest']);
    expect(u.code).toBe(64);
    expect(u.stderr).toMatch(/^mailcas: required option '--user <user>' not specified/);
    expect(u.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('a message over the stated size limit is refused with the limit in the message', async () => {
    const store = tmpDir();
    const r = await runCli(['--store', store, '--max-message-bytes', '1000', 'ingest', '--user', 'u'], { input: Buffer.alloc(5000, 'a') });
    expect(r.code).toBe(65);
    expect(r.stderr).toMatch(/exceeds the size limit of 1000 bytes/);
    const r2 = await runCli(['--store', store, 'report', '--json']);
    expect(JSON.parse(r2.stdout.toString()).messages).toBe(0);
  });

  it('import --json: one line per committed message with source/id/size, then a summary; Maildir cur/ and new/', async () => {
    const store = tmpDir();
    const md = tmpDir();
    for (const sub of ['cur', 'new', 'tmp']) fs.mkdirSync(path.join(md, sub));
    const a = Buffer.from('Subject: a\n\nA\n');
    const b = Buffer.from('Subject: b\r\n\r\nB\r\n');
    fs.writeFileSync(path.join(md, 'cur', '1.host:2,S'), a);
    fs.writeFileSync(path.join(md, 'new', '2.host'), b);
    fs.writeFileSync(path.join(md, 'tmp', '3.host'), 'Subject: partial delivery\n');
    fs.writeFileSync(path.join(md, 'dovecot-uidlist'), '3 V1 N3\n');
    fs.mkdirSync(path.join(md, '.Sent', 'cur'), { recursive: true });
    fs.writeFileSync(path.join(md, '.Sent', 'cur', '4.host:2,S'), 'Subject: sent\n\nS\n');
    const r = await runCli(['--store', store, 'import', '--user', 'u', '--json', md]);
    expect(r.code).toBe(0);
    const lines = json(r.stdout);
    const summary = lines.pop();
    expect(summary.summary.messages).toBe(3);
    expect(lines.map((l) => [path.basename(l.source), l.size]).sort()).toEqual([
      ['1.host:2,S', a.length],
      ['2.host', b.length],
      ['4.host:2,S', 17],
    ]);
    const { Store } = await import('../src/store.js');
    const s = await Store.open(store);
    expect(s.list('u').map((m) => m.mailbox).sort()).toEqual(['INBOX', 'INBOX', 'Sent']);
    await s.close();
    for (const l of lines) {
      expect(Object.keys(l).sort()).toEqual(['id', 'size', 'source']);
      const f = await runCli(['--store', store, 'fetch', '--user', 'u', l.id]);
      expect(f.stdout.equals(fs.readFileSync(l.source))).toBe(true);
    }
  });

  it('import: an mbox file is split on From_ lines (labels path#n); files in a directory are single messages whatever their first line', async () => {
    const store = tmpDir();
    const d = tmpDir();
    const m1 = 'Subject: one\n\nFrom Russia with love\n\n';
    const m2 = 'Subject: two\n\n>From quoted\nbody\n';
    const mbox = `From alice@example.com Sat Jan  3 01:05:34 1996\n${m1}From bob@example.com Sun Jan  4 01:05:34 1996\n${m2}`;
    const mboxFile = path.join(d, 'archive.mbox');
    fs.writeFileSync(mboxFile, mbox);
    const r = await runCli(['--store', store, 'import', '--user', 'u', '--json', mboxFile]);
    expect(r.code).toBe(0);
    const lines = json(r.stdout).filter((l) => l.id);
    expect(lines.map((l) => l.source).sort()).toEqual([`${mboxFile}#1`, `${mboxFile}#2`]);
    const got = await Promise.all(lines.map(async (l) => (await runCli(['--store', store, 'fetch', '--user', 'u', l.id])).stdout.toString()));
    expect(got.sort()).toEqual([m1, m2].sort());

    // the same bytes inside a directory: one message, stored exactly (From_ line included)
    const dir = tmpDir();
    fs.writeFileSync(path.join(dir, 'msg'), mbox);
    const r2 = await runCli(['--store', store, 'import', '--user', 'v', '--json', dir]);
    const l2 = json(r2.stdout).filter((l) => l.id);
    expect(l2).toHaveLength(1);
    expect((await runCli(['--store', store, 'fetch', '--user', 'v', l2[0].id])).stdout.toString()).toBe(mbox);

    // a single message file that starts with a From_ line is not an mbox under auto
    const single = path.join(d, 'single.eml');
    fs.writeFileSync(single, `From alice@example.com Sat Jan  3 01:05:34 1996\n${m1}`);
    const l3 = json((await runCli(['--store', store, 'import', '--user', 'w', '--json', single])).stdout).filter((l) => l.id);
    expect(l3.map((l) => l.source)).toEqual([single]);
    expect((await runCli(['--store', store, 'fetch', '--user', 'w', l3[0].id])).stdout.equals(fs.readFileSync(single))).toBe(true);
    // --format mbox forces splitting
    const l4 = json((await runCli(['--store', store, 'import', '--user', 'x', '--format', 'mbox', '--json', single])).stdout).filter((l) => l.id);
    expect(l4.map((l) => l.source)).toEqual([`${single}#1`]);
  });

  it('export writes DIR/<id>.eml; expunge, gc, check and report speak JSON', async () => {
    const store = tmpDir();
    const att = crypto.randomBytes(40_000);
    const files = [messageWith(att, { subject: 'a' }), messageWith(att, { subject: 'b', lineLen: 64, eol: '\n' })].map((m, i) => {
      const f = path.join(tmpDir(), `${i}.eml`);
      fs.writeFileSync(f, m);
      return f;
    });
    const lines = json((await runCli(['--store', store, 'import', '--user', 'u', '--json', ...files])).stdout).filter((l) => l.id);
    const out = tmpDir();
    expect((await runCli(['--store', store, 'export', '--user', 'u', '--out', out])).code).toBe(0);
    for (const l of lines) expect(fs.readFileSync(path.join(out, `${l.id}.eml`)).equals(fs.readFileSync(l.source))).toBe(true);

    const rep = JSON.parse((await runCli(['--store', store, 'report', '--json'])).stdout.toString());
    for (const k of ['messages', 'logicalBytes', 'storedBytes', 'blobs', 'blobBytes']) expect(typeof rep[k]).toBe('number');
    expect(rep.messages).toBe(2);
    expect(rep.blobs).toBe(1);
    expect(rep.blobBytes).toBe(att.length);
    const human = (await runCli(['--store', store, 'report'])).stdout.toString();
    expect(human).toMatch(/messages\s+2/);

    expect((await runCli(['--store', store, 'expunge', '--user', 'u', ...lines.map((l) => l.id)])).code).toBe(0);
    const gc = JSON.parse((await runCli(['--store', store, 'gc', '--grace', '0', '--json'])).stdout.toString());
    expect(gc.deletedBlobs).toBe(1);
    const chk = await runCli(['--store', store, 'check', '--json']);
    expect(chk.code).toBe(0);
    expect(JSON.parse(chk.stdout.toString()).consistent).toBe(true);
    expect((await runCli(['--store', store, 'gc', '--grace', 'soon'])).code).not.toBe(0);
  });

  it('check exits non-zero when a blob is missing', async () => {
    const store = tmpDir();
    const f = path.join(tmpDir(), 'm.eml');
    fs.writeFileSync(f, messageWith(crypto.randomBytes(30_000)));
    await runCli(['--store', store, 'ingest', '--user', 'u', f]);
    const blob = fs.readdirSync(path.join(store, 'blobs'), { recursive: true, withFileTypes: true }).find((e) => e.isFile() && /^[0-9a-f]{64}$/.test(e.name))!;
    fs.rmSync(path.join(blob.parentPath, blob.name));
    const r = await runCli(['--store', store, 'check']);
    expect(r.code).toBe(1);
    expect(r.stdout.toString()).toMatch(/INCONSISTENT/);
    expect(r.stdout.toString()).toMatch(/missing from the backend: 1/);
  });

  it('imports corpus mbox-like files exactly when given as a directory', async () => {
    const store = tmpDir();
    const fromFiles = corpusFiles().filter((f) => fs.readFileSync(f).subarray(0, 5).toString() === 'From ').slice(0, 10);
    const dir = tmpDir();
    fromFiles.forEach((f, i) => fs.copyFileSync(f, path.join(dir, `m${i}`)));
    const lines = json((await runCli(['--store', store, 'import', '--user', 'u', '--json', dir])).stdout).filter((l) => l.id);
    expect(lines).toHaveLength(fromFiles.length);
    for (const l of lines) expect((await runCli(['--store', store, 'fetch', '--user', 'u', l.id])).stdout.equals(fs.readFileSync(l.source))).toBe(true);
  });
});
