/**
 * What every command shares: exit codes, the store it works on (from the
 * global options), output, and the parsers of option values (a bad value is
 * a usage error naming the option).
 */
import type { Command } from 'commander';
import { Store } from '../store.js';
import { MailcasError } from '../errors.js';

/** Exit codes (sysexits.h where one fits). */
export const EXIT = { ok: 0, failure: 1, usage: 64, dataErr: 65, noInput: 66, noUser: 67, software: 70, ioErr: 74, tempFail: 75 } as const;

export function storeDir(cmd: Command): string {
  const o = cmd.optsWithGlobals() as { store?: string };
  return o.store || process.env.MAILCAS_STORE || './mailcas-data';
}

export function maxMessageBytes(cmd: Command): number | undefined {
  const o = cmd.optsWithGlobals() as { maxMessageBytes?: string };
  const v = o.maxMessageBytes ?? process.env.MAILCAS_MAX_MESSAGE_BYTES;
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n <= 0) throw new MailcasError('E_USAGE', `--max-message-bytes needs a positive integer, got ${JSON.stringify(v)}`);
  return n;
}

export function maxParts(cmd: Command): number | undefined {
  const o = cmd.optsWithGlobals() as { maxParts?: string };
  const v = o.maxParts ?? process.env.MAILCAS_MAX_PARTS;
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n <= 0) throw new MailcasError('E_USAGE', `--max-parts needs a positive integer, got ${JSON.stringify(v)}`);
  return n;
}

/**
 * Opens the store for one command. Only the commands that store mail (and
 * init) create a store where there is none: any other exits 66 naming the
 * directory (a typo in --store never reads as an empty store). Commands
 * that only read open it read-only (a user who may read the store but not
 * write it can run them). Worker threads only for commands that prepare
 * many messages at once (import, the LMTP server).
 */
export async function withStore<T>(cmd: Command, fn: (s: Store) => Promise<T>, opts: { workers?: boolean; create?: boolean; readOnly?: boolean } = {}): Promise<T> {
  const s = await Store.open(storeDir(cmd), { maxMessageBytes: maxMessageBytes(cmd), maxParts: maxParts(cmd), workers: opts.workers ? undefined : 0, create: !!opts.create, readOnly: !!opts.readOnly });
  try {
    return await fn(s);
  } finally {
    await s.close();
  }
}

/** One line on stdout. */
export const out = (s: string): void => {
  process.stdout.write(s + '\n');
};

export function parseHostPort(v: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(v);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new MailcasError('E_USAGE', `--listen needs HOST:PORT, got ${JSON.stringify(v)}`);
  return { host: m[1] ?? m[2], port };
}

/** 30d, 12h, 90m, 45s, 0 (milliseconds). */
export function parseDuration(v: string): number {
  const m = /^(\d+)([dhms]?)$/.exec(v.trim());
  if (!m || (m[2] === '' && m[1] !== '0')) throw new MailcasError('E_USAGE', `a duration is a number with d, h, m or s (30d, 12h), or 0; got ${JSON.stringify(v)}`);
  return Number(m[1]) * ({ d: 86_400_000, h: 3_600_000, m: 60_000, s: 1000, '': 0 } as Record<string, number>)[m[2]];
}

export function nonNegativeInt(v: string, flag: string): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) throw new MailcasError('E_USAGE', `${flag} needs a whole number >= 0, got ${JSON.stringify(v)}`);
  return n;
}

export function positiveInt(v: string, flag: string): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 1) throw new MailcasError('E_USAGE', `${flag} needs a positive integer, got ${JSON.stringify(v)}`);
  return n;
}

export function nonNegative(v: string, flag: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new MailcasError('E_USAGE', `${flag} needs a number of seconds >= 0, got ${JSON.stringify(v)}`);
  return n;
}
