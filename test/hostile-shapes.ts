/**
 * Deterministic generators of the message shapes fuzzing found expensive,
 * each about `bytes` long (shared by test/hostile.test.ts and bench/hostile.ts).
 */
export const hostileShapes: Record<string, (bytes: number) => Buffer> = {
  /** One text part of lines starting with "--" inside a multipart: every line is a delimiter candidate. */
  dashLines: (bytes) =>
    Buffer.from(
      'Content-Type: multipart/mixed; boundary=xyz\r\n\r\n--xyz\r\nContent-Type: text/plain\r\n\r\n' +
        '--x\r\n'.repeat(Math.max(1, Math.floor((bytes - 100) / 5))) +
        '--xyz--\r\n',
    ),
  /** A header block of 20,000 lines, then a plain body. */
  headerLines: (bytes) => {
    const head = Array.from({ length: 20_000 }, (_, i) => `X-Header-${i}: value ${i}\r\n`).join('');
    return Buffer.from(head + '\r\n' + 'a line of body text\r\n'.repeat(Math.max(1, Math.floor((bytes - head.length) / 21))));
  },
  /** Many tiny text parts (as many as fit; callers raise the parts limit when they want them all). */
  tinyParts: (bytes) => {
    const n = Math.max(1, Math.floor(bytes / 36));
    let s = 'Content-Type: multipart/mixed; boundary=b\r\n\r\n';
    for (let i = 0; i < n; i++) s += `--b\r\n\r\npart ${i} body text\r\n`;
    return Buffer.from(s + '--b--\r\n');
  },
  /** Nothing but empty parts. */
  emptyParts: (bytes) => Buffer.from('Content-Type: multipart/mixed; boundary=b\r\n\r\n' + '--b\r\n'.repeat(Math.max(1, Math.floor(bytes / 5)))),
  /** Base64 parts with long trailing whitespace (read backwards from their end). */
  base64Tails: (bytes) => {
    let s = 'Content-Type: multipart/mixed; boundary=b\r\n\r\n';
    const part = `--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n${Buffer.alloc(3000, 7).toString('base64')}${' \r\n'.repeat(600)}`;
    for (let n = 0; n < Math.max(1, Math.floor(bytes / part.length)); n++) s += part;
    return Buffer.from(s + '--b--\r\n');
  },
};

/** A plain message of the same size: the baseline every shape is compared with. */
export function plainMessage(bytes: number): Buffer {
  return Buffer.from('Subject: plain\r\n\r\n' + 'A plain body line of text, nothing odd.\r\n'.repeat(Math.max(1, Math.floor(bytes / 41))));
}
