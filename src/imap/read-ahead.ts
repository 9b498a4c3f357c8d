/**
 * What FETCH may hold in memory ahead of the socket: message bytes read for
 * messages not yet sent. One budget for the whole server, and a share for
 * each session; a read that does not fit is not buffered ahead (it streams
 * when its turn comes), so a client that asks for much and reads nothing
 * pins at most its share, and all of them together at most the whole.
 */
export class ReadAhead {
  used = 0;
  constructor(readonly max: number) {}

  forSession(max: number): SessionReadAhead {
    return new SessionReadAhead(this, max);
  }
}

export class SessionReadAhead {
  used = 0;
  constructor(
    private readonly all: ReadAhead,
    readonly max: number,
  ) {}

  /** Takes n bytes if they fit in this session's share and in the whole; false (nothing taken) otherwise. */
  tryTake(n: number): boolean {
    if (this.used + n > this.max || this.all.used + n > this.all.max) return false;
    this.used += n;
    this.all.used += n;
    return true;
  }

  give(n: number): void {
    const k = Math.min(n, this.used);
    this.used -= k;
    this.all.used -= k;
  }

  /** Everything this session still holds goes back (the session ended). */
  giveAll(): void {
    this.give(this.used);
  }
}
