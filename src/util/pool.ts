/** Runs `fn` over `items` with at most `limit` in flight; resolves when all are done. */
export async function forEachLimit<T>(items: Iterable<T>, limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  const it = items[Symbol.iterator]();
  let failed: unknown = null;
  const worker = async (): Promise<void> => {
    for (;;) {
      if (failed) return;
      const n = it.next();
      if (n.done) return;
      try {
        await fn(n.value);
      } catch (e) {
        failed ??= e;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, limit) }, worker));
  if (failed) throw failed;
}
