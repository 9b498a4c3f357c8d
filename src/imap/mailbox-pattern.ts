/**
 * IMAP LIST wildcards (RFC 3501 section 6.3.8): `*` matches anything, `%`
 * anything but the hierarchy delimiter. Matched by walking the pattern's
 * positions as a set of states (an NFA) over the name, once: time is the
 * name's length times the pattern's, whatever the pattern (a pattern of a
 * hundred stars is no slower than one), never a backtracking search.
 */
export function matchMailbox(pattern: string, name: string, delimiter: string): boolean {
  // runs of wildcards collapse: "**" is "*", "%%" is "%", and a "*" next to "%" is "*"
  const p: string[] = [];
  for (const c of pattern) {
    const last = p[p.length - 1];
    if ((c === '*' || c === '%') && (last === '*' || last === '%')) {
      if (c === '*') p[p.length - 1] = '*';
      continue;
    }
    p.push(c);
  }
  const n = p.length;
  let states: Uint8Array = new Uint8Array(n + 1);
  const close = (s: Uint8Array): Uint8Array => {
    // a wildcard may match nothing: its state also stands at the position after it
    for (let i = 0; i < n; i++) if (s[i] && (p[i] === '*' || p[i] === '%')) s[i + 1] = 1;
    return s;
  };
  states[0] = 1;
  close(states);
  for (const ch of name) {
    const next = new Uint8Array(n + 1);
    let any = false;
    for (let i = 0; i < n; i++) {
      if (!states[i]) continue;
      const pc = p[i];
      if (pc === '*' || (pc === '%' && ch !== delimiter)) {
        next[i] = 1; // the wildcard takes this character and may take more
        any = true;
      } else if (pc === ch) {
        next[i + 1] = 1;
        any = true;
      }
    }
    if (!any) return false;
    states = close(next);
  }
  return states[n] === 1;
}
