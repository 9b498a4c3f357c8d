// The fronts under hostile clients (issue: one client never takes the server, or other users, down):
// every shape of the review runs against the real `mailcas imap`, `serve` and `lmtp` while a client
// of another user keeps working; each shape's answer is the refusal the README states, the server
// stays up, its RSS within a budget, the bystander is served throughout, and SIGTERM in the middle of
// an attack ends each server. npm run soak runs the same shapes for longer.
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runHostileFronts, type HostileReport } from './harness/hostile-fronts.js';
import { BIN, tmpDir } from './helpers.js';

describe('fronts under hostile clients', () => {
  it('ten shapes at IMAP, HTTP and LMTP: refused as stated, the bystander served, memory bounded, SIGTERM obeyed', async () => {
    const rep: HostileReport = await runHostileFronts({ bin: BIN, dir: tmpDir(), shapeMs: 2500, mailboxSize: 2000 });
    for (const s of rep.shapes) console.log(`${s.front}: ${s.shape}: ${s.answer} | bystander ${JSON.stringify(s.bystander)} | peak RSS ${s.rssMB} MB`);
    console.log(JSON.stringify({ ...rep, shapes: undefined }));
    const by = (front: string, shape: RegExp) => rep.shapes.find((s) => s.front === front && shape.test(s.shape))!;
    // every shape: the server is up, the other user's client was answered every time, promptly, and memory stayed bounded
    for (const s of rep.shapes) {
      expect(s.alive, s.shape).toBe(true);
      expect(s.bystander.failed, s.shape).toBe(0);
      expect(s.bystander.n, s.shape).toBeGreaterThan(10);
      expect(s.bystander.p99, s.shape).toBeLessThan(500);
      expect(s.rssMB, s.shape).toBeLessThan(s.front === 'imap' ? 450 : 250);
    }
    expect(by('imap', /16,000 ranges/).answer).toMatch(/^f0 BAD sequence set of more than 10000 ranges/);
    expect(by('imap', /120 stars/).answer).toMatch(/^l0 OK LIST completed/);
    expect(by('imap', /send nothing/).answer).toMatch(/^300 of 300 closed by the server; a new connection after the timeout: x OK NOOP/);
    expect(by('imap', /unparseable/).answer).toBe('* BYE too many bad commands (the limit is 20)');
    expect(by('imap', /chained literals/).answer).toMatch(/^\* BYE command (line )?longer than/);
    expect(by('imap', /pipelined failed LOGINs/).answer).toMatch(/^l0 NO \[AUTHENTICATIONFAILED\].*l1 NO.*l2 NO.*\* BYE too many failed logins \(the limit is 3\)/);
    expect(by('http', /half-sent/).answer).toMatch(/^9\d\d of 1,000 closed by the server/);
    expect(by('lmtp', /unknown RCPTs/).answer).toMatch(/^552 5\.3\.4 message size 200000 exceeds the size limit of 100000 bytes \| 421 4\.7\.0 too many unknown recipients .* after 20 refusals/);
    // a failed login takes the same time for a user that exists (with a cheap hash) and one that does not
    expect(rep.loginFailureMs.known).toBeGreaterThanOrEqual(1900);
    expect(rep.loginFailureMs.unknown).toBeGreaterThanOrEqual(1900);
    expect(Math.abs(rep.loginFailureMs.known - rep.loginFailureMs.unknown)).toBeLessThan(300);
    expect(rep.passwdWarning).toMatch(/passwd line 4: user empty has an empty password: nobody can log in as empty/);
    expect(rep.passwdWarning).not.toMatch(/LOGIN with the empty password/);
    for (const [front, secs] of Object.entries(rep.sigtermSeconds)) {
      expect(secs, front).not.toBeNull();
      expect(secs!, front).toBeLessThan(5);
    }
  });
});
