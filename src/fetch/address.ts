
/**
 * RFC 5322 address lists as IMAP's ENVELOPE gives them: (name adl mailbox
 * host) per address; a group is (NIL NIL "group" NIL) ... (NIL NIL NIL NIL).
 * Lenient, as mail is: what cannot be parsed still yields an address.
 */
export interface Address {
  name: string | null;
  adl: string | null;
  mailbox: string | null;
  host: string | null;
}

type Tok = { t: 'atom' | 'quoted' | 'literal' | 'comment'; v: string } | { t: 'special'; v: string };

function tokenize(s: string): Tok[] {
  const out: Tok[] = [];
  let i = 0;
  while (i < s.length) {
    const c = s[i];
    if (c === ' ' || c === '\t' || c === '\r' || c === '\n') {
      i++;
    } else if (c === '(') {
      // comments (nested, with escapes): the display name of an address that has no phrase
      let depth = 0;
      let v = '';
      for (; i < s.length; i++) {
        if (s[i] === '\\') {
          i++;
          v += s[i] ?? '';
          continue;
        }
        if (s[i] === '(' && depth++ === 0) continue;
        if (s[i] === ')' && --depth === 0) {
          i++;
          break;
        }
        v += s[i];
      }
      out.push({ t: 'comment', v });
    } else if (c === '"') {
      let v = '';
      for (i++; i < s.length && s[i] !== '"'; i++) {
        if (s[i] === '\\' && i + 1 < s.length) i++;
        v += s[i];
      }
      i++;
      out.push({ t: 'quoted', v });
    } else if (c === '[') {
      const j = s.indexOf(']', i);
      const e = j < 0 ? s.length : j + 1;
      out.push({ t: 'literal', v: s.slice(i, e) });
      i = e;
    } else if ('<>@,;:.'.includes(c)) {
      out.push({ t: 'special', v: c });
      i++;
    } else {
      let j = i;
      while (j < s.length && !' \t\r\n()"[<>@,;:.'.includes(s[j])) j++;
      out.push({ t: 'atom', v: s.slice(i, j) });
      i = j;
    }
  }
  return out;
}

/** Parses one header value (To, From, Cc...) into IMAP addresses. */
export function parseAddresses(value: string): Address[] {
  const all = tokenize(value);
  // comments take no part in the grammar; the last one after a bare address names it
  const toks: Tok[] = [];
  const commentAfter = new Map<number, string>();
  for (const t of all) {
    if (t.t === 'comment') commentAfter.set(toks.length, t.v.trim());
    else toks.push(t);
  }
  const out: Address[] = [];
  let i = 0;
  const phraseUntil = (stop: (t: Tok) => boolean): string | null => {
    let out = '';
    let words = 0;
    while (i < toks.length && !stop(toks[i])) {
      const t = toks[i++];
      if (t.t === 'special' && t.v === '.') out += '.';
      else out += (words++ ? ' ' : '') + t.v;
    }
    // as Dovecot gives names: runs of blanks made one space; "" is no name, a quoted name of blanks an empty one
    return words && out !== '' ? out.replace(/[ \t]+/g, ' ').trim() : null;
  };
  /** local@domain from the tokens (stops at , ; > and at the end). */
  const addrSpec = (end: (t: Tok) => boolean): { mailbox: string | null; host: string | null; adl: string | null } => {
    let adl: string | null = null;
    // route: @a,@b:
    if (toks[i]?.t === 'special' && toks[i].v === '@') {
      let r = '';
      while (i < toks.length && !(toks[i].t === 'special' && toks[i].v === ':') && !end(toks[i])) r += toks[i++].v;
      if (toks[i]?.v === ':') {
        i++;
        adl = r;
      }
    }
    let local = '';
    while (i < toks.length && !end(toks[i]) && !(toks[i].t === 'special' && toks[i].v === '@')) local += toks[i++].v;
    let host: string | null = null;
    if (toks[i]?.t === 'special' && toks[i].v === '@') {
      i++;
      let h = '';
      while (i < toks.length && !end(toks[i])) h += toks[i++].v;
      host = h;
    }
    return { adl, mailbox: local === '' ? null : local, host: host === '' ? null : host };
  };
  const isSpecial = (t: Tok, v: string): boolean => t.t === 'special' && t.v === v;
  while (i < toks.length) {
    if (isSpecial(toks[i], ',')) {
      // an empty element before a comma is an address with neither mailbox nor host (Dovecot lists it)
      if (i === 0 || isSpecial(toks[i - 1], ',')) out.push({ name: null, adl: null, mailbox: '', host: '' });
      i++;
      continue;
    }
    // look ahead: a group (phrase ':'), a name-addr (phrase '<'), or an addr-spec
    let j = i;
    while (j < toks.length && !isSpecial(toks[j], ',') && !isSpecial(toks[j], '<') && !isSpecial(toks[j], ':') && !isSpecial(toks[j], ';')) j++;
    const stopAt = toks[j];
    if (stopAt && isSpecial(stopAt, ':') && !toks.slice(i, j).some((t) => isSpecial(t, '@'))) {
      const group = phraseUntil((t) => isSpecial(t, ':'));
      i++; // ':'
      out.push(markGroupStart({ name: null, adl: null, mailbox: group ?? '', host: null }));
      while (i < toks.length && !isSpecial(toks[i], ';')) {
        if (isSpecial(toks[i], ',')) {
          i++;
          continue;
        }
        out.push(one());
      }
      if (i < toks.length) i++; // ';'
      out.push({ name: null, adl: null, mailbox: null, host: null });
      continue;
    }
    out.push(one());
  }
  return out;

  function one(): Address {
    // phrase <addr> or addr-spec
    let j = i;
    while (j < toks.length && !isSpecial(toks[j], ',') && !isSpecial(toks[j], '<') && !isSpecial(toks[j], ';')) j++;
    if (toks[j] && isSpecial(toks[j], '<')) {
      const name = phraseUntil((t) => isSpecial(t, '<'));
      i++; // '<'
      const a = addrSpec((t) => isSpecial(t, '>'));
      while (i < toks.length && !isSpecial(toks[i], '>') && !isSpecial(toks[i], ',')) i++;
      if (i < toks.length && isSpecial(toks[i], '>')) i++;
      while (i < toks.length && !isSpecial(toks[i], ',') && !isSpecial(toks[i], ';')) i++; // junk after the angle address
      return { name, adl: a.adl, mailbox: a.mailbox, host: a.host };
    }
    // words without an @: several are a display name with no address, one is a local part with no domain (as Dovecot reads them)
    let k = i;
    while (k < toks.length && !isSpecial(toks[k], ',') && !isSpecial(toks[k], ';')) k++;
    const words = toks.slice(i, k);
    if (words.length > 1 && words.every((t) => t.t === 'atom' || t.t === 'quoted')) {
      i = k;
      return { name: words.map((t) => t.v).join(' '), adl: null, mailbox: '', host: '' };
    }
    const a = addrSpec((t) => isSpecial(t, ',') || isSpecial(t, ';'));
    const comment = commentAfter.get(i);
    return { name: comment ? comment : null, adl: a.adl, mailbox: a.mailbox, host: a.host };
  }
}

/** Group markers come from the parser as objects with only a mailbox (the group's name): recognised by identity. */
const groupStarts = new WeakSet<object>();

export function isGroupStart(a: object): boolean {
  return groupStarts.has(a);
}

function markGroupStart<T extends object>(a: T): T {
  groupStarts.add(a);
  return a;
}
