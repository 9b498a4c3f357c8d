#!/usr/bin/env bash
# ceph-rgw-up.sh — bring up a throw-away single-node Ceph cluster (1 mon, 1 osd,
# optional mgr) plus a RADOS Gateway (S3 API) on 127.0.0.1, as plain root
# processes in one state directory. No systemd, no network other than loopback.
#
# Tested with Debian 12 (bookworm) packages ceph-mon / ceph-osd / radosgw
# 16.2.15+ds-0+deb12u2 (Pacific).
#
# Usage:   set -a; eval "$(./ceph-rgw-up.sh)"; set +a   # exports S3_ENDPOINT, S3_ACCESS_KEY, ...
#          ./ceph-rgw-down.sh                           # stop everything, delete the state dir
# (ceph-rgw-down.sh must sit next to this script: it is used to clear a stale state dir)
#
# Idempotent: if a cluster started by this script is already running and the
# S3 endpoint answers, it only prints the credentials again. A stale/broken
# state dir (e.g. after a reboot) is torn down and rebuilt from scratch.
#
# Settings (environment variables, all optional):
#   CEPH_RGW_DIR        state dir (config, keyring, mon/osd data, logs, pids) [/tmp/ceph-rgw]
#   CEPH_RGW_PORT       S3 port on 127.0.0.1                                  [7480]
#   CEPH_MON_PORT       mon msgr2 port; msgr1 port is CEPH_MON_PORT+1          [40300]
#   CEPH_OSD_STORE      bluestore (on a sparse file) | memstore (RAM only)     [bluestore]
#   CEPH_OSD_SIZE_GB    size of the sparse bluestore file / memstore capacity  [10]
#   CEPH_WITH_MGR       1 = also run ceph-mgr (only for `ceph -s` stats)       [0]
#   CEPH_RGW_ACCESS_KEY / CEPH_RGW_SECRET_KEY  credentials of the S3 user  [random]
#   CEPH_RGW_NO_INSTALL 1 = never apt-get install missing packages             [0]
#
# stdout: only KEY=VALUE lines (S3_ENDPOINT, S3_REGION, S3_ACCESS_KEY, S3_SECRET_KEY,
#         CEPH_CONF); the same lines are saved to $CEPH_RGW_DIR/env.
# stderr: progress and, on failure, the tail of the daemon logs.
set -euo pipefail

DIR=${CEPH_RGW_DIR:-/tmp/mailcas-ceph-rgw}
RGW_PORT=${CEPH_RGW_PORT:-7481}
MON_PORT=${CEPH_MON_PORT:-40310}
MON_PORT_V1=$((MON_PORT + 1))
OSD_STORE=${CEPH_OSD_STORE:-bluestore}
OSD_SIZE_BYTES=$(( ${CEPH_OSD_SIZE_GB:-10} * 1024 * 1024 * 1024 ))
WITH_MGR=${CEPH_WITH_MGR:-0}
CONF=$DIR/ceph.conf
MARKER=$DIR/.ceph-rgw-up          # lets ceph-rgw-down.sh refuse to rm -rf a foreign dir
T_START=$(date +%s.%N)

