#!/usr/bin/env bash
# ceph-rgw-down.sh — stop the cluster started by ceph-rgw-up.sh and delete its
# state dir. Kills only the PIDs recorded in $CEPH_RGW_DIR/run/*.pid (and only
# if that PID is still the expected ceph program). Safe to run repeatedly.
#
#   CEPH_RGW_DIR   state dir used by ceph-rgw-up.sh   [/tmp/ceph-rgw]
set -uo pipefail

DIR=${CEPH_RGW_DIR:-/tmp/mailcas-ceph-rgw}
log() { echo "[ceph-rgw-down $(date +%T)] $*" >&2; }

if [ ! -e "$DIR" ]; then log "nothing to do ($DIR does not exist)"; exit 0; fi
if [ ! -f "$DIR/.ceph-rgw-up" ]; then
  log "refusing: $DIR was not created by ceph-rgw-up.sh (no marker file)"; exit 1
fi

# stop <pidfile> <expected /proc/PID/comm>: SIGTERM, wait up to 20 s, then SIGKILL
stop() {
  local f=$DIR/run/$1.pid comm=$2 pid i
  pid=$(cat "$f" 2>/dev/null) || return 0
  [ -n "$pid" ] || return 0
  if [ "$(cat /proc/"$pid"/comm 2>/dev/null)" != "$comm" ]; then
    log "$1: pid $pid is not running (or is not $comm); skipping"; return 0
  fi
  kill -TERM "$pid" 2>/dev/null
  for i in $(seq 100); do
    [ "$(cat /proc/"$pid"/comm 2>/dev/null)" = "$comm" ] || { log "$1 (pid $pid) stopped"; return 0; }
    sleep 0.2
  done
  log "$1 (pid $pid) ignored SIGTERM for 20 s: SIGKILL"
  kill -KILL "$pid" 2>/dev/null
  sleep 0.5
}

# Order matters: clients first, the mon last (an OSD whose mon is gone waits
# osd_mon_shutdown_timeout before exiting).
stop client.rgw.a radosgw
stop mgr.x ceph-mgr
stop osd.0 ceph-osd
stop mon.a ceph-mon

rm -rf -- "$DIR"
log "removed $DIR"
