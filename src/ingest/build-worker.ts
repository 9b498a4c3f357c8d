// A worker thread that prepares messages (split, canonicalise, verify): the CPU-heavy part of
// an ingest, off the main thread's event loop. It opens the spool where the main thread left
// it, and hands back plain data; blob bytes over one chunk stay in temp files it gives away.
import { parentPort } from 'node:worker_threads';
import { Spool } from '../split/spool.js';
import { prepareMessage, type Prepared } from './prepare.js';
import { errorToWire, toWire, transferables, type PrepareJob, type PrepareReply } from './prepared-wire.js';

const buf = (u: Uint8Array): Buffer => Buffer.from(u.buffer, u.byteOffset, u.byteLength);

parentPort!.on('message', async (job: PrepareJob) => {
  let reply: PrepareReply;
  let prepared: Prepared | null = null;
  let spool: Spool | null = null;
  try {
    const origin = job.origin.kind === 'memory' ? { kind: 'memory' as const, buffer: buf(job.origin.buffer) } : job.origin;
    spool = Spool.adopt(origin, buf(job.hash));
    const opts = { ...job.opts, domainKey: job.opts.domainKey ? buf(job.opts.domainKey) : null, dict: job.opts.dict ? { id: job.opts.dict.id, data: buf(job.opts.dict.data) } : null };
    prepared = await prepareMessage(spool, opts);
    reply = { id: job.id, ok: true, prepared: toWire(prepared) };
  } catch (e) {
    reply = { id: job.id, ok: false, error: errorToWire(e) };
  } finally {
    spool?.dispose();
  }
  try {
    // the blob bytes are moved, not copied: this thread is done with them
    parentPort!.postMessage(reply, reply.ok ? transferables(reply.prepared) : []);
  } catch (e) {
    prepared?.dispose(); // could not hand it over: nobody else will remove its temp files
    parentPort!.postMessage({ id: job.id, ok: false, error: errorToWire(e) } satisfies PrepareReply);
  }
});
