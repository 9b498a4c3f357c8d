#!/usr/bin/env python3
"""A real LMTP client for the tests: Python's smtplib.LMTP, one transaction per message file,
printing one JSON object per transaction: the RCPT replies and the per-recipient DATA replies
(RFC 2033: one reply per accepted recipient, which smtplib's sendmail() does not read itself).

  lmtp_client.py HOST PORT FROM RCPT[,RCPT...] FILE [FILE...]
  (PORT 0: HOST is a Unix socket path)
"""
import json
import smtplib
import sys
import time

host, port, sender, rcpts, files = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4].split(','), sys.argv[5:]
c = smtplib.LMTP(host, port) if port else smtplib.LMTP(host)
c.ehlo_or_helo_if_needed()
for f in files:
    data = open(f, 'rb').read()
    out = {'file': f}
    t0 = time.monotonic()
    code, msg = c.mail(sender, ['SIZE=%d' % len(data)] if 'size' in c.esmtp_features else [])
    out['mail'] = [code, msg.decode()]
    if code != 250:
        print(json.dumps(out)); c.rset(); continue
    accepted = []
    out['rcpt'] = []
    for r in rcpts:
        code, msg = c.rcpt(r)
        out['rcpt'].append([r, code, msg.decode()])
        if code == 250:
            accepted.append(r)
    if not accepted:
        print(json.dumps(out)); c.rset(); continue
    code, msg = c.docmd('DATA')
    out['data'] = [code, msg.decode()]
    if code != 354:
        print(json.dumps(out)); continue
    # dot-stuffing and the end marker as smtplib.data() does, CRLF kept as in the file
    body = data.replace(b'\n.', b'\n..')
    if body.startswith(b'.'):
        body = b'.' + body
    if not body.endswith(b'\r\n'):
        body += b'\r\n'
    c.send(body + b'.\r\n')
    out['replies'] = []
    for r in accepted:
        code, msg = c.getreply()
        out['replies'].append([r, code, msg.decode()])
    out['ms'] = (time.monotonic() - t0) * 1000
    print(json.dumps(out), flush=True)
c.quit()
