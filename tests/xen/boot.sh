#!/usr/bin/env bash
# boot.sh - boot real Xen 4.17 + a Debian 6.1 PV dom0 under QEMU and run ONE
# command in dom0, chrooted into the host's / (virtio-9p, read-only), with
# cwd = the caller's $PWD. The command's stdout/stderr come back on this
# script's stdout/stderr and its exit code becomes this script's exit code.
#
# usage: boot.sh [options] [--] COMMAND [ARGS...]
#        boot.sh [options] --script FILE [ARGS...]     (FILE is copied into the run dir)
# options:
#   --timeout S        kill QEMU after S seconds of running (default 600) -> exit 124
#   --verbose          stream the whole serial console (Xen + dom0) to stderr, timestamped
#   --quiet            no progress lines on stderr (failures are still reported)
#   --follow           stream the command's stdout/stderr as dom0 writes them (the
#                      run dir is 9p without caching), instead of at the end: a
#                      killed or timed-out run has shown everything it printed
#   --rw DIR           export host DIR read-write at the same path (repeatable); by
#                      default only the per-run dir is writable. Needed for anything
#                      under the host's /tmp, which dom0 covers with its own tmpfs.
#   --dom0-extra ARGS  more dom0 kernel args, e.g. "xen.fifo_events=0" (2-level ABI)
#   --xen-extra ARGS   more hypervisor args
#   --env NAME[=VAL]   pass NAME (host value, or VAL) into the command (repeatable)
#   --deno             put the host's Deno binary on the guest PATH (found by deno.sh),
#                      export XENVM_DENO=<its path> and DENO_DIR=<host DENO_DIR> (read-only:
#                      npm: packages cached on the host resolve offline in dom0)
#   --script FILE      run FILE with bash instead of COMMAND (remaining args go to it)
#   --tcg | --kvm      force the accelerator (default: KVM only with kvm_intel/kvm_amd)
#   --mem MB           QEMU RAM (default 2048; dom0 gets MB-512)   --smp N (default 2)
#   --no-install       do not run install.sh even if the cache looks stale
# env: XENVM_PASSENV   host variables passed into the command (default "CI NO_COLOR");
#                      nothing else of the host environment reaches it
#      XENVM_DOM0_EXTRA, XENVM_XEN_EXTRA   defaults for --dom0-extra/--xen-extra
#      XENVM_TIMEOUT   default for --timeout       XENVM_CPU   QEMU -cpu override
#      XENVM_9P_CACHE  9p cache mode of the host root (default loose)
# exit: the command's own code; 124 timeout ("xen-vm: timed out after N s");
#       125 no result (boot failure); 2 usage error.
#
# In dom0 the command runs as root under /bin/bash with HOME=TMPDIR=/tmp (a tmpfs),
# XENVM=1, /dev/xen/{evtchn,privcmd,gntdev,gntalloc,xenbus}, /proc/xen (xenfs).
# No xenstored, no network. Runs install.sh first when .cache/ready is missing or
# older than the harness scripts (so the first run needs root + apt).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="$HERE/.cache"
ORIG_ARGS=("$@")
ACCEL=auto VERBOSE=0 QUIET=0 FOLLOW=0 TIMEOUT="${XENVM_TIMEOUT:-600}" MEM=2048 SMP=2 INSTALL=1 USE_DENO=0
DOM0_EXTRA="${XENVM_DOM0_EXTRA:-}" XEN_EXTRA="${XENVM_XEN_EXTRA:-}" SCRIPT=""
RW_DIRS=() ENV_LINES=() FPIDS=()

