import fs from 'node:fs';
import { FileSource } from '../split/byte-source.js';

/**
 * mbox separator lines: at the start of the file or after an empty line,
 * reading "From", "From -", "From <token>" or "From <token> <date...>"
 * (so body lines such as "From Russia with love" are not separators).
 */
const WEEKDAY = /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun)\b/;
export function isSeparatorLine(line: string): boolean {
  if (line.endsWith('\r')) line = line.slice(0, -1);
  if (line === 'From') return true;
  if (!line.startsWith('From ')) return false;
  const rest = line.slice(5).trimEnd();
  if (rest === '' || rest === '-') return true;
  const sp = rest.indexOf(' ');
  if (sp < 0) return true; // From <token>
  const date = rest.slice(sp + 1).trimStart();
  return WEEKDAY.test(date) || /^\d/.test(date);
}

export interface MboxEntry {
  /** 1-based position in the mailbox. */
  index: number;
  /** Byte range of the message (separator line excluded). */
  start: number;
  end: number;
}

/**
 * Finds the messages of an mbox file without loading it: a windowed scan
 * for "\nFrom " candidates. Messages keep every byte between separator
 * lines (including the empty line before the next separator); ">From "
 * quoting is not undone, so what is stored is exactly what the file holds.
 */
export function* scanMbox(file: string): Generator<MboxEntry> {
  const fd = fs.openSync(file, 'r');
  try {
    const size = fs.fstatSync(fd).size;
    const src = new FileSource(fd, size);
    const lineAt = (p: number): { text: string; end: number } => {
      const lf = src.indexOf(NL, p, Math.min(size, p + 4096));
      const end = lf < 0 ? Math.min(size, p + 4096) : lf + 1;
      return { text: src.read(p, lf < 0 ? end : lf).toString('latin1'), end: lf < 0 ? size : end };
    };
    let index = 0;
    let msgStart = -1;
    let p = 0;
    if (size === 0) return;
    const first = lineAt(0);
    if (isSeparatorLine(first.text)) msgStart = first.end;
    else msgStart = 0; // no leading separator: the first message starts at 0
    p = msgStart;
    for (;;) {
      const i = src.indexOf(NL_FROM, Math.max(0, p - 1));
      if (i < 0) break;
      const lineStart = i + 1;
      // a separator follows an empty line
      const prevEmpty = i >= 1 && (src.read(i - 1, i)[0] === 0x0a || (i >= 2 && src.read(i - 2, i).toString('latin1') === '\n\r'));
      const l = lineAt(lineStart);
      if (prevEmpty && lineStart > msgStart && isSeparatorLine(l.text)) {
        yield { index: ++index, start: msgStart, end: lineStart };
        msgStart = l.end;
      }
      p = lineStart + 1;
    }
    if (msgStart < size || index === 0) yield { index: ++index, start: msgStart, end: size };
  } finally {
    fs.closeSync(fd);
  }
}

/** Does this file look like an mbox? It must start with a separator line and hold at least two messages, or be named like one. */
export function sniffMbox(file: string): boolean {
  const fd = fs.openSync(file, 'r');
  try {
    const b = Buffer.alloc(1024);
    const n = fs.readSync(fd, b, 0, b.length, 0);
    const firstLine = b.subarray(0, n).toString('latin1').split('\n')[0];
    if (!isSeparatorLine(firstLine)) return false;
  } finally {
    fs.closeSync(fd);
  }
  if (/(\.mbox|\.mbx|^mbox)$/i.test(file.split('/').pop() ?? '')) return true;
  let count = 0;
  for (const _ of scanMbox(file)) if (++count >= 2) return true;
  return false;
}

const NL = Buffer.from('\n');
const NL_FROM = Buffer.from('\nFrom', 'latin1');
