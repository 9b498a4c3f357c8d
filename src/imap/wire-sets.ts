/** Sets and flag lists as IMAP writes them (pure). */

/** A flag list: (\Seen $Junk). */
export function flagList(flags: string[]): string {
  return `(${flags.join(' ')})`;
}

/** Ascending numbers as a sequence set: 1:3,5,7:9 ("" for none). */
export function sequenceSet(nums: number[]): string {
  const sorted = [...nums].sort((a, b) => a - b);
  const out: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] <= sorted[j] + 1) j++;
    out.push(sorted[i] === sorted[j] ? String(sorted[i]) : `${sorted[i]}:${sorted[j]}`);
    i = j + 1;
  }
  return out.join(',');
}

/** The numbers 1..top that an ascending list lacks, as a sequence set ("" for none): ranges, never expanded. */
export function complementSet(ascending: number[], top: number): string {
  const out: string[] = [];
  let next = 1;
  for (const u of ascending) {
    if (u > top) break;
    if (u > next) out.push(u - 1 === next ? String(next) : `${next}:${u - 1}`);
    next = Math.max(next, u + 1);
  }
  if (next <= top) out.push(next === top ? String(next) : `${next}:${top}`);
  return out.join(',');
}
