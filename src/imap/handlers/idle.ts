import { IMAP_IDLE_POLL_MS } from '../../limits.js';
import type { SessionState } from '../session-state.js';
import { refresh } from './mailboxes.js';

// IDLE (RFC 2177): changes of the selected mailbox, from any session or process, announced as they
// commit (the mailbox's modseq is polled: one indexed row read per poll), until the client sends DONE

export class Idle {
  private timer: NodeJS.Timeout | null = null;
  private polling: Promise<void> = Promise.resolve();
  constructor(
    private readonly s: SessionState,
    readonly tag: string,
  ) {}

  async start(): Promise<void> {
    await this.s.io.write('+ idling\r\n');
    await this.s.io.flush();
    this.timer = setInterval(() => {
      this.polling = this.polling.then(() => this.poll());
    }, IMAP_IDLE_POLL_MS);
  }

  private async poll(): Promise<void> {
    if (!this.timer || this.s.gone || !this.s.selected) return;
    try {
      await refresh(this.s);
      await this.s.io.flush();
    } catch (e) {
      this.s.opts.log.warn('imap-idle-poll-failed', { user: this.s.user, error: (e as Error).message });
    }
  }

  /** The client's line during IDLE: DONE ends it (after the poll in flight). */
  async end(line: string): Promise<void> {
    this.stop();
    await this.polling;
    if (line.replace(/\r?\n$/, '').toUpperCase() === 'DONE') await this.s.io.write(`${this.tag} OK IDLE terminated\r\n`);
    else await this.s.io.write(`${this.tag} BAD expected DONE\r\n`);
    await this.s.io.flush();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
