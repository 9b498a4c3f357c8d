#!/usr/bin/env bash
# What the tests need beyond npm packages. Installed here when missing (as root, or with
# password-less sudo, from Debian's packages); otherwise one line says what to install.
set -euo pipefail
need=()
# chromium: the HTML report in a real browser; swaks and python3: real LMTP clients; postfix: a real MTA delivering
if [ -z "${CHROMIUM_PATH:-}" ] && ! command -v chromium >/dev/null 2>&1; then need+=(chromium); fi
command -v swaks >/dev/null 2>&1 || need+=(swaks)
command -v python3 >/dev/null 2>&1 || need+=(python3)
# mbsync (isync): a real IMAP client mirroring mailboxes from the IMAP front
command -v mbsync >/dev/null 2>&1 || need+=(isync)
# fetchmail: a real IMAP client that marks what it fetched \Seen (and so needs a read-write front)
command -v fetchmail >/dev/null 2>&1 || need+=(fetchmail)
# offlineimap3: another real two-way IMAP synchroniser
command -v offlineimap >/dev/null 2>&1 || need+=(offlineimap3)
# neomutt in tmux: a real mail client driven by keystrokes
command -v neomutt >/dev/null 2>&1 || need+=(neomutt)
command -v tmux >/dev/null 2>&1 || need+=(tmux)
# openssl: password hashes and a test certificate; curl: its IMAP client (and HTTP checks)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v curl >/dev/null 2>&1 || need+=(curl)
# Postfix is only usable by the tests as root (its own users, chroot); skip it for other users
if [ "$(id -u)" = 0 ] && [ ! -x /usr/sbin/postfix ]; then need+=(postfix); fi
# Dovecot's IMAP: the oracle the FETCH answers are compared with (run as root: it drops to nobody)
if [ "$(id -u)" = 0 ] && [ ! -x /usr/lib/dovecot/imap ]; then need+=(dovecot-imapd); fi
[ ${#need[@]} -eq 0 ] && exit 0
run_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo "$@"; else return 1; fi
}
if command -v apt-get >/dev/null 2>&1 && run_root true; then
  echo "mailcas tests: installing ${need[*]} from Debian's packages" >&2
  export DEBIAN_FRONTEND=noninteractive
  # postfix would otherwise ask what kind of mail system this is
  echo "postfix postfix/main_mailer_type select No configuration" | run_root debconf-set-selections 2>/dev/null || true
  run_root apt-get update -qq
  run_root apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
else
  echo "mailcas tests need ${need[*]}: install it (apt-get install ${need[*]}) and run npm test again" >&2
  exit 1
fi
