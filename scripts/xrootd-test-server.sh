#!/usr/bin/env bash
# xrootd-test-server.sh: a real XRootD server with its HTTP interface (XrdHttp), on 127.0.0.1 ONLY, for tests.
#
# Installs nothing (see .ci/install-xrootd.sh). Needs Debian's xrootd >= 5 (xrootd-server,
# xrootd-server-plugins: libXrdHttp-5.so), perl (perl-base), util-linux (setpriv), curl or bash /dev/tcp,
# and openssl for --tls.
#
# Usage:
#   xrootd-test-server.sh start DIR [PORT] [options]   start serving DIR read-only; PORT 0 (default) = pick a free one
#   xrootd-test-server.sh DIR [PORT] [options]         same as start
#   xrootd-test-server.sh stop STATE_DIR [--keep]      stop the server started with that state dir (idempotent)
#   xrootd-test-server.sh status STATE_DIR             exit 0 and print the URL lines if it runs, exit 3 if not
#
# start options:
#   --port N          HTTP(S) port (same as the PORT argument; 0 = kernel picks a free port)
#   --root-port N     root:// port (default 0 = kernel picks; XRootD always opens one)
#   --tls             self-signed certificate for 127.0.0.1 / ::1 / localhost (openssl); the port then serves
#                     https:// (and still plain http://, XrdHttp sniffs the first bytes). Prints CA=<cert.pem>.
#   --state-dir D     where config, logs, pid file and certificate go (default: a new mktemp -d under $TMPDIR or
#                     /tmp). Starting again with the state dir of a running server prints its lines again and
#                     exits 0 (idempotent).
#   --user U          user to run as when started as root (default hepml-xrd, created with useradd --system if
#                     missing). xrootd refuses to run as root. Ignored when not root (runs as the caller).
#   --no-copy         if the run user cannot read DIR, fail instead of serving a copy of DIR (made in the state dir)
#   --watch-pid P     stop the server when process P exits (a detached watchdog; for test runners that may die)
#   --timeout S       seconds to wait for the server to answer (default 30)
#   --trace           verbose XrdHttp/xrootd logging (http.trace all, xrootd.trace all)
#   --extra LINE      extra config line, appended verbatim (repeatable), e.g. --extra 'xrd.timeout idle 5'
#
# On success (exit 0) start prints on stdout, once the server has answered a HEAD request with a Range header:
#   URL=http://127.0.0.1:PORT        (https:// with --tls)
#   PID=1234                         the xrootd process
#   STATE=/tmp/xrd-test.XXXX         pass to `stop`
#   LOG=/tmp/xrd-test.XXXX/log/hepml/xrootd.log
#   ROOT_URL=root://127.0.0.1:PORT2
#   CA=/tmp/xrd-test.XXXX/tls/cert.pem   (--tls only)
# and writes the same lines to STATE/server.env. Diagnostics go to stderr. On failure the log tail is printed,
# the process stopped and the state dir removed; exit status 1 (usage 2).
#
# How 127.0.0.1-only binding works: xrootd 5.5.3 always binds the wildcard address itself (no config option
# sets an address), but it accepts pre-bound sockets through systemd socket activation (sd_listen_fds). A perl
# launcher binds 127.0.0.1:PORT for both the root:// and the HTTP port, puts the listening sockets on fds 3
# and 4, sets LISTEN_FDS=2 / LISTEN_PID=$$, drops to the run user with setpriv and execs xrootd (same pid).
# See ../shared/reference/xrootd-http.md. Verify with: ss -ltnp | grep xrootd
set -euo pipefail

PROG=xrootd-test-server
SELF=$(cd "$(dirname "$0")" && pwd -P)/$(basename "$0")
log() { printf '%s: %s\n' "$PROG" "$*" >&2; }
die() { log "$*"; exit 1; }
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }

# --------------------------------------------------------------------------------------------------------
# helpers

# True when PID is a live (non-zombie) xrootd started with STATE's config. PID 1 here may not reap orphans,
# so a dead server can linger as a zombie: check /proc/PID/cmdline (empty for zombies), not kill -0.
is_our_server() {
  local pid=$1 state=$2 cmd
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  [ -r "/proc/$pid/cmdline" ] || return 1
  cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
  [[ "$cmd" == *xrootd*" -c $state/xrootd.cfg "* ]]
}

