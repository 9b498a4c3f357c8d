/**
 * Convergence harness for two-way sync (docs/SYNC.md), on the real code:
 * two or three stores take random changes (new mail, the same bytes on two stores,
 * flags set and cleared, expunges, moves between mailboxes), and
 * random pairs sync at random times, each sync cut short after a random
 * number of committed changes now and then (what a crash there leaves).
 * After a full round (every pair synced, uncut, until nothing moves) all
 * stores must hold the same mailboxes, messages and flags; no message the
 * users did not expunge may be missing, and none they expunged may be back.
 * Seeded: a failure names its seed.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Store } from '../../src/store.js';
import { syncUser, SyncCut } from '../../src/sync/sync-user.js';
import { silentLogger } from '../../src/util/logger.js';
import { prng } from './crash-harness.js';

export interface SyncModelReport {
  seed: number;
  operations: number;
  syncs: number;
  cut: number;
  messages: number;
  lost: string[];
  resurrected: string[];
  divergent: string[];
}

const USER = 'u';
const MAILBOXES = ['INBOX', 'Work'];

/** A store's view: per mailbox, the sorted (content, flags) of its messages. */
function view(s: Store): string {
  const out: string[] = [];
  for (const name of s.mail.names(USER)) out.push(`${name}: ${s.list(USER, name).map((m) => `${m.messageId}|${m.flags.join(',')}`).sort().join(' ')}`);
  return out.join('\n');
}

export async function runSyncModel(o: { seed: number; rounds: number; stepsPerRound: number; stores?: number; cutRate?: number; flaw?: (s: Store) => void }): Promise<SyncModelReport> {
  const rnd = prng(o.seed);
  const pick = <T>(xs: T[]): T => xs[Math.floor(rnd() * xs.length)];
  const n = o.stores ?? 3;
  const dirs = Array.from({ length: n }, () => fs.mkdtempSync(path.join(os.tmpdir(), 'mailcas-syncmodel-')));
  const stores = await Promise.all(dirs.map((d) => Store.open(d, { logger: silentLogger, workers: 0 })));
  for (const s of stores) await s.mail.create(USER, 'Work');
  const rep: SyncModelReport = { seed: o.seed, operations: 0, syncs: 0, cut: 0, messages: 0, lost: [], resurrected: [], divergent: [] };
  /** Logical messages by their Message-ID: alive, or expunged by a user (on any store). */
  const alive = new Set<string>();
  const expunged = new Set<string>();
  /**
   * Added on two stores, or moved, and not yet through a full round: not expunged meanwhile. Which copy an
   * expunge means is the users' call (docs/SYNC.md: moved on one side and expunged on the other keeps the
   * moved copy; test/sync.test.ts has that case).
   */
  const twins = new Set<string>();
  let serial = 0;
  const sync = async (x: number, y: number, cut: boolean): Promise<void> => {
    rep.syncs++;
    try {
      await syncUser(stores[x], stores[y], USER, cut ? { stopAfter: Math.floor(rnd() * 12) } : {});
    } catch (e) {
      if (!(e instanceof SyncCut)) throw e;
      rep.cut++;
    }
  };
  try {
    for (let round = 0; round < o.rounds; round++) {
      for (let step = 0; step < o.stepsPerRound; step++) {
        const s = pick(stores);
        const op = rnd();
        rep.operations++;
        const mine = s.list(USER);
        if (op < 0.35 || !mine.length) {
          // new mail; now and then the same bytes on a second store too (added on both)
          const mid = `<m${o.seed}-${serial++}@model>`;
          const bytes = Buffer.from(`Message-ID: ${mid}\r\nSubject: ${serial}\r\n\r\n${crypto.randomBytes(20).toString('hex')}\r\n`);
          const box = pick(MAILBOXES);
          await s.ingest(bytes, { user: USER, mailbox: box });
          if (rnd() < 0.2) {
            await pick(stores.filter((x) => x !== s)).ingest(bytes, { user: USER, mailbox: box });
            twins.add(mid);
          }
          alive.add(mid);
          rep.messages++;
        } else if (op < 0.65) {
          const m = pick(mine);
          await s.mail.setFlags(USER, [Number(m.id)], rnd() < 0.6 ? 'add' : 'remove', [pick(['\\Seen', '\\Flagged', 'K1', 'K2'])]);
        } else if (op < 0.8) {
          const m = pick(mine);
          if (twins.has(m.messageId!)) continue;
          await s.mail.expunge(USER, [Number(m.id)]);
          alive.delete(m.messageId!);
          expunged.add(m.messageId!);
        } else {
          // a move into the other mailbox (an expunge there, a new message here: the parts do not travel again)
          const m = pick(mine);
          if (twins.has(m.messageId!)) continue;
          await s.mail.copy(USER, [Number(m.id)], m.mailbox === 'INBOX' ? 'Work' : 'INBOX', { move: true });
          // the moved copy is a message of its new mailbox: kept, whatever happened to the old one elsewhere
          twins.add(m.messageId!);
          alive.add(m.messageId!);
          expunged.delete(m.messageId!);
        }
        if (rnd() < 0.3) {
          const x = Math.floor(rnd() * n);
          await sync(x, (x + 1 + Math.floor(rnd() * (n - 1))) % n, rnd() < (o.cutRate ?? 0.3));
        }
      }
      // a full round, uncut: every pair, twice around, so every change has reached every store
      const ring = Array.from({ length: n }, (_, i) => [i, (i + 1) % n]);
      for (let k = 0; k < 2; k++) for (const [x, y] of [...ring, ...ring]) await sync(x, y, false);
      twins.clear();
      o.flaw?.(stores[0]);
      const views = stores.map(view);
      if (views.some((v) => v !== views[0])) rep.divergent.push(`round ${round}: stores differ\n${views.join('\n---\n')}`);
      const present = new Set(stores[0].list(USER).map((m) => m.messageId!));
      for (const id of alive) if (!present.has(id)) rep.lost.push(`${id} (round ${round})`);
      for (const id of present) if (expunged.has(id) && !alive.has(id)) rep.resurrected.push(`${id} (round ${round})`);
      if (rep.divergent.length || rep.lost.length || rep.resurrected.length) break;
    }
    for (const s of stores) {
      const c = await s.check();
      if (!c.consistent) rep.divergent.push(`check: ${JSON.stringify({ drift: c.drift, missing: c.missingBlobs })}`);
    }
  } finally {
    for (const s of stores) await s.close();
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  }
  return rep;
}
