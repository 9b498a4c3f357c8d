import { FaultBackend } from './fault-backend.js';
import type { BlobBackend } from './backend.js';

/**
 * For the reliability harnesses, like util/crash-points.ts for kills:
 * MAILCAS_LATE_PUT_MS=N[:P] makes the cold tier's PUTs answer N ms after the
 * object landed (with probability P, default 1): a slow bucket, a paused
 * process or VM. Unset (always, outside those tests) the backend is returned
 * as it is.
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