usage() { sed -n '2,40p' "$0"; }
bad() { echo "xen-vm: $*" >&2; exit 2; }
need() { [ $# -ge 2 ] || bad "$1 needs a value"; }
while [ $# -gt 0 ]; do
  case "$1" in
    --timeout) need "$@"; TIMEOUT=$2; shift 2 ;;
    --verbose) VERBOSE=1; shift ;;
    --quiet) QUIET=1; shift ;;
    --follow) FOLLOW=1; shift ;;
    --rw) need "$@"; [ -d "$2" ] || bad "--rw $2: not a directory"; RW_DIRS+=("$(cd "$2" && pwd -P)"); shift 2 ;;
    --dom0-extra) need "$@"; DOM0_EXTRA="$DOM0_EXTRA $2"; shift 2 ;;
    --xen-extra) need "$@"; XEN_EXTRA="$XEN_EXTRA $2"; shift 2 ;;
    --env) need "$@"
      case "$2" in
        *=*) ENV_LINES+=("$(printf 'export %s=%q' "${2%%=*}" "${2#*=}")") ;;
        *) [ -n "${!2+x}" ] && ENV_LINES+=("$(printf 'export %s=%q' "$2" "${!2}")") ;;
      esac; shift 2 ;;
    --deno) USE_DENO=1; shift ;;
    --script) need "$@"; [ -f "$2" ] || bad "--script $2: no such file"; SCRIPT=$2; shift 2; break ;;
    --tcg) ACCEL=tcg; shift ;;
    --kvm) ACCEL=kvm; shift ;;
    --mem) need "$@"; MEM=$2; shift 2 ;;
    --smp) need "$@"; SMP=$2; shift 2 ;;
    --no-install) INSTALL=0; shift ;;
    -h|--help) usage; exit 0 ;;
    --) shift; break ;;
    -*) bad "unknown option $1 (see --help)" ;;
    *) break ;;
  esac
