import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { TEMP_STALE_SECONDS } from '../limits.js';

/** A temp file name: what it is for, and randomness (no PID: liveness is judged by age, see cleanStaleTemps). */
export function tempName(kind: string): string {
  return `${kind}-${crypto.randomBytes(12).toString('hex')}`;
}

/**
 * Removes temp files left by writers that died (a crash mid-write). A file
 * is stale when it has not been modified for TEMP_STALE_SECONDS: PIDs are
 * no proof of life (they are reused, and processes in other PID namespaces
 * may share the store), while no live writer leaves its file untouched that long.
 */
export function cleanStaleTemps(dir: string, now = Date.now()): void {
  let names: string[] = [];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return;
  }
  for (const n of names) {
    const p = path.join(dir, n);
    try {
      const st = fs.lstatSync(p);
      if (st.isFile() && now - st.mtimeMs > TEMP_STALE_SECONDS * 1000) fs.rmSync(p, { force: true });
    } catch {
      /* removed meanwhile */
    }
  }
}

/**
 * Removes a temp file without blocking: unlinking a file of hundreds of MB
 * frees its extents and can take tens of milliseconds, which would stall
 * every other session of an LMTP server. Errors are ignored (the stale-temp
 * sweep removes what is left).
 */
export function removeLater(file: string): void {
  fs.rm(file, { force: true }, () => {});
}

/** The temp files in a directory (writes in progress, or left by writers that stopped): how many, their bytes, the oldest's age. */
export function tempFilesIn(dir: string, now = Date.now()): { files: number; bytes: number; oldestMs: number } {
  const out = { files: 0, bytes: 0, oldestMs: 0 };
  let names: string[] = [];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return out;
  }
  for (const n of names) {
    try {
      const st = fs.lstatSync(path.join(dir, n));
      if (!st.isFile()) continue;
      out.files++;
      out.bytes += st.size;
      out.oldestMs = Math.max(out.oldestMs, now - st.mtimeMs);
    } catch {
      /* removed meanwhile */
    }
  }
  return out;
}

/** Removes the temp files in a directory untouched for longer than `olderThanMs` (gc: its grace period); answers how many and their bytes. */
export function removeTempsOlderThan(dir: string, olderThanMs: number, now = Date.now()): { files: number; bytes: number } {
  const out = { files: 0, bytes: 0 };
  let names: string[] = [];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return out;
  }
  for (const n of names) {
    const p = path.join(dir, n);
    try {
      const st = fs.lstatSync(p);
      if (!st.isFile() || now - st.mtimeMs <= olderThanMs) continue;
      fs.rmSync(p, { force: true });
      out.files++;
      out.bytes += st.size;
    } catch {
      /* removed meanwhile */
    }
  }
  return out;
}
