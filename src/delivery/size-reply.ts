import { createRequire } from 'node:module';
import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';

/** What the patch touches of the smtp-server package's connection (a private method, pinned by the exact version in package.json). */
interface MailParamCheck {
  _validateMailParams(parsed: { args?: Record<string, string> }): { code: number; message: string; enhancedCode: string | null } | null;
}

/** The smtp-server version whose MAIL FROM check this wraps (package.json pins it; data-feed.ts pins the same). */
export const SIZE_REPLY_FOR_VERSION = '3.21.6';

let installed = false;

/**
 * MAIL FROM with a SIZE over the limit is refused by the smtp-server package
 * itself, before any handler of ours runs, as "552 Error: message exceeds
 * fixed maximum message size N". Every other size refusal of mailcas (in
 * DATA, in the LDA) is "552 5.3.4" naming the limit, as the README says:
 * this gives the MAIL FROM one the same reply. Other answers of the check
 * are unchanged; any other smtp-server version keeps its own text.
 */
export function installSizeReply(): boolean {
  if (installed) return true;
  const version = (createRequire(import.meta.url)('smtp-server/package.json') as { version: string }).version;
  const proto = SMTPConnection.prototype as unknown as MailParamCheck;
  if (version !== SIZE_REPLY_FOR_VERSION || typeof proto._validateMailParams !== 'function') return false;
  installed = true;
  const own = proto._validateMailParams;
  proto._validateMailParams = function (this: MailParamCheck & { _server: { options: { size?: number } } }, parsed) {
    const r = own.call(this, parsed);
    if (r && r.code === 552 && parsed.args?.SIZE) {
      const limit = this._server.options.size;
      return { code: 552, message: `5.3.4 message size ${parsed.args.SIZE} exceeds the size limit of ${limit} bytes`, enhancedCode: null };
    }
    return r;
  };
  return true;
}
