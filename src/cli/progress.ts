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
          ? `${label} [{bar}] {percentage}% | {mb}/{totalmb} MB | {msgs} msgs | {rate} MB/s | ETA {eta_formatted}`
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
  const fields = (): Record<string, string | number> => ({
    mb: (value / 1e6).toFixed(1),
    totalmb: (total / 1e6).toFixed(1),
    msgs,
    rate: (value / 1e6 / Math.max(0.001, (Date.now() - t0) / 1000)).toFixed(1),
  });
  bar.start(Math.max(1, total), 0, fields());
  return {
    tick(n, m = 1) {
      value += n;
      msgs += m;
      bar.update(value, fields());
    },
    stop() {
      bar.stop();
    },
  };
}
