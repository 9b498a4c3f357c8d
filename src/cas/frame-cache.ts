/**
 * Decoded cold frames, kept for a while: the blobs of one frame arrived
 * together and are read together (a mailbox exported or fetched in order),
 * so the frame is fetched and decoded once for all of them instead of once
 * per blob. Pack objects are immutable (a repack writes a new one under a new
 * name), so an entry never goes stale; it is dropped when a blob cut from it
 * fails its hash check, and the least recently used go first past the byte
 * bound. Loads of the same frame at the same time share one request.
 */
export class FrameCache {
  private readonly frames = new Map<string, Buffer>();
  private readonly loading = new Map<string, Promise<Buffer>>();
  private bytes = 0;

  constructor(private readonly maxBytes: number) {}

  async get(key: string, load: () => Promise<Buffer>): Promise<Buffer> {
    const hit = this.frames.get(key);
    if (hit) {
      this.frames.delete(key); // most recently used last
      this.frames.set(key, hit);
      return hit;
    }
    let p = this.loading.get(key);
    if (!p) {
      p = load().then(
        (b) => {
          this.loading.delete(key);
          this.put(key, b);
          return b;
        },
        (e) => {
          this.loading.delete(key);
          throw e;
        },
      );
      this.loading.set(key, p);
    }
    return p;
  }

  drop(key: string): void {
    const b = this.frames.get(key);
    if (!b) return;
    this.frames.delete(key);
    this.bytes -= b.length;
  }

  private put(key: string, b: Buffer): void {
    if (b.length > this.maxBytes) return;
    this.drop(key);
    this.frames.set(key, b);
    this.bytes += b.length;
    for (const [k, v] of this.frames) {
      if (this.bytes <= this.maxBytes) break;
      this.frames.delete(k);
      this.bytes -= v.length;
    }
  }
}
