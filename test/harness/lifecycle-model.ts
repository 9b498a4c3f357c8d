/**
 * The single-node blob lifecycle, checked on the real code by randomized
 * interleaving: ingest, expunge, tier (flush), gc with any grace and any
 * clock (its repack included) and check --repair run as concurrent workers
 * on one tiered store (hot and cold tiers in memory), and every backend
 * request of every worker waits for a seeded scheduler to let it through,
 * one at a time. A PUT is two steps (the object lands, then the answer
 * comes back), so a PUT that returns late is one of the interleavings. At
 * any step the store may crash: its SQLite connection is closed (what was
 * not committed is rolled back), its workers' pending and later requests
 * fail, and a new store is opened on the same database and tiers.
 *
 * After every step the invariant is checked on the committed metadata (a
 * read-only connection): every blob a committed message references has its
 * object where its row says (hot, cold object, or a recorded pack whose
 * object exists), and every acknowledged message not expunged is there. At
 * the end every acknowledged message reads back byte-exact and check is
 * consistent after gc and repair. Deliberate flaws, patched into the blob
 * index for a run, must be caught (the check has teeth).
 */
import fs from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import Database from 'better-sqlite3';
import type { Readable } from 'node:stream';
import { Store } from '../../src/store.js';
import { MemoryBackend } from '../../src/backend/memory-backend.js';
import type { BackendProperties, BlobBackend, ByteRange, ObjectInfo, PutExpect, PutOptions, PutSource } from '../../src/backend/backend.js';
import { BlobIndex } from '../../src/blob-index/blob-index.js';
import { Retire } from '../../src/blob-index/retire.js';
import { silentLogger } from '../../src/util/logger.js';
import { prng } from './crash-harness.js';

export type LifecycleFlaw = 'pack-deletable-before-put' | 'switch-without-lease-recheck' | 'gc-trusts-its-clock';

export interface LifecycleOptions {
  seed: number;
  /** Backend requests let through, in all. */
  steps: number;
  /** Chance of a crash before each step. */
  crashRate: number;
  flaws?: LifecycleFlaw[];
  trace?: string[];
}

export interface LifecycleReport {
  seed: number;
  steps: number;
  crashes: number;
  ops: Record<string, number>;
  acknowledged: number;
  expunged: number;
  violations: string[];
  /** After the run: acknowledged messages that did not read back exact, and what check said. */
  lost: string[];
  check: string | null;
}

const HOUR = 3600_000;

class Crashed extends Error {
  constructor() {
    super('crashed');
  }
}

/** Every request waits here until the driver lets it through; requests of a crashed store fail. */
class Scheduler {
  parked: { label: string; epoch: number; go: () => void; fail: (e: Error) => void }[] = [];
  dead = new Set<number>();
  arrivals = 0;

  wait(label: string, epoch: number): Promise<void> {
    if (this.dead.has(epoch)) return Promise.reject(new Crashed());
    this.arrivals++;
    return new Promise((go, fail) => this.parked.push({ label, epoch, go, fail }));
  }

  kill(epoch: number): void {
    this.dead.add(epoch);
    for (const p of this.parked.filter((p) => p.epoch === epoch)) p.fail(new Crashed());
    this.parked = this.parked.filter((p) => p.epoch !== epoch);
  }

  /** Waits until no request has arrived for a few ticks (everything runnable has run up to its next request, or finished). */
  async settle(): Promise<void> {
    let last = -1;
    let calm = 0;
    for (let i = 0; i < 2000 && calm < 3; i++) {
      await new Promise((r) => setTimeout(r, 1));
      if (this.arrivals === last) calm++;
      else {
        calm = 0;
        last = this.arrivals;
      }
    }
  }
}

