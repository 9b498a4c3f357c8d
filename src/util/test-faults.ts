import { FaultBackend } from '../backend/fault-backend.js';
import type { BlobBackend } from '../backend/backend.js';

/**
 * Faults the reliability harnesses inject into whole CLI processes, as
 * crash-points.ts does for kills. Unset (always, outside those tests) they
 * cost one lookup at start.
 *   MAILCAS_LATE_PUT_MS=N[:P]    the cold tier's PUTs answer N ms after the object landed (with probability P, default 1):
 *                                a slow bucket, a paused process or VM
 *   MAILCAS_GC_CLOCK_AHEAD_MS=N  gc judges ages and lease expiry by a clock N ms ahead (a skewed host)
 */
export function withLatePuts(b: BlobBackend | null): BlobBackend | null {
  const spec = process.env.MAILCAS_LATE_PUT_MS;
  if (!b || !spec) return b;
  const [ms, p] = spec.split(':').map(Number);
  return new FaultBackend(b, {
    afterPut: async () => {
      if (Math.random() < (Number.isFinite(p) ? p : 1)) await new Promise((r) => setTimeout(r, ms));
    },
  });
}

export function gcClock(): (() => number) | undefined {
  const ahead = Number(process.env.MAILCAS_GC_CLOCK_AHEAD_MS ?? 0);
  return ahead ? () => Date.now() + ahead : undefined;
}