done
[[ "$TIMEOUT" =~ ^[0-9]+$ ]] && [ "$TIMEOUT" -gt 0 ] || bad "--timeout wants a positive number of seconds"
[ -n "$SCRIPT" ] || [ $# -gt 0 ] || set -- sh -c 'echo "hello from dom0: $(uname -r)"; ls /dev/xen; cat /proc/xen/capabilities'

T0=$EPOCHREALTIME
el() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN{printf "%.2f", b-a}'; }
log() { [ "$QUIET" = 1 ] || printf '[xen-vm %6ss] %s\n' "$(el "$T0")" "$*" >&2; }

# ------------------------------------------------------------- prerequisites
stale=0
[ -f "$CACHE/ready" ] || stale=1
for f in install.sh init.sh cross_check.c build_cross_check.sh; do
  [ "$stale" = 1 ] || [ ! "$HERE/$f" -nt "$CACHE/ready" ] || stale=1
done
if [ "$stale" = 1 ]; then
  [ "$INSTALL" = 1 ] || { echo "xen-vm: $CACHE is not prepared; run tests/xen/install.sh" >&2; exit 125; }
  log "running install.sh"
  "$HERE/install.sh" || exit 125
fi
for f in xen vmlinuz initrd.cpio.gz; do
  [ -e "$CACHE/$f" ] || { echo "xen-vm: missing $CACHE/$f; run tests/xen/install.sh" >&2; exit 125; }
done
command -v qemu-system-x86_64 >/dev/null || { echo "xen-vm: qemu-system-x86_64 not found; run tests/xen/install.sh" >&2; exit 125; }

# dom0 covers the host's /tmp with a tmpfs: a cwd there is invisible unless exported
visible() {
  local p=$1 d
  case "$p/" in /tmp/*) ;; *) return 0 ;; esac
  for d in "${RW_DIRS[@]}"; do case "$p/" in "$d"/*) return 0 ;; esac; done
  return 1
}
CWD=$(pwd -P)
visible "$CWD" || bad "cwd $CWD is under /tmp, which dom0 does not see; run from elsewhere or add --rw $CWD"

# ------------------------------------------------------------------ run dir
RUNDIR=$(mktemp -d "$CACHE/run.XXXXXX")
QPID=""
cleanup() {
  [ -n "$QPID" ] && kill "$QPID" 2>/dev/null || true
  kill ${WPID:-} ${PPID2:-} ${FPIDS[@]:-} 2>/dev/null || true
  [ "${XENVM_KEEP_RUNDIR:-0}" = 1 ] || rm -rf "$RUNDIR"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [ "$USE_DENO" = 1 ]; then
  mapfile -t dl < <("$HERE/deno.sh" --dir) || true
  [ "${#dl[@]}" -ge 2 ] && [ -x "${dl[0]}" ] || { echo "xen-vm: --deno: deno.sh could not locate the host's deno" >&2; exit 125; }
  visible "${dl[0]}" || bad "--deno: ${dl[0]} is under /tmp, which dom0 does not see"
  # first, so that an explicit --env DENO_DIR=... still wins
  ENV_LINES=("$(printf 'export XENVM_DENO=%q DENO_DIR=%q PATH=%q:"$PATH"' "${dl[0]}" "${dl[1]}" "$(dirname "${dl[0]}")")" ${ENV_LINES[@]+"${ENV_LINES[@]}"})
  log "deno: ${dl[0]} (DENO_DIR in dom0: ${dl[1]}, read-only, unless --env DENO_DIR)"
fi

printf '%s\n' "$RUNDIR" > "$RUNDIR/run_path"
printf '%s\n' "${RW_DIRS[@]}" > "$RUNDIR/rw_dirs"
echo "${XENVM_9P_CACHE:-loose}" > "$RUNDIR/9pcache"
{
  echo "# generated by tests/xen/boot.sh; runs in dom0 under bash"
  echo "export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/tmp TMPDIR=/tmp XENVM=1"
  # no network in dom0: keep deno from trying to check for updates
  echo "export DENO_NO_UPDATE_CHECK=1 DENO_NO_PROMPT=1"
  # the host environment is NOT inherited; only chosen variables are passed
  for v in ${XENVM_PASSENV-CI NO_COLOR}; do
    [ -n "${!v+x}" ] && printf 'export %s=%q\n' "$v" "${!v}"
  done
  [ ${#ENV_LINES[@]} -eq 0 ] || printf '%s\n' "${ENV_LINES[@]}"
  printf 'cd %q || { echo "xen-vm: cwd %q not visible in dom0" >&2; exit 126; }\n' "$CWD" "$CWD"
  if [ -n "$SCRIPT" ]; then
    cp "$SCRIPT" "$RUNDIR/script.sh"
    printf 'exec /bin/bash %q' "$RUNDIR/script.sh"
  else
    printf 'exec'
  fi
  for a in "$@"; do printf ' %q' "$a"; done
  echo
} > "$RUNDIR/cmd.sh"

# ------------------------------------------------------------------- QEMU
AUTO=0
if [ "$ACCEL" = auto ]; then
  AUTO=1
  # /dev/kvm backed by kvm_pvm (nested sandboxes) cannot run Xen: hardware KVM only
  if [ -r /dev/kvm ] && [ -w /dev/kvm ] && { [ -d /sys/module/kvm_intel ] || [ -d /sys/module/kvm_amd ]; }; then
    ACCEL=kvm; else ACCEL=tcg; fi
fi
# -arch-capabilities: QEMU 7.2 aborts ("failed to set MSR 0x10a") on nested AMD hosts
if [ "$ACCEL" = kvm ]; then CPU=${XENVM_CPU:-host,-arch-capabilities}; ACC=kvm
else CPU=${XENVM_CPU:-max}; ACC="tcg,thread=multi"; fi

DOM0_MEM=$((MEM - 512))
# smap=0: under TCG the PV dom0 dies at once (#PF in create_bounce_frame) otherwise.
# bootscrub=false: scrubbing 2 GB under TCG costs seconds for nothing.
XEN_ARGS="console=com1 com1=115200,8n1 smap=0 bootscrub=false dom0_mem=${DOM0_MEM}M,max:${DOM0_MEM}M dom0_max_vcpus=$SMP"
DOM0_ARGS="console=hvc0 earlyprintk=xen rdinit=/init"
if [ "$VERBOSE" = 1 ]; then
  XEN_ARGS="$XEN_ARGS loglvl=all guest_loglvl=all"; DOM0_ARGS="$DOM0_ARGS loglevel=7"
else
  XEN_ARGS="$XEN_ARGS loglvl=warning guest_loglvl=warning"; DOM0_ARGS="$DOM0_ARGS loglevel=3"
fi
XEN_ARGS="$XEN_ARGS $XEN_EXTRA"
DOM0_ARGS="$DOM0_ARGS $DOM0_EXTRA"
esc() { printf '%s' "$1" | sed 's/,/,,/g'; }   # QEMU option values: ',' is doubled

SERLOG="$RUNDIR/serial.log"; : > "$SERLOG"
QARGS=(-machine q35 -accel "$ACC" -cpu "$CPU" -m "$MEM" -smp "$SMP"
  -display none -vga none -no-reboot -nodefaults -monitor none
  -chardev "file,id=ser0,path=$(esc "$SERLOG")" -serial chardev:ser0
  -kernel "$CACHE/xen" -append "$XEN_ARGS"
  # multiboot modules: dom0 kernel (with its command line), then its initramfs
  -initrd "$(esc "$CACHE/vmlinuz") $(esc "$DOM0_ARGS"),$(esc "$CACHE/initrd.cpio.gz")"
  -virtfs "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap"
  -virtfs "local,path=$(esc "$RUNDIR"),mount_tag=xenvmrun,security_model=none,multidevs=remap")
n=0
for d in "${RW_DIRS[@]}"; do
  QARGS+=(-virtfs "local,path=$(esc "$d"),mount_tag=xenvmrw$n,security_model=none,multidevs=remap")
  n=$((n+1))
done

log "starting QEMU (accel=$ACCEL cpu=$CPU mem=${MEM}M smp=$SMP timeout=${TIMEOUT}s; Xen $(sed -n 's/^xen=//p' "$CACHE/ready"), dom0 $(sed -n 's/^kver=//p' "$CACHE/ready"))"
[ "$VERBOSE" = 1 ] && log "dom0 args: $DOM0_ARGS"
TQ=$EPOCHREALTIME
qemu-system-x86_64 "${QARGS[@]}" 2> "$RUNDIR/qemu.stderr" &
QPID=$!
# after S CMD...: run CMD in S seconds unless killed first. Its fds go to
# /dev/null and its sleep dies with it, so that a caller reading our output
# through a pipe or $(...) is not kept waiting by a leftover sleep.
after() {
  local s=$1; shift
  ( sp=""; trap 'kill $sp 2>/dev/null; exit 0' TERM
    sleep "$s" & sp=$!; wait "$sp"; "$@" ) </dev/null >/dev/null 2>&1 &
}
# Watchdog: our own rather than timeout(1), so we know for sure it was the
# time limit (and not a guest/QEMU failure) that ended the run.
stop_qemu() {   # stop_qemu REASON: mark why, SIGTERM, SIGKILL if still there after 5 s
  kill -0 "$QPID" || return 0
  : > "$RUNDIR/$1"; kill "$QPID"
  for _ in $(seq 50); do kill -0 "$QPID" || return 0; sleep 0.1; done
  kill -9 "$QPID"
}
after "$TIMEOUT" stop_qemu timed_out
WPID=$!
FPIDS=()
if [ "$FOLLOW" = 1 ]; then
  # tail -F waits for the files to appear and ends once QEMU is gone (after
  # a last read), so everything dom0 wrote before the end is shown.
  tail -s 0.2 -n +1 -F --pid="$QPID" "$RUNDIR/stdout" 2>/dev/null & FPIDS+=($!)
  tail -s 0.2 -n +1 -F --pid="$QPID" "$RUNDIR/stderr" >&2 2>/dev/null & FPIDS+=($!)
fi

stage="booting Xen"
rc_seen=""
while IFS= read -r line; do
  line=${line%$'\r'}
  [ "$VERBOSE" = 1 ] && printf '%7s %s\n' "$(el "$TQ")" "$line" >&2
  case "$line" in
    *"(XEN) Xen version"*) stage="Xen + dom0 kernel booting"; log "Xen started" ;;
    *"@@XENVM dom0-init-start"*) stage="dom0 initramfs"; log "dom0 /init started" ;;
    *"@@XENVM dom0-userspace-ready"*) stage="command running"
      u=${line#*uptime=}; log "dom0 ready, command starting ($(el "$TQ")s after QEMU start; dom0 uptime ${u%%@@*}s)" ;;
    *"@@XENVM-RC "*) rc_seen=${line#*@@XENVM-RC }; rc_seen=${rc_seen%%@@*}; stage="powering off"
      log "command exited $rc_seen ($(el "$TQ")s after QEMU start)"
      # should the power-off hang, do not wait for the full timeout
      after 15 stop_qemu poweroff_hung; PPID2=$! ;;
    *"@@XENVM-FAIL"*) log "dom0 failure: ${line#*@@XENVM-FAIL }" ;;
    *"KVM internal error"*|*"Panic on CPU"*|*"Kernel panic"*) log "fatal: $line" ;;
  esac
done < <(tail -s 0.1 -n +1 -F --pid="$QPID" "$SERLOG" 2>/dev/null)
qrc=0; wait "$QPID" || qrc=$?
QPID=""
kill "$WPID" ${PPID2:-} 2>/dev/null || true; WPID=""
[ -f "$RUNDIR/poweroff_hung" ] && log "dom0 did not power off; QEMU killed"
log "QEMU exited rc=$qrc, $(el "$TQ")s after start"
if [ "$VERBOSE" = 1 ] || { [ ! -f "$RUNDIR/rc" ] && [ ! -f "$RUNDIR/timed_out" ]; }; then
  [ -s "$RUNDIR/qemu.stderr" ] && sed 's/^/[qemu] /' "$RUNDIR/qemu.stderr" >&2
fi
if [ -f "$RUNDIR/info" ] && [ "$QUIET" = 0 ]; then
  log "dom0 facts: $(grep -v uptime "$RUNDIR/info" | tr '\n' ' ')"
fi

emit_output() {
  if [ "$FOLLOW" = 1 ]; then
    # streamed already; let the tails finish (a tail of a file dom0 never
    # wrote, such as an empty stderr, exits 1: not the command's status)
    wait "${FPIDS[@]}" 2>/dev/null || true
    return 0
  fi
  [ -f "$RUNDIR/stdout" ] && cat "$RUNDIR/stdout"
  [ -f "$RUNDIR/stderr" ] && cat "$RUNDIR/stderr" >&2
  return 0
}
if [ -f "$RUNDIR/rc" ]; then
  emit_output
  exit "$(cat "$RUNDIR/rc")"
fi
if [ -f "$RUNDIR/timed_out" ]; then
  emit_output   # whatever the command wrote before it was cut off
  echo "xen-vm: timed out after $TIMEOUT s (stage: $stage)" >&2
  exit 124
fi
if [ -n "$rc_seen" ]; then
  # the 9p result was lost but the serial mirror has it
  log "no rc file in the run dir; using the serial console copy"
  sed -n '/@@XENVM-OUT-BEGIN@@/,/@@XENVM-OUT-END@@/p' "$SERLOG" | tr -d '\r' | sed '1d;$d'
  exit "$rc_seen"
fi
if [ "$AUTO" = 1 ] && [ "$ACCEL" = kvm ] && grep -q 'KVM internal error' "$RUNDIR/qemu.stderr"; then
  log "KVM cannot run Xen here, retrying with TCG"
  cleanup; trap - EXIT
  exec "$0" --tcg "${ORIG_ARGS[@]}"
fi
emit_output
echo "xen-vm: no result from dom0 (stage: $stage, QEMU rc=$qrc); last console lines:" >&2
tail -n 40 "$SERLOG" | tr -d '\r' >&2
exit 125
