import type { Store } from '../store.js';
import type { MessageAccess } from '../types.js';

/**
 * Answers to RFC822.SIZE, INTERNALDATE, ENVELOPE, BODY, BODYSTRUCTURE and header sections (HEADER,
 * HEADER.FIELDS, n.MIME; up to 16 KiB) by message id, shared by the
 * sessions of one server: a message never changes once stored, so an answer
 * stays right for as long as it is kept (as Dovecot keeps them in its cache
 * file). Bounded by entries, oldest dropped first.
 */
export class AnswerCache {
  /** Answers in IMAP's wire form (latin1), ready to send. */
  private readonly map = new Map<string, string>();
  private chars = 0;
  /** Opened messages (layout and header blocks decoded), fewer: they are larger. */
  private readonly opened = new Map<string, MessageAccess>();
  constructor(
    private readonly max = 100_000,
    private readonly maxChars = 64 * 1024 * 1024,
    private readonly maxOpened = 512,
  ) {}
  access(store: Store, user: string, id: string): MessageAccess {
    const k = `${user} ${id}`;
    const hit = this.opened.get(k);
    if (hit) {
      this.opened.delete(k); // most recently used last
      this.opened.set(k, hit);
      return hit;
    }
    const m = store.access(id, { user });
    if (this.opened.size >= this.maxOpened) this.opened.delete(this.opened.keys().next().value!);
    this.opened.set(k, m);
    return m;
  }
  get(id: string, item: string): string | undefined {
    return this.map.get(`${id} ${item}`);
  }
  set(id: string, item: string, v: string): void {
    const k = `${id} ${item}`;
    const old = this.map.get(k);
    if (old !== undefined) {
      this.map.delete(k);
      this.chars -= old.length;
    }
    while (this.map.size && (this.map.size >= this.max || this.chars + v.length > this.maxChars)) {
      const [ok, ov] = this.map.entries().next().value!;
      this.map.delete(ok);
      this.chars -= ov.length;
    }
    this.map.set(k, v);
    this.chars += v.length;
  }
}
