/**
 * For the reliability harnesses, like crash-points.ts for kills: with
 * MAILCAS_GC_CLOCK_AHEAD_MS=N gc judges ages and lease expiry by a clock N ms
 * ahead (a skewed host; its safety must not depend on it). Unset (always,
 * outside those tests): gc's own clock. (Late cold PUTs: backend/late-puts.ts.)
 */
export function gcClock(): (() => number) | undefined {
  const ahead = Number(process.env.MAILCAS_GC_CLOCK_AHEAD_MS ?? 0);
  return ahead ? () => Date.now() + ahead : undefined;
}