stop_pid() {
  local pid=$1 state=$2 i
  is_our_server "$pid" "$state" || return 0
  kill -TERM "$pid" 2>/dev/null || true
  kill -CONT "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do
    is_our_server "$pid" "$state" || return 0
    sleep 0.1
  done
  log "pid $pid did not stop after SIGTERM in 10 s: SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  for ((i = 0; i < 30; i++)); do
    is_our_server "$pid" "$state" || return 0
    sleep 0.1
  done
  log "pid $pid still there after SIGKILL"
  return 1
}

# Only ever delete a directory this script made: it holds our marker file.
remove_state() {
  local state=$1
  if [ -n "$state" ] && [ -d "$state" ] && [ -f "$state/.xrootd-test-server" ]; then
    rm -rf -- "$state"
  fi
}

cmd_stop() {
  local state="" keep=0
  while [ $# -gt 0 ]; do
    case "$1" in
      --keep) keep=1 ;;
      -h | --help) usage ;;
      -*) log "stop: unknown option $1"; exit 2 ;;
      *) [ -z "$state" ] || { log "stop: one state dir only"; exit 2; }; state=$1 ;;
    esac
    shift
  done
  [ -n "$state" ] || { log "stop: STATE_DIR missing"; exit 2; }
  local given=$state
  state=$(cd "$given" 2>/dev/null && pwd -P) || { log "stop: $given does not exist (already stopped)"; return 0; }
  [ -f "$state/.xrootd-test-server" ] || die "stop: $state is not a state dir of this script"
  local pid rc=0
  for f in "$state/watchdog.pid" "$state/xrootd.pid"; do
    [ -f "$f" ] || continue
    pid=$(cat "$f" 2>/dev/null || true)
    if [ "$f" = "$state/watchdog.pid" ]; then
      # the watchdog is a bash loop whose command line names this state dir
      if [[ "$pid" =~ ^[0-9]+$ ]] && [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "--watchdog $state "; then
        kill -TERM "$pid" 2>/dev/null || true
      fi
    else
      stop_pid "$pid" "$state" || rc=1
    fi
  done
  if [ "$keep" = 0 ] && [ "$rc" = 0 ]; then remove_state "$state"; fi
  [ "$rc" = 0 ] && log "stopped ($state)"
  return "$rc"
}

cmd_status() {
  local state=${1:-}
  [ -n "$state" ] || { log "status: STATE_DIR missing"; exit 2; }
  state=$(cd "$state" 2>/dev/null && pwd -P) || exit 3
  local pid
  pid=$(cat "$state/xrootd.pid" 2>/dev/null || true)
  if is_our_server "$pid" "$state" && [ -f "$state/server.env" ]; then
    cat "$state/server.env"
    return 0
  fi
  return 3
}

# Internal: `--watchdog STATE PARENT_PID`: stop the server when PARENT_PID goes away (or the server dies).
cmd_watchdog() {
  local state=$1 parent=$2 pid
  pid=$(cat "$state/xrootd.pid" 2>/dev/null || true)
  while kill -0 "$parent" 2>/dev/null && [ -d "/proc/$parent" ] && ! grep -q '^State:.*Z' "/proc/$parent/status" 2>/dev/null; do
    is_our_server "$pid" "$state" || exit 0
    sleep 1
  done
  rm -f "$state/watchdog.pid"
  bash "$SELF" stop "$state" >/dev/null 2>&1 || true
}

