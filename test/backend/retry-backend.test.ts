import { MemoryBackend } from '../../src/backend/memory-backend.js';
import { FaultBackend } from '../../src/backend/fault-backend.js';
import { RetryBackend } from '../../src/backend/retry-backend.js';
import { backendConformance } from './conformance.js';

// The retry wrapper passes the one suite over a backend that fails a third of its calls transiently:
// every injected failure is retried away, and every hostile case still fails as it must.
backendConformance('retry(fault 30%)', async () => ({
  backend: new RetryBackend(new FaultBackend(new MemoryBackend(), { failRate: 0.3 }), { baseDelayMs: 1, maxDelayMs: 2, deadlineMs: 10_000 }),
}));
