import { capabilities, No, type SessionState } from '../session-state.js';

// Logging in: LOGIN and AUTHENTICATE PLAIN (a failure is answered a fixed time after it arrived)

/** A login would cross the network in clear: refused (RFC 3501 6.2.3, RFC 5530 PRIVACYREQUIRED). */
export function needPrivacy(s: SessionState): void {
  const t = s.opts.transport;
  if (t && !t.secure && !t.plaintextOk) throw new No('NO', `[PRIVACYREQUIRED] log in over TLS (${t.canStartTls ? 'STARTTLS, or ' : ''}the IMAPS port)`);
}

export async function login(s: SessionState, user: string, pass: string): Promise<void> {
  needPrivacy(s);
  const t0 = Date.now();
  if (!(await s.opts.passwd.verifyAsync(user, pass))) {
    s.loginFailures++;
    s.opts.log.info('imap-login-failed', { user });
    // answered a fixed time after the attempt arrived, whatever it cost: no guessing at wire speed, and
    // the same time for a user who exists and one who does not
    const wait = t0 + (s.opts.authFailureDelayMs ?? 0) - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    throw new No('NO', '[AUTHENTICATIONFAILED] invalid credentials');
  }
  s.user = user;
  s.state = 'authenticated';
  s.opts.log.info('imap-login', { user });
}
export async function plainLogin(s: SessionState, tag: string, b64: string): Promise<void> {
  const raw = Buffer.from(b64, 'base64').toString('utf8').split('\0');
  if (raw.length !== 3) return s.io.write(`${tag} BAD malformed PLAIN response\r\n`);
  const [authz, user, pass] = raw;
  if (authz && authz !== user) return s.io.write(`${tag} NO [AUTHORIZATIONFAILED] acting as another user is not allowed\r\n`);
  try {
    await login(s, user, pass);
  } catch (e) {
    return s.io.write(`${tag} NO ${(e as Error).message}\r\n`);
  }
  return s.io.write(`${tag} OK [CAPABILITY ${capabilities(s.opts.transport)}] AUTHENTICATE completed\r\n`);
}