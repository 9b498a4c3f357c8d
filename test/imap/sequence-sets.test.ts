import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Store } from '../../src/store.js';
import { silentLogger } from '../../src/util/logger.js';
import { ImapService } from '../../src/imap/imap-server.js';
import { PasswordFile } from '../../src/imap/passwd.js';
import { tmpDir } from '../helpers.js';

let store: Store;
let imap: ImapService;
let port: number;
/** INBOX's UIDs: every other id (the messages in between are in another mailbox). */
const inbox: number[] = [];

const msg = (i: number): Buffer => Buffer.from(`Subject: m${i}\r\n\r\nbody ${i}\r\n`);

beforeAll(async () => {
  store = await Store.init(tmpDir(), { logger: silentLogger, workers: 0 });
  for (let i = 0; i < 12; i++) {
    const r = await store.ingest(msg(i), { user: 'u1', mailbox: i % 2 ? 'Other' : 'INBOX' });
    if (i % 2 === 0) inbox.push(Number(r.id));
  }
  imap = new ImapService(store, { passwd: PasswordFile.parse('u1:pw\n'), log: silentLogger });
  port = Number((await imap.listen({ host: '127.0.0.1', port: 0 })).split(':').pop());
});

afterAll(async () => {
  await imap.close();
  await store.close();
});

/** One session: each command sent after the previous one's tagged answer; the untagged lines of each. */
async function session(commands: string[], between?: (i: number) => Promise<void>): Promise<string[][]> {
  const s = net.connect(port, '127.0.0.1');
  let buf = '';
  let wake: (() => void) | null = null;
  s.on('data', (d) => {
    buf += d.toString('latin1');
    wake?.();
  });
  const until = async (re: RegExp): Promise<string> => {
    while (!re.test(buf)) await new Promise<void>((r) => (wake = r));
    const m = re.exec(buf)!;
    const got = buf.slice(0, m.index + m[0].length);
    buf = buf.slice(m.index + m[0].length);
    return got;
  };
  await until(/\* OK[^\r]*\r\n/);
  const out: string[][] = [];
  for (let i = 0; i < commands.length; i++) {
    await between?.(i);
    s.write(`t${i} ${commands[i]}\r\n`);
    const text = await until(new RegExp(`(^|\\r\\n)t${i} [^\\r]*\\r\\n`));
    out.push(text.split('\r\n').filter((l) => l.startsWith('*') || l.startsWith(`t${i} `)));
  }
  s.end();
  return out;
}

/** "* 3 FETCH (UID 5)" lines as [seq, uid]. */
const pairs = (lines: string[]): number[][] => lines.filter((l) => /^\* \d+ FETCH /.test(l)).map((l) => [Number(/^\* (\d+) FETCH/.exec(l)![1]), Number(/UID (\d+)/.exec(l)![1])]);

describe('IMAP sequence sets and STATUS', () => {
  it('UID sets with gaps, overlaps and any order name each message once, in mailbox order; UIDs that do not exist name nothing', async () => {
    const [u1, u2, u3, u4, u5, u6] = inbox;
    const [, , , uidSet, seqSet, beyond, star, status] = await session([
      'LOGIN u1 pw',
      'EXAMINE INBOX',
      'NOOP',
      // u2+1 is in the other mailbox: the range still finds u3 and u4, and u4 only once
      `UID FETCH ${u5},${u2 + 1}:${u4},${u1},${u3}:${u4} (UID)`,
      'FETCH 4,1:2,2 (UID)',
      `UID FETCH ${u6 + 1}:${u6 + 100} (UID)`,
      'UID FETCH *:* (UID)',
      'STATUS Other (MESSAGES UIDNEXT)',
    ]);
    expect(pairs(uidSet)).toEqual([
      [1, u1],
      [3, u3],
      [4, u4],
      [5, u5],
    ]);
    expect(pairs(seqSet)).toEqual([
      [1, u1],
      [2, u2],
      [4, u4],
    ]);
    expect(pairs(beyond)).toEqual([]);
    expect(beyond[beyond.length - 1]).toMatch(/^t5 OK/);
    expect(pairs(star)).toEqual([[6, u6]]);
    expect(status[0]).toBe(`* STATUS "Other" (MESSAGES 6 UIDNEXT ${store.nextId()})`);
  });

  it('NOOP announces mail that arrived since EXAMINE and makes it fetchable', async () => {
    let added = 0;
    const [, , before, noop, after] = await session(['LOGIN u1 pw', 'EXAMINE INBOX', 'UID FETCH 1:* (UID)', 'NOOP', 'UID FETCH 1:* (UID)'], async (i) => {
      if (i === 3) added = Number((await store.ingest(msg(99), { user: 'u1' })).id);
    });
    expect(pairs(before).map(([, u]) => u)).toEqual(inbox);
    expect(noop).toContain(`* ${inbox.length + 1} EXISTS`);
    expect(pairs(after).map(([, u]) => u)).toEqual([...inbox, added]);
  });
});
