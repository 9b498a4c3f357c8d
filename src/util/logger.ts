/** Structured log lines (JSON on stderr when MAILCAS_LOG is set, else only warnings). */
export interface Logger {
  info(event: string, data?: Record<string, unknown>): void;
  warn(event: string, data?: Record<string, unknown>): void;
}

export function defaultLogger(): Logger {
  const verbose = !!process.env.MAILCAS_LOG;
  const emit = (level: string, event: string, data?: Record<string, unknown>): void => {
    process.stderr.write(JSON.stringify({ t: new Date().toISOString(), level, event, ...data }) + '\n');
  };
  return {
    info: (e, d) => {
      if (verbose) emit('info', e, d);
    },
    warn: (e, d) => emit('warn', e, d),
  };
}

export const silentLogger: Logger = { info() {}, warn() {} };
