import { Worker } from 'node:worker_threads';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { MailcasError } from '../errors.js';
import type { Spool } from '../split/spool.js';
import { prepareMessage, type PrepareOptions, type Prepared } from './prepare.js';
import { errorFromWire, exact, fromWire, type PrepareJob, type PrepareReply } from './prepared-wire.js';

interface Pending {
  resolve: (p: Prepared) => void;
  reject: (e: unknown) => void;
  /** The same job on the calling thread (when workers turn out not to start at all). */
  local: () => Promise<Prepared>;
}

interface Slot {
  worker: Worker;
  pending: Map<number, Pending>;
  /** Has answered at least once (a worker that never did may lack what it needs to start). */
  proven: boolean;
}

/**
 * Worker threads that prepare messages, started on first use. A job goes
 * to the worker with the fewest jobs in hand. A worker that dies fails its
 * jobs (E_INTERNAL) and is replaced; when workers cannot start at all (a
 * runtime without the loader the sources need), messages are prepared on
 * the calling thread instead.
 */
export class BuildPool {
  private slots: Slot[] = [];
  private nextId = 1;
  private broken = false;
  private closed = false;

  constructor(private readonly size: number) {}

  async prepare(spool: Spool, opts: PrepareOptions): Promise<Prepared> {
    if (this.broken || this.closed) return prepareMessage(spool, opts);
    const slot = this.pick();
    if (!slot) return prepareMessage(spool, opts);
    const id = this.nextId++;
    const origin = spool.origin.kind === 'memory' ? { kind: 'memory' as const, buffer: exact(spool.origin.buffer) as Buffer } : spool.origin;
    const job: PrepareJob = { id, origin, hash: spool.hash, opts };
    return new Promise<Prepared>((resolve, reject) => {
      slot.pending.set(id, { resolve, reject, local: () => prepareMessage(spool, opts) });
      slot.worker.postMessage(job);
    });
  }

  private pick(): Slot | null {
    while (this.slots.length < this.size) {
      const s = this.start();
      if (!s) break;
      this.slots.push(s);
      if (s.pending.size === 0) break; // start one at a time: an idle new worker takes this job
    }
    if (!this.slots.length) return null;
    return this.slots.reduce((a, b) => (b.pending.size < a.pending.size ? b : a));
  }

  private start(): Slot | null {
    let worker: Worker;
    try {
      worker = newBuildWorker();
    } catch {
      this.broken = true;
      return null;
    }
    const slot: Slot = { worker, pending: new Map(), proven: false };
    worker.unref();
    worker.on('message', (r: PrepareReply) => {
      slot.proven = true;
      const p = slot.pending.get(r.id);
      if (!p) return;
      slot.pending.delete(r.id);
      if (r.ok) p.resolve(fromWire(r.prepared));
      else p.reject(errorFromWire(r.error));
    });
    const fail = (why: string): void => {
      this.slots = this.slots.filter((s) => s !== slot);
      // a worker that never answered cannot start here: prepare on this thread from now on
      if (!slot.proven) this.broken = true;
      for (const p of slot.pending.values()) {
        if (!slot.proven) p.local().then(p.resolve, p.reject);
        else p.reject(new MailcasError('E_INTERNAL', `message preparation worker ${why}`, { transient: true }));
      }
      slot.pending.clear();
    };
    worker.on('error', (e) => fail(`failed: ${e.message}`));
    worker.on('exit', (code) => {
      if (!this.closed) fail(`exited (${code})`);
    });
    return slot;
  }

  async close(): Promise<void> {
    this.closed = true;
    const slots = this.slots;
    this.slots = [];
    await Promise.all(slots.map((s) => s.worker.terminate()));
  }
}

/**
 * The built worker (dist/ingest/build-worker.js); when running from the
 * TypeScript sources (tests, tsx), a worker that registers tsx's loader
 * first (Node 20 does not pass --import loaders on to workers).
 */
function newBuildWorker(): Worker {
  if (!import.meta.url.endsWith('.ts')) return new Worker(new URL('./build-worker.js', import.meta.url));
  const api = pathToFileURL(createRequire(import.meta.url).resolve('tsx/esm/api')).href;
  const entry = new URL('./build-worker.ts', import.meta.url).href;
  return new Worker(`import(${JSON.stringify(api)}).then((m) => { (m.register ?? m.default.register)(); return import(${JSON.stringify(entry)}); })`, { eval: true });
}
