import crypto from 'node:crypto';

/** Small helpers to write test messages with a shared attachment in a chosen encoding. */
export function wrap(s: string, n: number, eol: string): string {
  if (n === 0) return s;
  const out: string[] = [];
  for (let i = 0; i < s.length; i += n) out.push(s.slice(i, i + n));
  return out.join(eol);
}

export function messageWith(attachment: Buffer, o: { subject?: string; lineLen?: number; eol?: string; name?: string; type?: string } = {}): Buffer {
  const eol = o.eol ?? '\r\n';
  const b = 'BOUNDARY-' + crypto.createHash('md5').update(o.subject ?? '').digest('hex').slice(0, 8);
  const lines = [
    'From: Alice <alice@example.com>',
    'To: Bob <bob@example.org>',
    `Subject: ${o.subject ?? 'attachment'}`,
    'MIME-Version: 1.0',
    `Content-Type: multipart/mixed; boundary="${b}"`,
    '',
    `--${b}`,
    'Content-Type: text/plain; charset=us-ascii',
    '',
    `Here is the file (${o.subject ?? ''}).`,
    `--${b}`,
    `Content-Type: ${o.type ?? 'application/pdf'}; name="${o.name ?? 'report.pdf'}"`,
    'Content-Transfer-Encoding: base64',
    `Content-Disposition: attachment; filename="${o.name ?? 'report.pdf'}"`,
    '',
    wrap(attachment.toString('base64'), o.lineLen ?? 76, eol),
    `--${b}--`,
    '',
  ];
  return Buffer.from(lines.join(eol), 'latin1');
}
