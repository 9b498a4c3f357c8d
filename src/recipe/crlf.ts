import type { Canonicalizer, RecipeEncoder } from './canonicalizer.js';

const LF = 0x0a;
const CR = 0x0d;

/**
 * Text whose every line break is CRLF (and with no bare CR or LF) is stored
 * with LF line breaks, so the same body read from a Maildir (LF) and received
 * over SMTP (CRLF) is one blob.
 */
export const crlfCanonicalize: Canonicalizer = (src, start, end, sink) => {
  let pendingCR = false;
  let sawCRLF = false;
  for (const chunk of src.chunks(start, end)) {
    let from = 0;
    if (pendingCR) {
      if (chunk[0] !== LF) return null;
      sink.write(NL);
      from = 1;
      sawCRLF = true;
      pendingCR = false;
    }
    let p = from;
    let out = from;
    for (;;) {
      const cr = chunk.indexOf(CR, p);
      const lf = chunk.indexOf(LF, p);
      if (lf >= 0 && (cr < 0 || lf < cr)) return null; // bare LF
      if (cr < 0) break;
      if (cr === chunk.length - 1) {
        sink.write(chunk.subarray(out, cr));
        out = chunk.length;
        pendingCR = true;
        break;
      }
      if (chunk[cr + 1] !== LF) return null; // bare CR
      sink.write(chunk.subarray(out, cr));
      out = cr + 1; // keep the LF
      p = cr + 2;
      sawCRLF = true;
    }
    if (out < chunk.length) sink.write(chunk.subarray(out));
  }
  if (pendingCR || !sawCRLF) return null;
  return { t: 'crlf' };
};

export function crlfEncoder(): RecipeEncoder {
  return {
    push(b) {
      if (b.indexOf(LF) < 0) return b;
      return Buffer.from(b.toString('latin1').replaceAll('\n', '\r\n'), 'latin1');
    },
    end: () => Buffer.alloc(0),
  };
}

const NL = Buffer.from('\n');