# One HEAD request with a Range header; prints the HTTP status code (000 when there is no answer).
probe() {
  local url=$1 ca=${2:-}
  if command -v curl >/dev/null 2>&1; then
    local args=(-sS -o /dev/null -I -H 'Range: bytes=0-0' --max-time 2 -w '%{http_code}')
    [ -n "$ca" ] && args+=(--cacert "$ca")
    curl "${args[@]}" "$url/" 2>/dev/null || true
  else
    # plain HTTP through bash; with TLS without curl we only check that the port accepts connections
    local hostport=${url#*://} code=000
    local port=${hostport##*:}
    if [ -n "$ca" ]; then
      (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && code=200
    else
      code=$(
        exec 3<>"/dev/tcp/127.0.0.1/$port" || exit 0
        printf 'HEAD / HTTP/1.1\r\nHost: 127.0.0.1\r\nRange: bytes=0-0\r\nConnection: close\r\n\r\n' >&3
        timeout 2 head -c 12 <&3 | sed -n 's/^HTTP\/1\.[01] \([0-9]*\).*/\1/p'
      ) 2>/dev/null || true
    fi
    printf '%s' "${code:-000}"
  fi
}

# --------------------------------------------------------------------------------------------------------
# start

cmd_start() {
  local dir="" port="" root_port=0 tls=0 state="" user=hepml-xrd copy=1 watch="" timeout=30 trace=0
  local extra=()
  while [ $# -gt 0 ]; do
    case "$1" in
      --tls) tls=1 ;;
      --port) port=${2:?--port needs a value}; shift ;;
      --port=*) port=${1#*=} ;;
      --root-port) root_port=${2:?--root-port needs a value}; shift ;;
      --state-dir) state=${2:?--state-dir needs a value}; shift ;;
      --user) user=${2:?--user needs a value}; shift ;;
      --no-copy) copy=0 ;;
      --watch-pid) watch=${2:?--watch-pid needs a value}; shift ;;
      --timeout) timeout=${2:?--timeout needs a value}; shift ;;
      --trace) trace=1 ;;
      --extra) extra+=("${2:?--extra needs a value}"); shift ;;
      -h | --help) usage ;;
      -*) log "unknown option $1"; exit 2 ;;
      *)
        if [ -z "$dir" ]; then dir=$1
        elif [ -z "$port" ]; then port=$1
        else log "too many arguments: $1"; exit 2; fi ;;
    esac
    shift
  done
  [ -n "$dir" ] || { log "DIR missing"; usage; }
  port=${port:-0}
  for v in "$port" "$root_port" "$timeout"; do
    [[ "$v" =~ ^[0-9]+$ ]] || { log "not a number: $v"; exit 2; }
  done
  [ "$port" -le 65535 ] && [ "$root_port" -le 65535 ] || { log "port out of range"; exit 2; }
  [ -z "$watch" ] || [[ "$watch" =~ ^[0-9]+$ ]] || { log "--watch-pid: not a pid: $watch"; exit 2; }
  [ -d "$dir" ] || die "not a directory: $dir"
  dir=$(cd "$dir" && pwd -P)

  local xrootd
  xrootd=$(command -v xrootd || true)
  [ -n "$xrootd" ] || die "xrootd not found (install: bash .ci/install-xrootd.sh)"
  local libdir found=0
  for libdir in /usr/lib/x86_64-linux-gnu /usr/lib/aarch64-linux-gnu /usr/lib64 /usr/lib /usr/local/lib /usr/local/lib64; do
    if compgen -G "$libdir/libXrdHttp-5.so*" >/dev/null || compgen -G "$libdir/libXrdHttp.so*" >/dev/null; then found=1; break; fi
  done
  [ "$found" = 1 ] || die "libXrdHttp-5.so not found (package xrootd-server-plugins; bash .ci/install-xrootd.sh)"
  command -v perl >/dev/null 2>&1 || die "perl not found"
  [ "$tls" = 0 ] || command -v openssl >/dev/null 2>&1 || die "--tls needs openssl"

  # Idempotent restart with a given state dir.
  if [ -n "$state" ] && [ -f "$state/.xrootd-test-server" ]; then
    state=$(cd "$state" && pwd -P)
    if cmd_status "$state" >/dev/null 2>&1; then
      log "already running ($state)"
      cat "$state/server.env"
      return 0
    fi
    log "stale state dir $state (server not running): starting afresh"
    cmd_stop "$state" --keep >/dev/null 2>&1 || true
    find "$state" -mindepth 1 -maxdepth 1 ! -name .xrootd-test-server -exec rm -rf -- {} +
  elif [ -n "$state" ]; then
    mkdir -p -- "$state"
    [ -z "$(ls -A -- "$state")" ] || die "--state-dir $state exists and is not empty (and not ours)"
    state=$(cd "$state" && pwd -P)
    : >"$state/.xrootd-test-server"
  else
    state=$(mktemp -d "${TMPDIR:-/tmp}/xrd-test.XXXXXX")
    state=$(cd "$state" && pwd -P)
    : >"$state/.xrootd-test-server"
  fi
  local started=0
  # On any failure from here on: stop what we started and remove the state dir.
  # shellcheck disable=SC2064
  trap "rc=\$?; if [ \$rc -ne 0 ] && [ $started = 0 ]; then bash \"$SELF\" stop \"$state\" >/dev/null 2>&1 || remove_state \"$state\"; fi" EXIT

  # Run user: xrootd refuses to run as root.
  local runas=()
  if [ "$(id -u)" -eq 0 ]; then
    if ! getent passwd "$user" >/dev/null; then
      log "creating system user $user"
      useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$user" 2>/dev/null ||
        getent passwd "$user" >/dev/null || die "cannot create user $user"
    fi
    local uid gid
    uid=$(id -u "$user")
    gid=$(id -g "$user")
    [ "$uid" -ne 0 ] || die "--user $user is root; xrootd refuses to run as root"
    runas=(setpriv --reuid="$uid" --regid="$gid" --clear-groups --)
    command -v setpriv >/dev/null 2>&1 || die "setpriv (util-linux) not found"
    # The run user must be able to read every file (through symlinks too).
    if ! "${runas[@]}" test -r "$dir" -a -x "$dir" 2>/dev/null ||
      [ -n "$("${runas[@]}" find -L "$dir" ! -readable -print -quit 2>/dev/null || echo unreadable)" ]; then
      [ "$copy" = 1 ] || die "user $user cannot read $dir (and --no-copy was given)"
      log "user $user cannot read all of $dir: serving a copy in $state/data"
      cp -RL -- "$dir" "$state/data"
      dir=$state/data
    fi
  fi

  mkdir -p "$state/admin" "$state/log"
  local ca=""
  if [ "$tls" = 1 ]; then
    mkdir -p "$state/tls"
    local sslconf=$state/tls/openssl.cnf
    cat >"$sslconf" <<'EOF'
