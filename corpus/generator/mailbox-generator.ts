/**
 * A seeded generator of realistic mailboxes, for tests and benchmarks.
 *
 * What real mail stores hold and what it exercises:
 * - the same attachment sent to many recipients, and by different mail
 *   clients (base64 at 76/72/64 columns, CRLF or LF, Sent copies in LF);
 * - replies quoting earlier mail; forwards inline (attachments re-encoded by
 *   the forwarding client) and as message/rfc822 attachments;
 * - newsletters (the same HTML, quoted-printable, and images to many users);
 * - mailing-list traffic (one post to every subscriber, a footer appended).
 *
 * Same seed, same bytes.
 */
import { qpEncode } from '../../src/recipe/qp.js';

export type Profile = 'mixed' | 'attachments' | 'small';

export interface GenOptions {
  seed: number;
  users: number;
  /** Messages to generate (deliveries: one message to 5 users counts 5). */
  messages: number;
  profile?: Profile;
  /** Distinct attachments in the pool. */
  attachments?: number;
}

export interface GeneratedMessage {
  user: string;
  mailbox: string;
  /** Maildir-style unique file name. */
  name: string;
  bytes: Buffer;
}

class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0 || 1;
  }
  next(): number {
    let t = (this.s += 0x6d2b79f5);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  pick<T>(a: readonly T[]): T {
    return a[Math.floor(this.next() * a.length)];
  }
  /** Zipf-like: small indexes much more likely. */
  skewed(n: number): number {
    return Math.min(n - 1, Math.floor(Math.pow(this.next(), 1.6) * n));
  }
  bytes(n: number): Buffer {
    const b = Buffer.allocUnsafe(n + 4);
    for (let i = 0; i < n; i += 4) b.writeUInt32LE(Math.floor(this.next() * 4294967296), i);
    return b.subarray(0, n);
  }
}

const WORDS = (
  'the of and to in is that for it as was with be by on not he this are or his from at which but have an they you were her all she there would their we him been has when who will more no if out so said what up its about into than them can only other new some could time these two may then do first any my now such like our over man me even most made after also did many before must through back years where much your way well down should because each just those people how too little state good very make world still own see men work long get here between both life being under never day same another know while last might us great old year off come since against go came right used take three'
).split(' ');

interface Client {
  name: string;
  header: string;
  b64Line: number;
  crlf: boolean;
  textCte: '7bit' | 'quoted-printable' | '8bit';
}

const CLIENTS: Client[] = [
  { name: 'Thunderbird', header: 'User-Agent: Mozilla Thunderbird', b64Line: 72, crlf: true, textCte: '7bit' },
  { name: 'Outlook', header: 'X-Mailer: Microsoft Outlook 16.0', b64Line: 76, crlf: true, textCte: 'quoted-printable' },
  { name: 'Gmail', header: 'X-Gm-Message-State: AOJu0Y', b64Line: 76, crlf: true, textCte: 'quoted-printable' },
  { name: 'AppleMail', header: 'X-Mailer: Apple Mail (2.3774)', b64Line: 76, crlf: true, textCte: '7bit' },
  { name: 'mutt', header: 'User-Agent: NeoMutt/20231103', b64Line: 64, crlf: false, textCte: '8bit' },
];

interface Attachment {
  name: string;
  type: string;
  data: Buffer;
}

interface Sent {
  from: string;
  subject: string;
  msgId: string;
  text: string;
  attachments: Attachment[];
  raw: Buffer;
}

