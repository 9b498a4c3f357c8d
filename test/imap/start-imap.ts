import { spawn, type ChildProcess } from 'node:child_process';
import { BIN } from '../helpers.js';

/** `mailcas imap` on a free loopback port, as its own process. */
export async function startImap(store: string, passwd: string, extra: string[] = []): Promise<{ proc: ChildProcess; port: number }> {
  const proc = spawn(process.execPath, [BIN, '--store', store, 'imap', '--listen', '127.0.0.1:0', '--passwd', passwd, ...extra], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  proc.stderr!.on('data', (d) => (log += d));
  for (let i = 0; i < 200 && !log.includes('imap-listening'); i++) await new Promise((r) => setTimeout(r, 50));
  const on = /"on":"[^"]*:(\d+)"/.exec(log)?.[1];
  if (!on) throw new Error(`imap did not start: ${log}`);
  return { proc, port: Number(on) };
}

export async function stop(proc: ChildProcess): Promise<number | null> {
  if (proc.exitCode !== null) return proc.exitCode;
  proc.kill('SIGTERM');
  return new Promise((r) => proc.once('exit', (c) => r(c)));
}