log() { echo "[ceph-rgw-up +$(awk -v a="$T_START" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')s] $*" >&2; }
die() {
  log "ERROR: $*"
  for f in "$DIR"/log/*.log; do [ -f "$f" ] && { echo "---- tail $f" >&2; tail -n 15 "$f" >&2; }; done
  log "state left in $DIR for inspection; run ceph-rgw-down.sh to clean up"
  exit 1
}
# ceph CLI with a bounded wait (the CLI otherwise blocks forever without a mon)
cephc() { timeout 60 ceph -c "$CONF" --connect-timeout 30 "$@"; }
pid_alive() {  # pid_alive <pidfile> <expected comm>
  local p; p=$(cat "$1" 2>/dev/null) || return 1
  [ -n "$p" ] && [ "$(cat /proc/"$p"/comm 2>/dev/null)" = "$2" ]
}

case "$OSD_STORE" in bluestore|memstore) ;; *) die "CEPH_OSD_STORE must be bluestore or memstore";; esac

# ---------------------------------------------------------------- 0. packages
need=()
command -v ceph-mon >/dev/null || need+=(ceph-mon)
command -v ceph-osd >/dev/null || need+=(ceph-osd)
command -v radosgw  >/dev/null || need+=(radosgw)
[ "$WITH_MGR" = 1 ] && { command -v ceph-mgr >/dev/null || need+=(ceph-mgr); }
if [ ${#need[@]} -gt 0 ]; then
  [ "${CEPH_RGW_NO_INSTALL:-0}" = 1 ] && die "missing packages: ${need[*]}"
  [ "$(id -u)" = 0 ] || die "missing packages ${need[*]} and not root"
  log "installing ${need[*]} (apt-get, --no-install-recommends: ~61 MB download, ~270 MB on disk)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
fi

# ---------------------------------------------------------------- 1. already up?
# (the endpoint is taken from the saved env file, i.e. the port it was started with)
if [ -f "$DIR/env" ] && pid_alive "$DIR/run/mon.a.pid" ceph-mon && pid_alive "$DIR/run/osd.0.pid" ceph-osd \
   && pid_alive "$DIR/run/client.rgw.a.pid" radosgw \
   && curl -fsS -o /dev/null --max-time 5 "$(sed -n 's/^S3_ENDPOINT=//p' "$DIR/env")/" 2>/dev/null; then
  log "already running (state dir $DIR)"
  cat "$DIR/env"
  exit 0
fi
if [ -e "$DIR" ]; then
  log "stale state dir $DIR: tearing it down first"
  CEPH_RGW_DIR=$DIR bash "$(dirname "$0")/ceph-rgw-down.sh" >&2 || die "could not clean $DIR"
fi

for port in "$MON_PORT" "$MON_PORT_V1" "$RGW_PORT"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then die "127.0.0.1:$port is already in use"; fi
done

# ---------------------------------------------------------------- 2. config
mkdir -p "$DIR"/{run,log,mon.a,osd.0,rgw.a}
touch "$MARKER"
FSID=$(cat /proc/sys/kernel/random/uuid)
OSD_UUID=$(cat /proc/sys/kernel/random/uuid)
MON_ADDRS="[v2:127.0.0.1:$MON_PORT,v1:127.0.0.1:$MON_PORT_V1]"

if [ "$OSD_STORE" = bluestore ]; then
  OSD_STORE_CONF="osd objectstore = bluestore
# BlueStore on a regular (sparse) file instead of a raw device:
# block path defaults to <osd data>/block; create it with this size at mkfs.
bluestore block create = true
bluestore block size = $OSD_SIZE_BYTES
# keep the OSD small (default target is 4 GiB; minimum allowed is 896 MiB)
osd memory target = 1073741824"
else
  OSD_STORE_CONF="osd objectstore = memstore
# memstore: everything in RAM (test-only backend); capacity it reports
memstore device bytes = $OSD_SIZE_BYTES"
fi

cat > "$CONF" <<EOF
# generated by ceph-rgw-up.sh — throw-away single-node test cluster
[global]
fsid = $FSID
mon host = $MON_ADDRS
# everything on loopback only
public addr = 127.0.0.1
cluster addr = 127.0.0.1
run dir = $DIR/run
log file = $DIR/log/\$name.log
keyring = $DIR/keyring
# one OSD: a single replica is all we can have (with the default size 3 /
# min_size 2 the PGs never become active and radosgw hangs at startup)
osd pool default size = 1
osd pool default min size = 1
# silence HEALTH_WARN POOL_NO_REDUNDANCY
mon warn on pool no redundancy = false
# small PG count: 7 RGW pools x 8 = 56 PGs on the one OSD. Not strictly needed
# (default 32/pool = 224 PGs still fits mon_max_pg_per_osd = 250) but lighter,
# and leaves room for more pools
osd pool default pg num = 8
osd pool default pgp num = 8
# no mgr by default, so no autoscaler; with a mgr keep it from resizing pools
osd pool default pg autoscale mode = off
# replicas may land on the same host (irrelevant for size 1, needed if size is raised)
osd crush chooseleaf type = 0
# all clients are 16.2.15: use the secure global_id reclaim (also silences HEALTH_WARN)
auth allow insecure global id reclaim = false
# don't let the mon stop itself on a fullish CI disk (default: crit at 5% free)
mon data avail crit = 1
mon data avail warn = 2
mon allow pool delete = true

[mon.a]
mon data = $DIR/mon.a
pid file = $DIR/run/\$name.pid
admin socket = $DIR/run/\$name.asok

[mgr.x]
mgr data = $DIR/mgr.x
pid file = $DIR/run/\$name.pid
admin socket = $DIR/run/\$name.asok

[osd.0]
osd data = $DIR/osd.0
pid file = $DIR/run/\$name.pid
admin socket = $DIR/run/\$name.asok
$OSD_STORE_CONF

[client.rgw.a]
# beast HTTP frontend on loopback; tcp_nodelay=1 removes ~40 ms Nagle/delayed-ACK
# stalls on small responses
rgw frontends = beast endpoint=127.0.0.1:$RGW_PORT tcp_nodelay=1
rgw data = $DIR/rgw.a
pid file = $DIR/run/\$name.pid
admin socket = $DIR/run/\$name.asok
EOF

# ---------------------------------------------------------------- 3. keys + mon
# One keyring for all entities; ceph-mon --mkfs imports every key in it.
KR=$DIR/keyring
ceph-authtool --create-keyring "$KR" --gen-key -n mon. --cap mon 'allow *' >/dev/null
ceph-authtool "$KR" --gen-key -n client.admin \
  --cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' --cap mds 'allow *' >/dev/null
ceph-authtool "$KR" --gen-key -n osd.0 \
  --cap mon 'allow profile osd' --cap mgr 'allow profile osd' --cap osd 'allow *' >/dev/null
ceph-authtool "$KR" --gen-key -n mgr.x \
  --cap mon 'allow profile mgr' --cap osd 'allow *' --cap mds 'allow *' >/dev/null
ceph-authtool "$KR" --gen-key -n client.rgw.a \
  --cap mon 'allow rw' --cap osd 'allow rwx' --cap mgr 'allow rw' >/dev/null
chmod 600 "$KR"

monmaptool --create --fsid "$FSID" --addv a "$MON_ADDRS" "$DIR/monmap" >/dev/null
ceph-mon -c "$CONF" -i a --mkfs --monmap "$DIR/monmap" --keyring "$KR" 2>>"$DIR/log/setup.log" \
  || die "ceph-mon --mkfs failed"
ceph-mon -c "$CONF" -i a || die "ceph-mon failed to start"     # daemonizes, writes run/mon.a.pid
cephc mon stat >/dev/null 2>&1 || die "mon did not come up"
log "mon up"

# ---------------------------------------------------------------- 4. mgr (optional)
if [ "$WITH_MGR" = 1 ]; then
  mkdir -p "$DIR/mgr.x"
  ceph-mgr -c "$CONF" -i x || die "ceph-mgr failed to start"
  log "mgr started"
fi

# ---------------------------------------------------------------- 5. osd
cephc osd new "$OSD_UUID" 0 >/dev/null || die "ceph osd new failed"
ceph-osd -c "$CONF" -i 0 --mkfs --osd-uuid "$OSD_UUID" >>"$DIR/log/setup.log" 2>&1 \
  || die "ceph-osd --mkfs failed"
ceph-osd -c "$CONF" -i 0 2>>"$DIR/log/setup.log" || die "ceph-osd failed to start"
for _ in $(seq 120); do
  cephc osd stat -f json 2>/dev/null | grep -q '"num_up_osds":1' && break
  sleep 0.5
done
cephc osd stat -f json | grep -q '"num_up_osds":1' || die "osd.0 did not come up"
log "osd up ($OSD_STORE)"

# ---------------------------------------------------------------- 6. rgw
# Pre-create RGW's pools. RGW would create the first four itself, one after the
# other at startup (~2 s each), and the bucket pools lazily on the first
# CreateBucket / multipart upload (stalling that request ~2 s). Running the
# commands in parallel lets the mon batch them into a couple of osdmap epochs.
pids=()
for pool in .rgw.root default.rgw.log default.rgw.control default.rgw.meta \
            default.rgw.buckets.index default.rgw.buckets.data default.rgw.buckets.non-ec; do
  ( cephc osd pool create "$pool" 8 8 replicated >/dev/null 2>&1 \
    && cephc osd pool application enable "$pool" rgw >/dev/null 2>&1 ) &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || die "pool creation failed"; done
log "pools created"
radosgw -c "$CONF" -n client.rgw.a || die "radosgw failed to start"
for _ in $(seq 240); do
  curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$RGW_PORT/" 2>/dev/null && break
  sleep 0.5
done
curl -fsS -o /dev/null --max-time 5 "http://127.0.0.1:$RGW_PORT/" || die "radosgw not answering on :$RGW_PORT"
log "radosgw up"

# ---------------------------------------------------------------- 7. S3 user
# random hex keys (od reads a fixed byte count: no SIGPIPE under pipefail)
AK=${CEPH_RGW_ACCESS_KEY:-$(od -An -tx1 -N10 /dev/urandom | tr -d ' \n' | tr a-f A-F)}
SK=${CEPH_RGW_SECRET_KEY:-$(od -An -tx1 -N20 /dev/urandom | tr -d ' \n')}
timeout 60 radosgw-admin -c "$CONF" user create --uid=s3test --display-name="S3 test user" \
  --access-key="$AK" --secret-key="$SK" >/dev/null 2>>"$DIR/log/setup.log" || die "radosgw-admin user create failed"
# signed request as that user (curl >= 7.75 has SigV4); proves auth works end to end
# (curl 7.88 does not add x-amz-content-sha256 itself; RGW needs it for SigV4)
code=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 10 --user "$AK:$SK" \
  --aws-sigv4 "aws:amz:us-east-1:s3" -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" \
  "http://127.0.0.1:$RGW_PORT/") || code=000
[ "$code" = 200 ] || die "signed ListBuckets returned HTTP $code"

cat > "$DIR/env" <<EOF
S3_ENDPOINT=http://127.0.0.1:$RGW_PORT
S3_REGION=us-east-1
S3_ACCESS_KEY=$AK
S3_SECRET_KEY=$SK
CEPH_CONF=$CONF
EOF
chmod 600 "$DIR/env"
log "ready (state dir $DIR)"
cat "$DIR/env"