[req]
distinguished_name = dn
x509_extensions = v3
prompt = no
[dn]
CN = 127.0.0.1
O = hep-ml xrootd test server
[v3]
basicConstraints = critical, CA:TRUE
keyUsage = critical, digitalSignature, keyCertSign
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
subjectAltName = IP:127.0.0.1, IP:::1, DNS:localhost
EOF
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 7 \
      -keyout "$state/tls/key.pem" -out "$state/tls/cert.pem" -config "$sslconf" >/dev/null 2>"$state/tls/openssl.err" ||
      { cat "$state/tls/openssl.err" >&2; die "openssl could not make the certificate"; }
    chmod 600 "$state/tls/key.pem"
    chmod 644 "$state/tls/cert.pem"
    ca=$state/tls/cert.pem
  fi

  {
    echo "# written by $PROG (ports filled in by its launcher, which binds them on 127.0.0.1)"
    echo "all.role server"
    echo "all.export / r/o"
    echo "oss.localroot $dir"
    echo "all.adminpath $state/admin"
    echo "all.pidpath $state/admin"
    echo "xrd.port @ROOT_PORT@"
    echo "xrd.protocol http:@HTTP_PORT@ libXrdHttp.so"
    echo "http.listingdeny no"
    if [ "$tls" = 1 ]; then
      echo "xrd.tls $state/tls/cert.pem $state/tls/key.pem"
      echo "xrd.tlsca noverify"
    fi
    if [ "$trace" = 1 ]; then
      echo "http.trace all"
      echo "xrootd.trace all"
    fi
    local l
    for l in "${extra[@]}"; do echo "$l"; done
  } >"$state/xrootd.cfg.in"

  if [ ${#runas[@]} -gt 0 ]; then
    chown -R "$user:" "$state"
    chmod 755 "$state"
    chmod 700 "$state/admin"
  fi

  # The launcher: bind both ports on 127.0.0.1, write the config and ports, then exec xrootd on fds 3 and 4.
  # shellcheck disable=SC2016
  local launcher='
use strict; use warnings; use Socket; use POSIX ();
my ($state, $root_port, $http_port, @cmd) = @ARGV;
$^F = 255;   # keep the sockets open across exec (no close-on-exec)
sub lsock { my $p = shift;
  socket(my $s, PF_INET, SOCK_STREAM, getprotobyname("tcp")) or die "socket: $!\n";
  setsockopt($s, SOL_SOCKET, SO_REUSEADDR, 1) or die "setsockopt: $!\n";
  bind($s, pack_sockaddr_in($p, inet_aton("127.0.0.1"))) or die "bind 127.0.0.1:$p: $!\n";
  listen($s, 128) or die "listen: $!\n";
  return $s; }
my $r = lsock($root_port); my $h = lsock($http_port);
my ($rp) = unpack_sockaddr_in(getsockname($r)); my ($hp) = unpack_sockaddr_in(getsockname($h));
# sockets onto fds 3 (root://) and 4 (http), in two steps so that neither is overwritten
POSIX::dup2(fileno($r), 100) or die "dup2: $!\n"; POSIX::dup2(fileno($h), 101) or die "dup2: $!\n";
POSIX::dup2(100, 3) or die "dup2: $!\n"; POSIX::dup2(101, 4) or die "dup2: $!\n";
POSIX::close(100); POSIX::close(101);
for my $fd (fileno($r), fileno($h)) { POSIX::close($fd) if $fd > 4; }
open(my $in, "<", "$state/xrootd.cfg.in") or die "$state/xrootd.cfg.in: $!\n";
local $/; my $cfg = <$in>; close $in;
$cfg =~ s/\@ROOT_PORT\@/$rp/g; $cfg =~ s/\@HTTP_PORT\@/$hp/g;
open(my $out, ">", "$state/xrootd.cfg") or die "$state/xrootd.cfg: $!\n"; print $out $cfg; close $out;
open(my $pf, ">", "$state/ports.tmp") or die; print $pf "$rp $hp\n"; close $pf;
rename("$state/ports.tmp", "$state/ports") or die "rename: $!\n";
POSIX::setsid();
$ENV{LISTEN_FDS} = 2; $ENV{LISTEN_PID} = $$; delete $ENV{LISTEN_FDNAMES};
chdir($state) or die "chdir $state: $!\n";
exec(@cmd) or die "exec $cmd[0]: $!\n";
'
  local t0
  t0=$(date +%s%N)
  (
    cd "$state"
    exec perl -e "$launcher" "$state" "$root_port" "$port" \
      "${runas[@]}" "$xrootd" -c "$state/xrootd.cfg" -n hepml -l "$state/log/xrootd.log" \
      </dev/null >>"$state/log/launcher.out" 2>&1
  ) &
  local pid=$!
  echo "$pid" >"$state/xrootd.pid"

  # Wait for the ports, then for an HTTP answer.
  local deadline=$((SECONDS + timeout)) ports="" scheme=http
  [ "$tls" = 1 ] && scheme=https
  while :; do
    if [ -z "$ports" ] && [ -f "$state/ports" ]; then ports=$(cat "$state/ports"); fi
    if ! [ -d "/proc/$pid" ] || grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null; then
      log "xrootd exited during startup"
      tail -n 30 "$state/log/launcher.out" >&2 2>/dev/null || true
      local lf
      for lf in "$state"/log/*/xrootd.log "$state"/log/xrootd.log; do [ -f "$lf" ] && tail -n 30 "$lf" >&2; done
      exit 1
    fi
    if [ -n "$ports" ]; then
      local code
      code=$(probe "$scheme://127.0.0.1:${ports#* }" "$ca")
      if [[ "$code" =~ ^[1-5][0-9][0-9]$ ]] && [ "$code" != 000 ]; then break; fi
    fi
    if [ $SECONDS -ge $deadline ]; then
      log "no answer after $timeout s"
      local lf
      for lf in "$state"/log/*/xrootd.log; do [ -f "$lf" ] && tail -n 30 "$lf" >&2; done
      exit 1
    fi
    sleep 0.1
  done
  is_our_server "$pid" "$state" || die "pid $pid is not the xrootd process (launcher problem?)"

  local rp=${ports% *} hp=${ports#* } logfile
  logfile=$(ls "$state"/log/*/xrootd.log 2>/dev/null | head -n 1 || true)
  {
    echo "URL=$scheme://127.0.0.1:$hp"
    echo "PID=$pid"
    echo "STATE=$state"
    echo "LOG=${logfile:-$state/log}"
    echo "ROOT_URL=root://127.0.0.1:$rp"
    [ -z "$ca" ] || echo "CA=$ca"
  } >"$state/server.env.tmp"
  mv "$state/server.env.tmp" "$state/server.env"
  started=1
  trap - EXIT

  if [ -n "$watch" ]; then
    setsid bash "$SELF" --watchdog "$state" "$watch" </dev/null >/dev/null 2>&1 &
    echo $! >"$state/watchdog.pid"
  fi
  cat "$state/server.env"
  log "up in $(( ($(date +%s%N) - t0) / 1000000 )) ms (pid $pid, ${runas[*]:+as $user, }serving $dir)"
}

# --------------------------------------------------------------------------------------------------------

case "${1:-}" in
  start) shift; cmd_start "$@" ;;
  stop) shift; cmd_stop "$@" ;;
  status) shift; cmd_status "$@" ;;
  --watchdog) shift; cmd_watchdog "$1" "$2" ;;
  "" | -h | --help | help) usage ;;
  *) cmd_start "$@" ;;
esac
