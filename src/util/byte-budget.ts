/**
 * A budget of bytes shared by work in flight (FIFO): each piece of work
 * takes what it may hold in memory before it starts and gives it back when
 * it ends, so the total stays under the budget however many callers there
 * are. A piece larger than the whole budget runs alone.
 */
export class ByteBudget {
  private used = 0;
  private readonly waiting: { n: number; go: () => void }[] = [];

  constructor(readonly total: number) {}

  async run<T>(bytes: number, fn: () => Promise<T>): Promise<T> {
    const n = Math.min(Math.max(0, bytes), this.total);
    if (this.waiting.length || this.used + n > this.total) await new Promise<void>((go) => this.waiting.push({ n, go }));
    else this.used += n;
    try {
      return await fn();
    } finally {
      this.used -= n;
      this.wake();
    }
  }

  private wake(): void {
    while (this.waiting.length && this.used + this.waiting[0].n <= this.total) {
      const w = this.waiting.shift()!;
      this.used += w.n;
      w.go();
    }
  }

  get inUse(): number {
    return this.used;
  }
}
