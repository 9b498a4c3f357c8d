/** One JSON line on stderr: what the long-running commands log. */
export function jsonLine(line: Record<string, unknown>): void {
  process.stderr.write(JSON.stringify({ t: new Date().toISOString(), ...line }) + '\n');
}

/** A long-running command: waits for SIGTERM or SIGINT, then closes (its services, then the store), logging both steps. */
export async function runUntilSignal(name: string, close: () => Promise<void>): Promise<void> {
  await new Promise<void>((resolve) => {
    const stop = (sig: string): void => {
      jsonLine({ event: `${name}-stopping`, signal: sig });
      void close().then(resolve);
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  jsonLine({ event: `${name}-stopped` });
}