export function* generateMailboxes(opts: GenOptions): Generator<GeneratedMessage> {
  const rng = new Rng(opts.seed);
  const profile = opts.profile ?? 'mixed';
  const users = Array.from({ length: opts.users }, (_, i) => `user${i}@example.org`);
  const pool = makeAttachments(rng, opts.attachments ?? Math.max(8, Math.round(opts.messages / 4)), profile);
  const history: Sent[] = [];
  const newsletter = { html: makeHtml(rng), images: pool.filter((a) => a.type.startsWith('image/')).slice(0, 2) };
  let produced = 0;
  let seq = 0;
  const date = (n: number): string => new Date(Date.UTC(2026, 0, 1) + n * 3_600_000).toUTCString().replace('GMT', '+0000');

  const deliver = function* (to: string[], raw: (user: string) => Buffer, mailbox = 'INBOX'): Generator<GeneratedMessage> {
    for (const u of to) {
      if (produced >= opts.messages) return;
      produced++;
      yield { user: u, mailbox, name: `${1767225600 + seq}.M${seq}P${produced}.gen:2,S`, bytes: raw(u) };
      seq++;
    }
  };

  while (produced < opts.messages) {
    const roll = rng.next();
    const sender = users[rng.skewed(users.length)];
    const client = rng.pick(CLIENTS);
    const n = seq;
    const recipients = pickRecipients(rng, users, sender, profile === 'attachments' ? 6 : 4);
    if (profile === 'small' || roll < 0.3) {
      // plain conversation, maybe a reply quoting earlier mail
      const prev = history.length && rng.next() < 0.6 ? history[rng.skewed(history.length)] : null;
      const text = (prev ? `On ${date(n - 3)}, ${prev.from} wrote:\n` + quote(prev.text) + '\n\n' : '') + paragraphs(rng, rng.int(1, 4));
      const subject = prev ? `Re: ${prev.subject.replace(/^Re: /, '')}` : sentence(rng, 5);
      const s = compose(rng, client, { from: sender, to: recipients, subject, date: date(n), text, attachments: [], inReplyTo: prev?.msgId });
      history.push(s);
      yield* deliver(recipients, (u) => received(s.raw, u, client.crlf, n));
      yield* deliver([sender], () => toLf(s.raw), 'Sent');
    } else if (roll < 0.7 || profile === 'attachments') {
      // the same attachments sent around, by whichever client the sender uses
      const atts = Array.from({ length: rng.int(1, profile === 'attachments' ? 3 : 2) }, () => pool[rng.skewed(pool.length)]);
      const s = compose(rng, client, { from: sender, to: recipients, subject: sentence(rng, 4), date: date(n), text: paragraphs(rng, 1), attachments: [...new Set(atts)] });
      history.push(s);
      yield* deliver(recipients, (u) => received(s.raw, u, client.crlf, n));
      yield* deliver([sender], () => toLf(s.raw), 'Sent');
    } else if (roll < 0.8 && history.length) {
      // forward: inline (re-encoded by this client) or as message/rfc822
      const orig = history[rng.skewed(history.length)];
      const asAttachment = rng.next() < 0.5;
      const s = asAttachment
        ? compose(rng, client, { from: sender, to: recipients, subject: `Fwd: ${orig.subject}`, date: date(n), text: paragraphs(rng, 1), attachments: [], rfc822: orig.raw })
        : compose(rng, client, {
            from: sender,
            to: recipients,
            subject: `Fwd: ${orig.subject}`,
            date: date(n),
            text: `${paragraphs(rng, 1)}\n\n---------- Forwarded message ---------\nFrom: ${orig.from}\nSubject: ${orig.subject}\n\n${orig.text}`,
            attachments: orig.attachments,
          });
      history.push(s);
      yield* deliver(recipients, (u) => received(s.raw, u, client.crlf, n));
    } else if (roll < 0.9) {
      // newsletter to many
      const s = compose(rng, CLIENTS[1], {
        from: 'news@shop.example.com',
        to: ['undisclosed-recipients:;'],
        subject: `Newsletter ${Math.floor(n / 50)}`,
        date: date(Math.floor(n / 50) * 50),
        text: 'View this newsletter in a browser.',
        html: newsletter.html,
        attachments: newsletter.images,
      });
      yield* deliver(users.filter(() => rng.next() < 0.5), (u) => received(s.raw, u, true, n));
    } else {
      // mailing list: one post, every subscriber, footer part added by the list server
      const post = compose(rng, client, { from: sender, to: ['dev@lists.example.net'], subject: `[dev] ${sentence(rng, 4)}`, date: date(n), text: paragraphs(rng, 2), attachments: rng.next() < 0.3 ? [pool[rng.skewed(pool.length)]] : [], listFooter: true });
      history.push(post);
      yield* deliver(users.filter((_, i) => i % 3 !== 1), (u) => received(post.raw, u, false, n));
    }
  }
}