/** A backend whose every request is a scheduling step (a PUT two: the object lands, then the answer comes back). */
class StepBackend implements BlobBackend {
  constructor(
    private readonly inner: BlobBackend,
    private readonly sched: Scheduler,
    private readonly epoch: number,
    private readonly name: string,
  ) {}
  get properties(): BackendProperties {
    return { ...this.inner.properties, name: this.name };
  }
  private step(what: string): Promise<void> {
    return this.sched.wait(`${this.name} ${what}`, this.epoch);
  }
  async put(key: string, src: PutSource, expect: PutExpect, opts?: PutOptions): Promise<boolean> {
    await this.step(`PUT ${key.slice(0, 8)}`);
    const r = await this.inner.put(key, src, expect, opts);
    await this.step(`PUT ${key.slice(0, 8)} answered`);
    return r;
  }
  async get(key: string, range?: ByteRange): Promise<Readable | null> {
    await this.step(`GET ${key.slice(0, 8)}`);
    return this.inner.get(key, range);
  }
  async stat(key: string): Promise<ObjectInfo | null> {
    await this.step(`HEAD ${key.slice(0, 8)}`);
    return this.inner.stat(key);
  }
  async delete(key: string): Promise<void> {
    await this.step(`DELETE ${key.slice(0, 8)}`);
    return this.inner.delete(key);
  }
  async *list(): AsyncIterable<ObjectInfo> {
    await this.step('LIST');
    yield* this.inner.list();
  }
  async close(): Promise<void> {}
}

/** Attachments shared between messages: compressible text (deflated hot, packed in brotli frames cold), small random (packed as is), large random (objects of their own). */
function parts(seed: number): Buffer[] {
  const r = prng(seed ^ 0x5bd1e995);
  const text = (n: number) => Buffer.from(Array.from({ length: n }, (_, i) => `line ${i} of ${Math.floor(r() * 1e6)}: lorem ipsum dolor sit amet\n`).join(''));
  return [text(800), text(1200), randomBytes(r, 20_000), randomBytes(r, 300_000)];
}

function randomBytes(r: () => number, n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i += 4) b.writeUInt32LE(Math.floor(r() * 2 ** 32), Math.min(i, n - 4));
  return b;
}

function message(serial: number, attachments: Buffer[]): Buffer {
  const b = `b${serial}`;
  const body = attachments.map((a, i) => `--${b}\r\nContent-Type: application/octet-stream; name="a${i}"\r\nContent-Transfer-Encoding: base64\r\n\r\n${a.toString('base64').replace(/(.{76})/g, '$1\r\n')}\r\n`).join('');
  return Buffer.from(`Subject: m${serial}\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="${b}"\r\n\r\n--${b}\r\n\r\ntext ${serial}\r\n${body}--${b}--\r\n`);
}

/** Patches a deliberate flaw into the blob index (restored by the returned function). */
function patch(flaw: LifecycleFlaw): () => void {
  const P = BlobIndex.prototype as unknown as Record<string, unknown>;
  const R = Retire.prototype as unknown as Record<string, unknown>;
  const saved = { ...Object.fromEntries(['reservePack', 'publishPack', 'publishCold', 'stillBuilding'].map((k) => [k, P[k]])) };
  const savedR = { ...Object.fromEntries(['deleteUnwanted', 'revokeKeys', 'revoke'].map((k) => [k, R[k]])) };
  const restore = () => {
    Object.assign(P, saved);
    Object.assign(R, savedR);
  };
  type Any = (...a: unknown[]) => Promise<unknown>;
  if (flaw === 'pack-deletable-before-put') {
    // a pack recorded with no builder (gc may take it back at once), and its publish not checking it is still there
    P.reservePack = async function (this: BlobIndex, ...a: unknown[]) {
      const id = (await (saved.reservePack as Any).apply(this, a)) as number;
      this.db.prepare('UPDATE packs SET token = NULL WHERE id = ?').run(id);
      return id;
    };
    P.stillBuilding = function () {
      return true;
    };
  } else if (flaw === 'switch-without-lease-recheck') {
    // tier switches a row to its cold copy without finding its lease still there
    P.publishCold = async function (this: BlobIndex, token: string, hash: Buffer, codec: number, stored: number) {
      this.db.prepare('UPDATE blobs SET tier = 1, pack = NULL, codec = ?, stored = ? WHERE hash = ? AND tier = 0').run(codec, stored, hash);
      this.leases.release(token);
      return 'moved';
    };
  } else if (flaw === 'gc-trusts-its-clock') {
    // gc deletes what its clock says no live lease protects, without revoking those leases first
    R.revoke = async () => 0;
    R.revokeKeys = async () => 0;
    R.deleteUnwanted = async function (this: { t: { view: BlobIndex['view'] } }, tier: number, keys: string[], del: (k: string) => Promise<void>) {
      const doomed = keys.filter((k) => !this.t.view.wanted(tier, k, 32));
      for (const k of doomed) await del(k);
      return { deleted: doomed, kept: 0 };
    };
  }
  return restore;
}

