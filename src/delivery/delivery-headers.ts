/**
 * The trace headers a local delivery agent adds (RFC 5321 4.4, as
 * Dovecot's and Postfix's local delivery do): Return-Path with the
 * envelope sender, and Delivered-To with the recipient when there is one.
 * Their line breaks follow the message's own first line (CRLF or LF).
 */
export function deliveryHeaders(firstChunk: Buffer, from: string, to: string | null): Buffer {
  const lf = firstChunk.indexOf(0x0a);
  const eol = lf > 0 && firstChunk[lf - 1] === 0x0d ? '\r\n' : lf >= 0 ? '\n' : '\r\n';
  return Buffer.from(`Return-Path: <${from}>${eol}${to ? `Delivered-To: ${to}${eol}` : ''}`, 'utf8');
}

/**
 * A message with the delivery headers in front, computed from its first
 * chunk (its line ending): what both the LDA (stdin) and the LMTP server
 * (the DATA stream) hand to the store.
 */
export async function* withDeliveryHeaders(src: AsyncIterable<Buffer>, from: string, to: string | null): AsyncGenerator<Buffer> {
  let first = true;
  for await (const c of src) {
    if (first) {
      first = false;
      yield deliveryHeaders(c, from, to);
    }
    yield c;
  }
}
