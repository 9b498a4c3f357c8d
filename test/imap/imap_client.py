#!/usr/bin/env python3
"""A real IMAP client (Python's imaplib) against `mailcas imap`: logs in, lists,
examines, fetches the items the test names for every message, prints JSON."""
import base64, imaplib, json, sys

host, port, user, password, mailbox = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
items = sys.argv[6:]
out = {}
M = imaplib.IMAP4(host, port)
out['capability'] = M.capabilities and list(M.capabilities)
# a wrong password first: refused, the session goes on
try:
    M.login(user, password + 'x')
    out['badLogin'] = 'accepted'
except imaplib.IMAP4.error as e:
    out['badLogin'] = str(e)
typ, _ = M.authenticate('PLAIN', lambda _: ('\0%s\0%s' % (user, password)).encode())
out['auth'] = typ
typ, lst = M.list()
out['list'] = [x.decode() for x in lst]
typ, st = M.status(mailbox, '(MESSAGES UIDNEXT UIDVALIDITY)')
out['status'] = st[0].decode()
typ, d = M.select(mailbox, readonly=True)
out['exists'] = int(d[0])
typ, d = M.uid('search', None, 'ALL')
uids = [int(x) for x in d[0].split()]
out['uids'] = uids
# every message: the items asked, one FETCH each (imaplib gives literals as bytes)
fetched = {}
for uid in uids:
    typ, data = M.uid('fetch', str(uid), '(' + ' '.join(items) + ')')
    parts = []
    for x in data:
        if isinstance(x, tuple):
            parts.append({'head': x[0].decode('latin1'), 'literal': base64.b64encode(x[1]).decode()})
        elif x is not None:
            parts.append({'head': x.decode('latin1')})
    fetched[uid] = parts
out['fetched'] = fetched
# everything at once, as a mirroring client does
typ, data = M.fetch('1:*', '(UID BODY.PEEK[])')
out['bulk'] = {x[0].decode('latin1'): base64.b64encode(x[1]).decode() for x in data if isinstance(x, tuple)}
typ, data = M.search(None, 'LARGER', '2000')
out['larger'] = data[0].decode()
try:
    typ, d = M.store('1', '+FLAGS', '\\Seen')
    out['store'] = typ + ' ' + d[0].decode()
except imaplib.IMAP4.error as e:
    out['store'] = 'BAD ' + str(e)
M.logout()
print(json.dumps(out))
