// Placement of users on nodes (weighted rendezvous hashing) and moving a user between stores.
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Store } from '../../src/store.js';
import { silentLogger } from '../../src/util/logger.js';
import { loads, parseNodes, placeUser, planMoves } from '../../src/cluster/placement.js';
import { moveUser } from '../../src/admin/move-user.js';
import { prng } from '../harness/crash-harness.js';
import { corpusFiles, tmpDir } from '../helpers.js';

describe('placement', () => {
  it('10 -> 11 nodes moves about 1/11 of the users, all to the new node; loads stay even; weights are honoured', () => {
    const r = prng(7);
    // 20,000 users with skewed sizes (a few big mailboxes, many small)
    const users = Array.from({ length: 20_000 }, (_, i) => {
      const messages = Math.floor(Math.exp(r() * 8));
      return { user: `user${i}@example.org`, messages, bytes: messages * Math.floor(20_000 + r() * 80_000) };
    });
    const ten = Array.from({ length: 10 }, (_, i) => ({ name: `n${i}`, weight: 1 }));
    const eleven = [...ten, { name: 'n10', weight: 1 }];
    const current = users.map((u) => ({ ...u, node: placeUser(u.user, ten) }));
    const moves = planMoves(current, eleven);
    const share = moves.length / users.length;
    console.log(`10 -> 11 nodes: ${moves.length} of ${users.length} users move (${(share * 100).toFixed(1)}%; ideal ${(100 / 11).toFixed(1)}%)`);
    expect(share).toBeGreaterThan(0.08);
    expect(share).toBeLessThan(0.1);
    expect(new Set(moves.map((m) => m.to))).toEqual(new Set(['n10']));
    const after = [...loads(users, eleven).values()];
    const mean = users.length / 11;
    const spread = Math.max(...after.map((l) => l.users)) / mean;
    const bytesMean = after.reduce((a, l) => a + l.bytes, 0) / 11;
    const bytesSpread = Math.max(...after.map((l) => l.bytes)) / bytesMean;
    console.log(`after: users per node max/mean ${spread.toFixed(3)}, bytes per node max/mean ${bytesSpread.toFixed(3)}`);
    expect(spread).toBeLessThan(1.08);
    expect(bytesSpread).toBeLessThan(1.25);
    // removing a node moves only its users
    const back = planMoves(users.map((u) => ({ ...u, node: placeUser(u.user, eleven) })), ten);
    expect(back.every((m) => m.from === 'n10')).toBe(true);
    // a node with twice the weight gets about twice the users
    const weighted = loads(users, [{ name: 'a', weight: 1 }, { name: 'b', weight: 2 }]);
    const ratio = weighted.get('b')!.users / weighted.get('a')!.users;
    expect(ratio).toBeGreaterThan(1.85);
    expect(ratio).toBeLessThan(2.15);
  });

  it('nodes file: NAME WEIGHT [STORE_DIR]', () => {
    expect(parseNodes('# cluster\nn1 1 /srv/n1\nn2 2.5 /srv/n2\n')).toEqual([
      { name: 'n1', weight: 1, store: '/srv/n1' },
      { name: 'n2', weight: 2.5, store: '/srv/n2' },
    ]);
    for (const bad of ['n1\n', 'n1 0 /x\n', 'n1 1 /x\nn1 1 /y\n', '', 'n1 1 /x extra\n']) expect(() => parseNodes(bad), bad).toThrow();
  });
});

describe('move-user', () => {
  it('moves every message (duplicates too) with its mailbox, received time and flags, and empty mailboxes; interrupted, a second run finishes without loss or extra copies', async () => {
    const src = await Store.init(tmpDir(), { logger: silentLogger, workers: 0 });
    const dst = await Store.init(tmpDir(), { logger: silentLogger, workers: 0 });
    const files = corpusFiles().slice(0, 40);
    const want: { mailbox: string; received: number; bytes: Buffer }[] = [];
    for (const [i, f] of files.entries()) {
      const bytes = fs.readFileSync(f);
      const mailbox = i % 3 ? 'INBOX' : 'Archive';
      const received = Date.UTC(2024, 0, 1 + i);
      await src.ingest(bytes, { user: 'alice', mailbox, received });
      want.push({ mailbox, received, bytes });
      if (i === 5) {
        await src.ingest(bytes, { user: 'alice', mailbox, received }); // the same message twice
        want.push({ mailbox, received, bytes });
      }
    }
    await src.ingest(fs.readFileSync(files[0]), { user: 'bob' });
    await src.mail.create('alice', 'Empty', { subscribe: true });
    const flagged = src.list('alice').filter((_, i) => i % 4 === 1).map((m) => Number(m.id));
    await src.mail.setFlags('alice', flagged, 'add', ['\\Seen', 'Moved']);
    const flagsOf = (s: Store) => s.list('alice').map((m) => `${m.mailbox} ${m.received} ${m.flags.join(',')}`).sort();
    const wantFlags = flagsOf(src);
    // the first run dies after 17 copies (the target refuses the 18th)
    let n = 0;
    const flaky = new Proxy(dst, {
      get(t, k) {
        if (k === 'deliver') return (...a: Parameters<Store['deliver']>) => (++n > 17 ? Promise.reject(new Error('power cut')) : t.deliver(...a));
        const v = Reflect.get(t, k);
        return typeof v === 'function' ? v.bind(t) : v;
      },
    });
    await expect(moveUser(src, flaky, 'alice')).rejects.toThrow('power cut');
    expect(src.list('alice').length).toBe(want.length); // nothing removed from the source
    expect(dst.list('alice').length).toBe(17);
    const rep = await moveUser(src, dst, 'alice');
    expect(rep).toMatchObject({ messages: want.length, copied: want.length - 17, alreadyThere: 17, expunged: want.length });
    expect(src.list('alice')).toEqual([]);
    expect(src.list('bob').length).toBe(1);
    const got = await Promise.all(dst.list('alice').map(async (m) => ({ mailbox: m.mailbox, received: m.received, bytes: await dst.fetchBuffer(m.id) })));
    const key = (x: { mailbox: string; received: number; bytes: Buffer }) => `${x.mailbox} ${x.received} ${x.bytes.toString('base64')}`;
    expect(got.map(key).sort()).toEqual(want.map(key).sort());
    expect(flagsOf(dst)).toEqual(wantFlags);
    expect(dst.mail.info('alice', 'Empty')).toMatchObject({ messages: 0, subscribed: true });
    // a third run finds nothing to do
    expect(await moveUser(src, dst, 'alice')).toMatchObject({ messages: 0, copied: 0, expunged: 0 });
    for (const s of [src, dst]) expect((await s.check()).consistent).toBe(true);
    await src.close();
    await dst.close();
  });
});
