/**
 * A model of the scale-out protocol (docs/SCALE-OUT.md) checked by
 * randomized interleaving: nodes that share one bucket ingest messages that
 * reference the same content, expunge them, run their local gc and run the
 * bucket collector, all at once, one bucket operation at a time in an order a
 * seeded scheduler picks, and crash at any step (a crash loses what a process
 * held in memory; its SQLite and the bucket stay). After every step the
 * invariant is checked: every blob instance a committed message references
 * is in the bucket. At the end, with everything expunged and collected, the
 * bucket must be empty (no leak).
 *
 * The bucket is linearizable: each PUT, HEAD, LIST (of a prefix) and DELETE
 * takes effect at one instant (what S3 and Ceph RGW promise since 2020: strong
 * read-after-write and list-after-write consistency). Mutations of the
 * protocol (`flaws`) must be caught: they show the check has teeth.
 */
import { prng } from './crash-harness.js';

export type Flaw = 'no-recheck-after-tombstone' | 'no-head-object' | 'marker-after-check' | 'no-local-lease' | 'tombstone-deleted-first';

export interface ModelOptions {
  seed: number;
  nodes: number;
  /** Distinct contents (blob keys) messages draw from: few, so nodes collide often. */
  contents: number;
  steps: number;
  crashRate: number;
  flaws?: Flaw[];
  /** Filled with every bucket operation and local step, for reading a failing seed. */
  trace?: string[];
}

export interface ModelReport {
  seed: number;
  steps: number;
  ingests: number;
  expunges: number;
  collections: number;
  deletedInstances: number;
  crashes: number;
  violations: string[];
  leaked: string[];
  /** Instances uploaded beyond one per content (a race closed an instance and forced a new copy). */
  extraCopies: number;
}

/** The bucket: keys to presence (contents do not matter to the protocol). */
class Bucket {
  readonly keys = new Set<string>();
  who = '';
  constructor(private readonly trace?: string[]) {}
  put(k: string): void {
    this.trace?.push(`${this.who} PUT ${k}`);
    this.keys.add(k);
  }
  head(k: string): boolean {
    this.trace?.push(`${this.who} HEAD ${k} -> ${this.keys.has(k)}`);
    return this.keys.has(k);
  }
  list(prefix: string): string[] {
    const out = [...this.keys].filter((k) => k.startsWith(prefix)).sort();
    this.trace?.push(`${this.who} LIST ${prefix} -> ${out.join(' ')}`);
    return out;
  }
  del(k: string): void {
    this.trace?.push(`${this.who} DELETE ${k}`);
    this.keys.delete(k);
  }
}

/** Leases of one node: each ingest holds its own (a count per blob instance), as mailcas's lease rows carry the ingest's token. */
class Leases {
  private readonly m = new Map<string, number>();
  add(k: string): void {
    this.m.set(k, (this.m.get(k) ?? 0) + 1);
  }
  delete(k: string): void {
    const v = (this.m.get(k) ?? 0) - 1;
    if (v > 0) this.m.set(k, v);
    else this.m.delete(k);
  }
  has(k: string): boolean {
    return this.m.has(k);
  }
  keys(): string[] {
    return [...this.m.keys()];
  }
  clear(): void {
    this.m.clear();
  }
}

/** A node's SQLite: committed messages and per-instance reference counts (durable across crashes). */
interface NodeDb {
  messages: Map<number, { key: string; inst: string }>;
  refs: Map<string, number>; // "key@inst" -> count
  /** Local leases: an ingest in flight holds "key@inst" (durable, written before its marker; released at commit or by recovery after a crash). */
  leases: Leases;
  /** Markers to delete, recorded in the transaction that dropped the row (a crash before the DELETE: recovery does it). */
  pendingDeletes: Set<string>;
}

type Step = Generator<void, void, void>;

