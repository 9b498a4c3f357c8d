// One verified read path: a message whose metadata was damaged (a header block, a literal of its
// layout such as a boundary line, its MIME tree) is refused by every front with the message named,
// before a byte of it goes out: the library, fetch, export, IMAP (BODY[], RFC822, BODY[HEADER],
// BODY[1], a partial) and the HTTP service (whole, section, range). The damage keeps every length,
// so only the layout checksum or the whole-message hash can see it; a healthy message beside them
// is served exactly by all of them.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Store } from '../src/store.js';
import { silentLogger } from '../src/util/logger.js';
import { decodeLayout, encodeLayout, packLayout, unpackLayout } from '../src/layout/layout-codec.js';
import { BIN, runCli, tmpDir } from './helpers.js';
import { Client, start } from './harness/hostile-fronts.js';

const TOKEN = 'read-path-token-0123456789';

function message(i: number): Buffer {
  const att = crypto.randomBytes(3000).toString('base64').replace(/.{76}/g, '$&\r\n');
  return Buffer.from(
    `From: a@example.org\r\nTo: u@example.org\r\nSubject: message ${i}\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="bnd${i}"\r\n\r\n` +
      `--bnd${i}\r\nContent-Type: text/plain\r\n\r\n${'plain text line\r\n'.repeat(20)}\r\n--bnd${i}\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n${att}\r\n--bnd${i}--\r\n`,
  );
}

type Damage = 'header' | 'literal' | 'tree';

/** Damages one message's metadata in place, keeping every length (what a bad sector or a stray write could do). */
function damage(dbFile: string, id: string, how: Damage): void {
  const db = new Database(dbFile);
  try {
    if (how === 'tree') {
      const { tree } = db.prepare('SELECT tree FROM messages WHERE id = ?').get(Number(id)) as { tree: Buffer };
      const t = Buffer.from(tree);
      t[t.length - 1] ^= 1; // an offset of the last section moved by one
      db.prepare('UPDATE messages SET tree = ? WHERE id = ?').run(t, Number(id));
      return;
    }
    const r = db.prepare('SELECT codec, dict, layout, inline, inline_codec, inline_dict FROM messages WHERE id = ?').get(Number(id)) as {
      codec: number;
      dict: number | null;
      layout: Buffer;
      inline: Buffer | null;
      inline_codec: number;
      inline_dict: number | null;
    };
    const dictionary = (d: number | null): Buffer | null => (d == null ? null : (db.prepare('SELECT data FROM dictionaries WHERE id = ?').get(d) as { data: Buffer }).data);
    const layout = decodeLayout(unpackLayout(r.layout, r.codec, dictionary(r.dict)), r.inline ? unpackLayout(r.inline, r.inline_codec, dictionary(r.inline_dict)) : undefined);
    const seg = layout.segments.find((s) => s.k === how && (how === 'header' ? s.bytes.includes('Subject:') : s.bytes.includes('--bnd')));
    if (!seg || seg.k === 'part') throw new Error(`no ${how} segment to damage`);
    const at = how === 'header' ? seg.bytes.indexOf('message ') : seg.bytes.indexOf('--bnd') + 2;
    seg.bytes = Buffer.from(seg.bytes);
    seg.bytes[at] = 'X'.charCodeAt(0); // "Subject: Xessage" / "--Xnd": same length
    const enc = encodeLayout(layout);
    const p = packLayout(enc.head, null);
    db.prepare('UPDATE messages SET layout = ?, codec = ?, dict = NULL WHERE id = ?').run(p.data, p.codec, Number(id));
  } finally {
    db.close();
  }
}