export async function runLifecycleModel(o: LifecycleOptions): Promise<LifecycleReport> {
  const rnd = prng(o.seed);
  const rep: LifecycleReport = { seed: o.seed, steps: 0, crashes: 0, ops: {}, acknowledged: 0, expunged: 0, violations: [], lost: [], check: null };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mailcas-lifecycle-'));
  const hot = new MemoryBackend();
  const cold = new MemoryBackend();
  const sched = new Scheduler();
  const pool = parts(o.seed);
  const restores = (o.flaws ?? []).map(patch);
  const acked = new Map<string, Buffer>();
  const maybe = new Set<string>(); // expunged by an expunge that did not answer (a crash): may or may not be there
  const expunged = new Set<string>();
  let serial = 0;
  let epoch = 0;
  let store: Store | null = null;
  let stopping = false;
  let running: Promise<void>[] = [];

  const open = async (): Promise<Store> => {
    const e = ++epoch;
    const s = await Store.open(dir, {
      backend: new StepBackend(hot, sched, e, 'hot'),
      coldBackend: new StepBackend(cold, sched, e, 'cold'),
      logger: silentLogger,
      workers: 0,
      dictionaryAfter: 0,
    });
    const worker = async (name: string, op: (s: Store) => Promise<void>): Promise<void> => {
      while (!stopping && !sched.dead.has(e)) {
        await new Promise((r) => setTimeout(r, 1)); // an op with no request to make (nothing to tier) must not starve the rest
        rep.ops[name] = (rep.ops[name] ?? 0) + 1;
        try {
          await op(s);
        } catch (err) {
          if (err instanceof Crashed || sched.dead.has(e)) return;
          // transient failures are the protocol working (a lease revoked, a busy moment); anything else is a finding
          const code = (err as { code?: string }).code;
          if (!['E_LEASE_LOST', 'E_BUSY', 'E_BACKEND', 'E_NOT_FOUND'].includes(code ?? '')) rep.violations.push(`${name}: ${(err as Error).message}`);
        }
      }
    };
    const ingest = async (s: Store) => {
      if (rnd() > 0.3) return void (await new Promise((r) => setTimeout(r, 5)));
      const n = ++serial;
      const atts = pool.filter(() => rnd() < 0.5);
      // now and then a large part of its own: a new object for tier to move, and for gc to race with
      if (rnd() < 0.3) atts.push(randomBytes(rnd, 270_000 + n));
      const m = message(n, atts.length ? atts : [pool[Math.floor(rnd() * pool.length)]]);
      const r = await s.ingest(m, { user: 'u' });
      if (!sched.dead.has(e)) acked.set(r.id, m);
    };
    const expunge = async (s: Store) => {
      const ids = [...acked.keys()].filter((id) => !expunged.has(id));
      // (now and then: most mail stays, so tier and repack have something to move)
      if (ids.length < 4 || rnd() > 0.1) return void (await new Promise((r) => setTimeout(r, 5)));
      const id = ids[Math.floor(rnd() * ids.length)];
      maybe.add(id);
      await s.expunge('u', [id]);
      if (!sched.dead.has(e)) {
        maybe.delete(id);
        expunged.add(id);
      }
    };
    const clocks = [0, 0, 2 * HOUR, -HOUR, 24 * HOUR];
    const gc = async (s: Store) => {
      const skew = clocks[Math.floor(rnd() * clocks.length)];
      await s.gc({ graceSeconds: rnd() < 0.5 ? 0 : 3600, now: () => Date.now() + skew });
    };
    running = [
      worker('ingest', ingest),
      worker('ingest', ingest),
      worker('expunge', expunge),
      worker('tier', (s) => s.tier({ olderThanMs: 0, limit: 8 }).then(() => undefined)),
      worker('gc', gc),
      worker('check --repair', (s) => s.check({ repair: true }).then(() => undefined)),
    ];
    return s;
  };

  // the invariant, on what is committed
  const reader = (): Database.Database => new Database(path.join(dir, 'meta.sqlite'), { readonly: true });
  const invariant = (where: string): void => {
    const db = reader();
    try {
      const rows = db.prepare('SELECT b.hash, b.tier, b.pack, p.name AS pack_name FROM blobs b LEFT JOIN packs p ON p.id = b.pack WHERE b.refs > 0').all() as { hash: Buffer; tier: number; pack: number | null; pack_name: string | null }[];
      const has = (b: MemoryBackend, k: string) => (b as unknown as { objects: Map<string, unknown> }).objects.has(k);
      for (const r of rows) {
        const k = r.hash.toString('hex');
        const ok = r.tier === 0 ? has(hot, k) : r.pack !== null ? r.pack_name !== null && has(cold, r.pack_name) : has(cold, k);
        if (!ok) rep.violations.push(`${where}: referenced blob ${k.slice(0, 12)} (tier ${r.tier}${r.pack !== null ? `, pack ${r.pack_name ?? `#${r.pack} not on record`}` : ''}) is gone`);
      }
      const ids = new Set((db.prepare("SELECT id FROM messages WHERE user = 'u'").all() as { id: number }[]).map((m) => String(m.id)));
      for (const id of acked.keys()) if (!expunged.has(id) && !maybe.has(id) && !ids.has(id)) rep.violations.push(`${where}: acknowledged message ${id} is gone`);
    } finally {
      db.close();
    }
  };

  try {
    store = await open();
    for (let step = 0; step < o.steps && !rep.violations.length; step++) {
      await sched.settle();
      if (rnd() < o.crashRate) {
        rep.crashes++;
        o.trace?.push(`-- crash (epoch ${epoch})`);
        sched.kill(epoch);
        store.db.close(); // what was not committed is rolled back, as after a power cut
        await Promise.allSettled(running);
        store = await open();
        continue;
      }
      if (!sched.parked.length) continue;
      const i = Math.floor(rnd() * sched.parked.length);
      const [p] = sched.parked.splice(i, 1);
      o.trace?.push(p.label);
      p.go();
      rep.steps++;
      await sched.settle();
      invariant(`step ${step} (${p.label})`);
    }
    // wind down: let everything through until the workers stop
    stopping = true;
    for (let i = 0; i < 100_000 && (sched.parked.length || (await Promise.race([Promise.allSettled(running).then(() => true), new Promise((r) => setTimeout(() => r(false), 5))])) === false); i++) {
      for (const p of sched.parked.splice(0)) p.go();
      await new Promise((r) => setTimeout(r, 1));
    }
    await Promise.allSettled(running);
    invariant('after the run');
    sched.kill(epoch);
    store.db.close();
    for (const r of restores.splice(0)) r();
    // the store as an operator finds it: opened on plain tiers, collected, repaired
    const s = await Store.open(dir, { backend: hot, coldBackend: cold, logger: silentLogger, workers: 0 });
    try {
      await s.gc({ graceSeconds: 0, now: () => Date.now() + 3 * HOUR });
      await s.check({ repair: true });
      const c = await s.check();
      if (!c.consistent) rep.check = JSON.stringify({ drift: c.drift.length, missingBlobs: c.missingBlobs, missingRows: c.missingRows, orphans: c.orphans.length, coldOrphans: c.coldOrphans.length, damaged: c.damagedMessages, corrupt: c.corruptBlobs });
      for (const [id, m] of acked) {
        if (expunged.has(id) || maybe.has(id)) continue;
        try {
          if (!(await s.fetchBuffer(id, { user: 'u' })).equals(m)) rep.lost.push(`${id}: different bytes`);
        } catch (e) {
          rep.lost.push(`${id}: ${(e as Error).message}`);
        }
      }
    } finally {
      await s.close();
    }
    rep.acknowledged = acked.size;
    rep.expunged = expunged.size;
    return rep;
  } finally {
    for (const r of restores) r();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