export function runModel(o: ModelOptions): ModelReport {
  const r = prng(o.seed);
  const flaw = new Set(o.flaws ?? []);
  const bucket = new Bucket(o.trace);
  const dbs: NodeDb[] = Array.from({ length: o.nodes }, () => ({ messages: new Map(), refs: new Map(), leases: new Leases(), pendingDeletes: new Set() }));
  const rep: ModelReport = { seed: o.seed, steps: 0, ingests: 0, expunges: 0, collections: 0, deletedInstances: 0, crashes: 0, violations: [], leaked: [], extraCopies: 0 };
  let nextMsg = 1;
  let nextInst = 1;
  const uploads = new Map<string, number>();

  const marker = (key: string, inst: string, node: number): string => `r/${key}@${inst}/n${node}`;

  /** Ingest on node n of a message with content `key`: find or make a usable instance, reference it, commit. */
  function* ingest(n: number, key: string): Step {
    const db = dbs[n];
    // the fast path: this node already references an instance of this content (so its marker is there):
    // reference it again with no bucket request, if the count is still above 0 at commit
    const local = [...db.refs].find(([ri, c]) => c > 0 && ri.startsWith(`${key}@`));
    if (local) {
      yield;
      if ((db.refs.get(local[0]) ?? 0) > 0) {
        db.messages.set(nextMsg++, { key, inst: local[0].slice(key.length + 1) });
        db.refs.set(local[0], db.refs.get(local[0])! + 1);
        rep.ingests++;
        return;
      }
    }
    const candidates = bucket.list(`b/${key}@`).map((k) => k.slice(k.indexOf('@') + 1));
    yield;
    const tryInstance = function* (inst: string): Generator<void, boolean, void> {
      const ri = `${key}@${inst}`;
      if (!flaw.has('no-local-lease')) db.leases.add(ri); // local lease first: local gc leaves the marker alone while this ingest runs
      if (flaw.has('marker-after-check')) {
        const dead = bucket.head(`t/${ri}`);
        yield;
        bucket.put(marker(key, inst, n));
        yield;
        if (dead) return false;
      } else {
        bucket.put(marker(key, inst, n));
        yield;
        if (bucket.head(`t/${ri}`)) return false; // closed to new references
        yield;
      }
      if (!flaw.has('no-head-object')) {
        if (!bucket.head(`b/${ri}`)) return false; // already collected (its tombstone may be gone too)
        yield;
      }
      return true;
    };
    let chosen: string | null = null;
    for (const inst of candidates) {
      if (yield* tryInstance(inst)) {
        chosen = inst;
        break;
      }
      dropUnusedMarker(n, key, inst);
      yield;
    }
    if (!chosen) {
      const inst = `i${nextInst++}`;
      bucket.put(`b/${key}@${inst}`); // the bytes (conditional create: a fresh name)
      uploads.set(key, (uploads.get(key) ?? 0) + 1);
      yield;
      if (!(yield* tryInstance(inst))) {
        // a collector closed it before our marker landed: leave it to the collector; try once more from the start
        dropUnusedMarker(n, key, inst);
        return;
      }
      chosen = inst;
    }
    // commit: message row and count in one local transaction; then the lease goes
    const ri = `${key}@${chosen}`;
    const id = nextMsg++;
    db.messages.set(id, { key, inst: chosen });
    db.refs.set(ri, (db.refs.get(ri) ?? 0) + 1);
    db.leases.delete(ri);
    rep.ingests++;
  }

  /** A marker this node wrote but does not need (no committed reference, no lease): removed. */
  function dropUnusedMarker(n: number, key: string, inst: string): void {
    const db = dbs[n];
    const ri = `${key}@${inst}`;
    db.leases.delete(ri);
    if ((db.refs.get(ri) ?? 0) === 0 && !db.leases.has(ri)) bucket.del(marker(key, inst, n));
  }

  function* expunge(n: number): Step {
    const db = dbs[n];
    const ids = [...db.messages.keys()];
    if (!ids.length) return;
    const id = ids[Math.floor(r() * ids.length)];
    const m = db.messages.get(id)!;
    db.messages.delete(id);
    const ri = `${m.key}@${m.inst}`;
    db.refs.set(ri, db.refs.get(ri)! - 1);
    rep.expunges++;
    yield;
  }

  /** Local gc: an instance this node no longer references (and no ingest holds) loses its marker, then its row. */
  function* localGc(n: number): Step {
    const db = dbs[n];
    for (const [ri, count] of [...db.refs]) {
      if (count > 0 || db.leases.has(ri)) continue;
      const [key, inst] = ri.split('@');
      // one local transaction: the count is still 0 and no lease holds it, so the row goes and the marker's
      // deletion is recorded; then the DELETE; a crash between the two: recovery does the DELETE
      if ((db.refs.get(ri) ?? 0) > 0 || db.leases.has(ri)) continue;
      db.refs.delete(ri);
      db.pendingDeletes.add(ri);
      yield;
      // (an ingest on this node may have leased it again meanwhile: then its marker stays)
      if (!db.leases.has(ri) && !(db.refs.get(ri) ?? 0)) bucket.del(marker(key, inst, n));
      db.pendingDeletes.delete(ri);
      yield;
    }
  }

  /** The collector (any node): instances with no marker are closed (tombstone), checked again, then deleted. */
  function* collect(): Step {
    const instances = bucket.list('b/').map((k) => k.slice(2));
    yield;
    for (const ri of instances) {
      if (bucket.list(`r/${ri}/`).length) continue;
      yield;
      bucket.put(`t/${ri}`);
      yield;
      if (!flaw.has('no-recheck-after-tombstone')) {
        if (bucket.list(`r/${ri}/`).length) continue; // referenced after all: stays, closed to new references
        yield;
      }
      if (flaw.has('tombstone-deleted-first')) {
        bucket.del(`t/${ri}`);
        yield;
        bucket.del(`b/${ri}`);
      } else {
        bucket.del(`b/${ri}`);
        yield;
        bucket.del(`t/${ri}`);
      }
      rep.deletedInstances++;
      yield;
    }
    // tombstones whose object is gone (a collector stopped between the two deletions): removed
    for (const t of bucket.list('t/')) {
      if (!bucket.head(`b/${t.slice(2)}`)) bucket.del(t);
      yield;
    }
    rep.collections++;
  }

  /**
   * After a crash: the dead ingest's leases (durable) are released, and the markers they and any pending
   * deletion name are removed where this node holds no reference. (In mailcas a lease of a dead process
   * expires; the model releases it at restart.)
   */
  function recover(n: number): void {
    const db = dbs[n];
    for (const ri of new Set([...db.leases.keys(), ...db.pendingDeletes])) {
      if (!(db.refs.get(ri) ?? 0)) {
        const [key, inst] = ri.split('@');
        bucket.del(marker(key, inst, n));
      }
    }
    db.leases.clear();
    db.pendingDeletes.clear();
  }

  const check = (when: string): void => {
    dbs.forEach((db, n) =>
      db.messages.forEach((m, id) => {
        if (!bucket.keys.has(`b/${m.key}@${m.inst}`)) rep.violations.push(`${when}: node ${n} message ${id} references ${m.key}@${m.inst}, which was deleted`);
      }),
    );
  };

  // processes: each node runs an ingest, an expunge and a gc worker at once (on one database, as an LMTP server,
  // an expunge command and gc do); the collector runs apart. Process p: node p % nodes, worker p / nodes.
  const W = 3;
  const running: (Step | null)[] = Array.from({ length: o.nodes * W + 1 }, () => null);
  const collector = o.nodes * W;
  const start = (p: number): Step => {
    if (p === collector) return collect();
    const n = p % o.nodes;
    const w = Math.floor(p / o.nodes);
    if (w === 0) return ingest(n, `k${Math.floor(r() * o.contents)}`);
    if (w === 1) return r() < 0.7 ? expunge(n) : ingest(n, `k${Math.floor(r() * o.contents)}`);
    return localGc(n);
  };
  for (let s = 0; s < o.steps && !rep.violations.length; s++) {
    rep.steps++;
    const p = Math.floor(r() * running.length);
    if (r() < o.crashRate) {
      // a node dies (all its workers): what they were doing is lost; its database and the bucket remain
      // (the collector keeps nothing and just stops)
      if (p === collector) running[p] = null;
      else {
        const n = p % o.nodes;
        for (let w = 0; w < W; w++) running[w * o.nodes + n] = null;
        bucket.who = `n${n} recovery`;
        recover(n);
      }
      rep.crashes++;
      o.trace?.push(`CRASH ${p === collector ? 'collector' : `node ${p % o.nodes}`}`);
      check(`after crash of ${p === collector ? 'the collector' : `node ${p % o.nodes}`} (step ${s})`);
      continue;
    }
    bucket.who = p === collector ? 'C' : `n${p % o.nodes}w${Math.floor(p / o.nodes)}`;
    running[p] ??= start(p);
    if (running[p]!.next().done) running[p] = null;
    check(`step ${s}`);
  }
  // drain: finish what runs, expunge everything, local gc everywhere, collect until nothing changes
  for (let p = 0; p < running.length; p++) while (running[p] && !running[p]!.next().done);
  for (let n = 0; n < o.nodes; n++) {
    for (const id of [...dbs[n].messages.keys()]) {
      const it = expunge(n);
      while (!it.next().done);
      void id;
    }
    const g = localGc(n);
    while (!g.next().done);
    recover(n);
  }
  for (let k = 0; k < 3; k++) {
    const c = collect();
    while (!c.next().done);
  }
  check('end');
  rep.leaked = bucket.list('');
  for (const v of uploads.values()) rep.extraCopies += Math.max(0, v - 1);
  return rep;
}
