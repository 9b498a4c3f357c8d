import type { Canonicalizer, RecipeEncoder } from './canonicalizer.js';

const LF = 0x0a;
const CR = 0x0d;

/**
 * Canonical text uses CRLF line breaks (RFC 2045's canonical form). A body
 * whose every line break is a bare LF (a Maildir copy, a Unix MUA) is stored
 * with CRLF and the LF recorded, so the same body read from a Maildir and
 * received over SMTP is one blob. CRLF bodies are already canonical
 * (identity); bodies with bare CR or mixed line endings are stored as they came.
 */
export const lfCanonicalize: Canonicalizer = (src, start, end, sink) => {
  let sawLF = false;
  for (const chunk of src.chunks(start, end)) {
    if (chunk.indexOf(CR) >= 0) return null;
    if (chunk.indexOf(LF) < 0) {
      sink.write(chunk, !src.stable);
      continue;
    }
    sawLF = true;
    sink.write(Buffer.from(chunk.toString('latin1').replaceAll('\n', '\r\n'), 'latin1'));
  }
  return sawLF ? { t: 'lf' } : null;
};

export function lfEncoder(): RecipeEncoder {
  let pendingCR = false;
  return {
    push(b) {
      if (!b.length) return b;
      let s = b.toString('latin1');
      if (pendingCR) s = '\r' + s;
      pendingCR = s.endsWith('\r');
      if (pendingCR) s = s.slice(0, -1);
      return Buffer.from(s.replaceAll('\r\n', '\n'), 'latin1');
    },
    end: () => (pendingCR ? Buffer.from('\r') : Buffer.alloc(0)),
  };
}