function pickRecipients(rng: Rng, users: string[], sender: string, max: number): string[] {
  const k = rng.int(1, Math.min(max, users.length - 1 || 1));
  const out = new Set<string>();
  while (out.size < k && out.size < users.length - 1) {
    const u = users[rng.int(0, users.length - 1)];
    if (u !== sender) out.add(u);
  }
  return out.size ? [...out] : [sender];
}

function makeAttachments(rng: Rng, n: number, profile: Profile): Attachment[] {
  const kinds = [
    { ext: 'pdf', type: 'application/pdf', text: false },
    { ext: 'jpg', type: 'image/jpeg', text: false },
    { ext: 'png', type: 'image/png', text: false },
    { ext: 'docx', type: 'application/vnd.openxmlformats-officedocument.wordprocessingml.document', text: false },
    { ext: 'csv', type: 'text/csv', text: true },
    { ext: 'log', type: 'text/plain', text: true },
  ];
  const maxKB = profile === 'attachments' ? 4096 : 1024;
  return Array.from({ length: n }, (_, i) => {
    const k = rng.pick(kinds);
    const size = Math.round(Math.exp(Math.log(8) + rng.next() * (Math.log(maxKB) - Math.log(8))) * 1024);
    const data = k.text ? textBlob(rng, size) : Buffer.concat([Buffer.from(k.ext === 'pdf' ? '%PDF-1.7\n' : ''), rng.bytes(size)]);
    return { name: `${sentence(rng, 2).replace(/\W+/g, '-').toLowerCase()}-${i}.${k.ext}`, type: k.type, data };
  });
}

function textBlob(rng: Rng, size: number): Buffer {
  const lines: string[] = [];
  let n = 0;
  while (n < size) {
    const l = `${rng.int(1000, 9999)},${rng.pick(WORDS)},${rng.pick(WORDS)},${rng.int(0, 1e6)}`;
    lines.push(l);
    n += l.length + 2;
  }
  return Buffer.from(lines.join('\r\n') + '\r\n');
}

function sentence(rng: Rng, n: number): string {
  const w = Array.from({ length: n }, () => rng.pick(WORDS));
  return w[0][0].toUpperCase() + w.join(' ').slice(1);
}

function paragraphs(rng: Rng, n: number): string {
  return Array.from({ length: n }, () => {
    const s = Array.from({ length: rng.int(2, 6) }, () => sentence(rng, rng.int(5, 14)) + '.').join(' ');
    return s.replace(/(.{1,72})(\s|$)/g, '$1\n').trim();
  }).join('\n\n');
}

function quote(text: string): string {
  return text
    .split('\n')
    .map((l) => (l.startsWith('>') ? '>' + l : '> ' + l))
    .join('\n');
}

function makeHtml(rng: Rng): string {
  const items = Array.from({ length: 12 }, () => `<tr><td style="padding:8px;font-family:Arial">${sentence(rng, 8)}</td><td>€${rng.int(5, 500)}</td></tr>`);
  return `<!DOCTYPE html><html><head><meta charset="utf-8"></head><body><table width="600">${items.join('\n')}</table><p>Unsubscribe: https://shop.example.com/u?id=${rng.int(1, 1e9)}</p></body></html>`;
}

interface ComposeArgs {
  from: string;
  to: string[];
  subject: string;
  date: string;
  text: string;
  html?: string;
  attachments: Attachment[];
  rfc822?: Buffer;
  inReplyTo?: string;
  listFooter?: boolean;
}

function b64(data: Buffer, line: number, eol: string): string {
  const s = data.toString('base64');
  const out: string[] = [];
  for (let i = 0; i < s.length; i += line) out.push(s.slice(i, i + line));
  return out.join(eol);
}

function textPart(client: Client, text: string, eol: string, type = 'text/plain'): string[] {
  if (client.textCte === 'quoted-printable') {
    const qp = qpEncode(Buffer.from(text.replace(/\n/g, '\r\n'), 'utf8'), { lineMax: 76, crlf: eol === '\r\n', text: true, extra: Buffer.alloc(0) }).toString('latin1');
    return [`Content-Type: ${type}; charset="utf-8"`, 'Content-Transfer-Encoding: quoted-printable', '', qp];
  }
  return [`Content-Type: ${type}; charset="utf-8"${type === 'text/plain' ? '; format=flowed' : ''}`, `Content-Transfer-Encoding: ${client.textCte}`, '', text.split('\n').join(eol)];
}

