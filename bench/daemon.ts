import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';

/**
 * Starts a server under test the way a daemon runs: in a session of its own
 * (setsid), as Dovecot puts itself when it starts. Linux's scheduler groups
 * the tasks of a session (autogroup): a server left in the bench's session
 * would share one group's CPU with the clients the bench starts, while the
 * daemonised peer it is compared with gets a group to itself. Measured on
 * this 2-core VM (3,000 header FETCHes one at a time, seven alternating
 * pairs): p99 2.0-3.8 ms in the bench's session, 1.2-2.9 ms in its own.
 * Killed when the bench exits, whatever happens to it.
 */
export function spawnDaemon(cmd: string, args: string[], opts: SpawnOptions = {}): ChildProcess {
  const p = spawn(cmd, args, { ...opts, detached: true });
  const kill = (): void => {
    if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  };
  process.once('exit', kill);
  p.once('exit', () => process.removeListener('exit', kill));
  return p;
}

/** Waits for a server's JSON log line `{"event": EVENT, "on": ADDRESS}` on its stderr; answers the address it listens on. */
export async function waitForListening(proc: ChildProcess, event: string): Promise<string> {
  let log = '';
  proc.stderr!.on('data', (d) => (log += d));
  for (let i = 0; i < 400 && !log.includes(event); i++) await new Promise((r) => setTimeout(r, 25));
  const on = new RegExp(`"event":"${event}","on":"([^"]+)"`).exec(log)?.[1];
  if (!on) throw new Error(`${event} not seen: ${log}`);
  return on;
}
