import { createRequire } from 'node:module';
import type cliProgressModule from 'cli-progress';

/** cli-progress, loaded when a bar is drawn (never for scripts, pipes, or the LDA an MTA starts per message). */
const loadCliProgress = (): typeof cliProgressModule => createRequire(import.meta.url)('cli-progress') as typeof cliProgressModule;

/** A progress bar on stderr when it is a terminal; silent otherwise (scripts, CI, pipes). */
export interface Progress {
  tick(n: number, messages?: number): void;
  stop(): void;
}

/** A bar is drawn only on a terminal (then the work is sized up front; scripts skip that walk). */
export function progressWanted(): boolean {
  return !!process.stderr.isTTY && !process.env.MAILCAS_NO_PROGRESS;
}

export function progressBar(label: string, total: number, unit: 'bytes' | 'items' = 'bytes'): Progress {
  if (!progressWanted()) return { tick() {}, stop() {} };
  const cliProgress = loadCliProgress();
  const bar = new cliProgress.SingleBar(
    {
      stream: process.stderr,
      format:
        unit === 'bytes'
          ? `${label} [{bar}] {percentage}% | {mb}/{totalmb} MB | {msgs} msgs | {rate} MB/s | ETA {eta}`
          : `${label} [{bar}] {percentage}% | {value}/{total} | ETA {eta_formatted}`,
      hideCursor: true,
      etaBuffer: 50,
      fps: 5,
    },
    cliProgress.Presets.shades_classic,
  );
  const t0 = Date.now();
  let value = 0;
  let msgs = 0;
  const rate = new SmoothRate();
  const fields = (): Record<string, string | number> => ({
    mb: (value / 1e6).toFixed(1),
    totalmb: (total / 1e6).toFixed(1),
    msgs,
    rate: (value / 1e6 / Math.max(0.001, (Date.now() - t0) / 1000)).toFixed(1),
    eta: unit === 'bytes' ? rate.eta(total - value) : '',
  });
  bar.start(Math.max(1, total), 0, fields());
  return {
    tick(n, m = 1) {
      value += n;
      msgs += m;
      rate.add(n);
      bar.update(value, fields());
    },
    stop() {
      bar.stop();
    },
  };
}

/**
 * Bytes per second smoothed over time (an exponential average with a time
 * constant of 10 s, sampled at most twice a second): one large message or a
 * run of small ones does not swing the estimate, as a per-message average does.
 */
export class SmoothRate {
  private bytes = 0;
  private rate = 0;
  private last: number;
  private readonly t0: number;
  constructor(
    private readonly now: () => number = Date.now,
    private readonly tauMs = 10_000,
  ) {
    this.t0 = this.last = now();
  }

  add(n: number): void {
    this.bytes += n;
    const t = this.now();
    const dt = t - this.last;
    if (dt < 500) return;
    const instant = (this.bytes * 1000) / dt;
    // within the first time constant the estimate is the average so far (the first
    // large message does not set it for long); later it moves towards the last samples
    const a = Math.max(1 - Math.exp(-dt / this.tauMs), dt / (t - this.t0));
    this.rate += a * (instant - this.rate);
    this.bytes = 0;
    this.last = t;
  }

  /** The time left at the smoothed rate, as 4m10s (or "..." until the rate is known). */
  eta(remaining: number): string {
    if (this.rate <= 0 || this.now() - this.t0 < 1000) return '...';
    const s = Math.max(0, Math.round(remaining / this.rate));
    if (s >= 3600) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
    if (s >= 60) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
    return `${s}s`;
  }
}