function compose(rng: Rng, client: Client, a: ComposeArgs): Sent {
  const eol = client.crlf ? '\r\n' : '\n';
  const id = `<${rng.int(1e8, 9e8).toString(36)}.${rng.int(1e8, 9e8).toString(36)}@${a.from.split('@')[1]}>`;
  const head = [
    `Date: ${a.date}`,
    `From: ${a.from.split('@')[0]} <${a.from}>`,
    `To: ${a.to.join(', ')}`,
    `Subject: ${a.subject}`,
    `Message-ID: ${id}`,
    ...(a.inReplyTo ? [`In-Reply-To: ${a.inReplyTo}`, `References: ${a.inReplyTo}`] : []),
    client.header,
    'MIME-Version: 1.0',
  ];
  const boundary = `----=_Part_${rng.int(1e5, 9e5)}_${rng.int(1e8, 9e8)}.${rng.int(1e9, 9e9)}`;
  let body: string[];
  if (!a.attachments.length && !a.html && !a.rfc822 && !a.listFooter) {
    body = textPart(client, a.text, eol);
  } else {
    const parts: string[][] = [];
    if (a.html) {
      const alt = `alt-${boundary}`;
      parts.push([
        `Content-Type: multipart/alternative; boundary="${alt}"`,
        '',
        `--${alt}`,
        ...textPart(client, a.text, eol),
        `--${alt}`,
        ...textPart(CLIENTS[1], a.html, eol, 'text/html'),
        `--${alt}--`,
      ]);
    } else parts.push(textPart(client, a.text, eol));
    for (const at of a.attachments)
      parts.push([`Content-Type: ${at.type}; name="${at.name}"`, 'Content-Transfer-Encoding: base64', `Content-Disposition: attachment; filename="${at.name}"`, '', b64(at.data, client.b64Line, eol)]);
    if (a.rfc822) parts.push(['Content-Type: message/rfc822', 'Content-Disposition: attachment; filename="forwarded.eml"', '', a.rfc822.toString('latin1').replace(/\r?\n/g, eol)]);
    if (a.listFooter) parts.push(['Content-Type: text/plain; charset="us-ascii"', 'Content-Transfer-Encoding: 7bit', 'Content-Disposition: inline', '', '_______________________________________________', 'dev mailing list -- dev@lists.example.net', 'To unsubscribe send an email to dev-leave@lists.example.net']);
    body = [`Content-Type: multipart/mixed; boundary="${boundary}"`, '', 'This is a multi-part message in MIME format.'];
    for (const p of parts) body.push(`--${boundary}`, ...p);
    body.push(`--${boundary}--`, '');
  }
  const raw = Buffer.from([...head, ...body].join(eol) + (body[body.length - 1] === '' ? '' : eol), 'utf8');
  return { from: a.from, subject: a.subject, msgId: id, text: a.text, attachments: a.attachments, raw };
}

/** Adds the delivery headers an MTA prepends (differ per recipient), in the client's line ending. */
function received(raw: Buffer, user: string, crlf: boolean, n: number): Buffer {
  const eol = crlf ? '\r\n' : '\n';
  const h = `Return-Path: <bounce@example.org>${eol}Delivered-To: ${user}${eol}Received: from mx${n % 7}.example.org (mx${n % 7}.example.org [192.0.2.${n % 250}])${eol}\tby mail.example.org with ESMTPS id ${(n * 7919).toString(36)}${eol}\tfor <${user}>; Thu, 1 Jan 2026 00:00:00 +0000${eol}`;
  return Buffer.concat([Buffer.from(h), raw]);
}

/** The Sent copy, as a Maildir holds it: LF line endings. */
function toLf(raw: Buffer): Buffer {
  return Buffer.from(raw.toString('latin1').replace(/\r\n/g, '\n'), 'latin1');
}