describe('one verified read path', () => {
  const store = tmpDir();
  const msgs = [0, 1, 2, 3].map(message);
  const ids: string[] = [];
  const damaged: [Damage, string][] = [];
  let healthy = '';

  beforeAll(async () => {
    const s = await Store.init(store, { logger: silentLogger, workers: 0 });
    for (const m of msgs) ids.push((await s.ingest(m, { user: 'u' })).id);
    await s.close();
    healthy = ids[3];
    (['header', 'literal', 'tree'] as Damage[]).forEach((how, k) => {
      damage(path.join(store, 'meta.sqlite'), ids[k], how);
      damaged.push([how, ids[k]]);
    });
  });

  it('the library, fetch and export refuse each damaged message by name, and serve the healthy one exactly; check names them', async () => {
    const s = await Store.open(store, { logger: silentLogger, readOnly: true });
    try {
      for (const [how, id] of damaged) {
        const why = new RegExp(`message ${id}: its header blocks, layout or MIME tree do not match their checksum`);
        expect(() => s.access(id, { user: 'u' }), how).toThrow(why);
        await expect(s.fetchBuffer(id, { user: 'u' }), how).rejects.toThrow(why);
        await expect(s.fetch(id, { user: 'u' }), how).rejects.toThrow(why);
      }
      expect((await s.fetchBuffer(healthy, { user: 'u' })).equals(msgs[3])).toBe(true);
    } finally {
      await s.close();
    }
    for (const [how, id] of damaged) {
      const r = await runCli(['--store', store, 'fetch', '--user', 'u', id]);
      expect(r.code, how).not.toBe(0);
      expect(r.stdout.length, how).toBe(0);
      expect(r.stderr.toString(), how).toContain(`message ${id}: its header blocks`);
    }
    const out = tmpDir();
    const ex = await runCli(['--store', store, 'export', '--user', 'u', '--out', out]);
    expect(ex.code).toBe(1);
    for (const [, id] of damaged) expect(ex.stderr.toString()).toContain(`message ${id}`);
    expect(fs.readdirSync(out)).toEqual([`${healthy}.eml`]);
    expect(fs.readFileSync(path.join(out, `${healthy}.eml`)).equals(msgs[3])).toBe(true);
    const check = JSON.parse((await runCli(['--store', tmpCopy(store), 'check', '--json'])).stdout.toString());
    expect(check.corruptMessages.sort()).toEqual(damaged.map(([, id]) => id).sort());
  });

  describe('the servers', () => {
    let imap: Awaited<ReturnType<typeof start>>;
    let serve: Awaited<ReturnType<typeof start>>;
    beforeAll(async () => {
      const passwd = path.join(tmpDir(), 'passwd');
      fs.writeFileSync(passwd, 'u:{PLAIN}pw-u\n');
      const tokens = path.join(tmpDir(), 'tokens');
      fs.writeFileSync(tokens, `${TOKEN} u\n`);
      imap = await start(BIN, ['--store', store, 'imap', '--listen', '127.0.0.1:0', '--passwd', passwd]);
      serve = await start(BIN, ['--store', store, 'serve', '--listen', '127.0.0.1:0', '--tokens', tokens]);
    });
    afterAll(() => {
      imap?.p.kill('SIGTERM');
      serve?.p.kill('SIGTERM');
    });

    it('IMAP: BODY[], RFC822, BODY[HEADER], BODY[1] and a partial of a damaged message are NO [CORRUPTION] naming it, with none of its bytes', async () => {
      const c = new Client(imap.port);
      await c.ready;
      await c.wait(/^\* OK[^\r\n]*\r\n/m);
      expect(await c.cmd('a1', 'LOGIN u pw-u')).toMatch(/a1 OK/);
      expect(await c.cmd('a2', 'EXAMINE INBOX')).toMatch(/a2 OK/);
      let n = 3;
      for (const [how, id] of damaged) {
        for (const item of ['BODY.PEEK[]', 'RFC822', 'BODY.PEEK[HEADER]', 'BODY.PEEK[1]', 'BODY.PEEK[]<0.40>', 'BODY.PEEK[2]<10.20>']) {
          const tag = `t${n++}`;
          const answer = await c.cmd(tag, `UID FETCH ${id} (${item})`);
          expect(answer, `${how} ${item}`).toMatch(new RegExp(`^${tag} NO \\[CORRUPTION\\] message ${id}: `, 'm'));
          expect(answer, `${how} ${item}`).not.toMatch(/Xessage|--Xnd|\{\d+\}/);
        }
      }
      // the healthy message, whole, through the same path
      const whole = await c.cmd('h1', `UID FETCH ${healthy} (BODY.PEEK[])`);
      expect(whole).toMatch(/h1 OK/);
      expect(whole).toContain(`{${msgs[3].length}}\r\n${msgs[3].toString('latin1')})`);
      // a FETCH over all of them: the healthy one answered, then the command fails naming the first damaged one
      const all = await c.cmd('h2', 'UID FETCH 1:* (BODY.PEEK[HEADER])');
      expect(all).toMatch(/^h2 NO \[CORRUPTION\] message \d+: /m);
      expect(all).not.toContain('Xessage');
      c.close();
    });

    it('HTTP: whole, section and range of a damaged message are 500 "damaged" naming it; the healthy one is exact', async () => {
      const base = `http://127.0.0.1:${serve.port}/v1/users/u/messages`;
      const get = (p: string, headers: Record<string, string> = {}) => fetch(base + p, { headers: { Authorization: `Bearer ${TOKEN}`, ...headers } });
      for (const [how, id] of damaged) {
        for (const [p, h] of [[`/${id}`, {}], [`/${id}/section/HEADER`, {}], [`/${id}/section/1`, {}], [`/${id}`, { Range: 'bytes=0-39' }], [`/${id}/section/2`, { Range: 'bytes=5-9' }]] as [string, Record<string, string>][]) {
          const r = await get(p, h);
          const body = await r.text();
          expect(r.status, `${how} ${p}`).toBe(500);
          expect(body, `${how} ${p}`).toContain(`message ${id}: its header blocks`);
          expect(body).not.toMatch(/Xessage|--Xnd/);
        }
      }
      const ok = await get(`/${healthy}`);
      expect(ok.status).toBe(200);
      expect(Buffer.from(await ok.arrayBuffer()).equals(msgs[3])).toBe(true);
    });
  });
});

/** A copy of a store's directory (check opens it for writing; the servers keep reading the original). */
function tmpCopy(dir: string): string {
  const to = path.join(tmpDir(), 'store');
  fs.cpSync(dir, to, { recursive: true });
  return to;
}
