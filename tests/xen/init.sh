#!/bin/busybox sh
# init.sh - /init of the dom0 initramfs built by install.sh (runs in dom0, under
# busybox sh, not bash: keep it POSIX). It loads the Xen + 9p modules, mounts the
# host's / (virtio-9p tag "hostroot", read-only) on /host, runs the host-prepared
# command chrooted there, writes the result into the per-run dir (9p tag
# "xenvmrun", writable) and powers the machine off.
#
# Protocol with boot.sh, all through the run dir (mounted on /xenvm here):
#   in:  run_path (host path of the run dir), rw_dirs (one host path per line),
#        9pcache (cache mode for the host root), cmd.sh (bash script to run)
#   out: stdout, stderr, rc, info (xen version, events ABI, timings)
# Serial console markers (boot.sh parses them; they also make --verbose readable):
#   @@XENVM stage ...@@   @@XENVM-FAIL why@@   @@XENVM-RC n@@
#   stdout (<= 64 KiB) is mirrored between @@XENVM-OUT-BEGIN@@ and @@XENVM-OUT-END@@
#   so a result survives even if the 9p write-back failed.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
# the kernel may have found no /dev/console in the initramfs: attach explicitly
exec </dev/console >/dev/console 2>&1
up() { cut -d' ' -f1 /proc/uptime; }
echo "@@XENVM dom0-init-start uptime=$(up)@@"

off() {
  sync
  poweroff -f
  # -no-reboot makes QEMU exit on a reboot, should the power-off not reach it
  sleep 3; echo "xen-vm: poweroff did not stop QEMU, rebooting"; echo b > /proc/sysrq-trigger
}
fail() { echo "@@XENVM-FAIL $*@@"; echo "@@XENVM-RC 125@@"; off; }

for m in $(cat /lib/modules/order); do
  insmod "/lib/modules/$m.ko" || echo "xen-vm: insmod $m failed"
done
mkdir -p /proc/xen
mount -t xenfs xenfs /proc/xen || fail "xenfs mount"
# udev-less: devtmpfs creates the node once xen-evtchn has registered
i=0; while [ ! -c /dev/xen/evtchn ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
[ -c /dev/xen/evtchn ] || fail "no /dev/xen/evtchn"

O="trans=virtio,version=9p2000.L,msize=262144"
mount -t 9p -o "$O" xenvmrun /xenvm || fail "9p run dir mount"
RUN=$(cat /xenvm/run_path)
C9=$(cat /xenvm/9pcache 2>/dev/null || echo loose)

# The host root is read-only and the run is short: cache=loose is safe and much
# faster under TCG than cache=none (every stat would be a 9p round trip).
mount -t 9p -o "$O,ro,cache=$C9" hostroot /host || fail "9p hostroot mount"
mount --bind /dev /host/dev
mount --bind /proc /host/proc
mount --bind /sys /host/sys
mount -t xenfs xenfs /host/proc/xen
mount -t tmpfs -o size=512m,mode=1777 tmpfs /host/tmp
mount -t tmpfs tmpfs /host/run 2>/dev/null
mkdir -p /host/dev/pts /host/dev/shm
mount -t devpts devpts /host/dev/pts
mount -t tmpfs tmpfs /host/dev/shm
# Writable shares AFTER the tmpfs mounts: a dir under /tmp would be shadowed otherwise.
mkdir -p "/host$RUN" 2>/dev/null
mount --bind /xenvm "/host$RUN" || fail "bind run dir to $RUN"
n=0
while IFS= read -r d; do
  [ -n "$d" ] || continue
  mkdir -p "/host$d" 2>/dev/null
  mount -t 9p -o "$O" "xenvmrw$n" "/host$d" || fail "9p rw dir $d"
  n=$((n+1))
done < /xenvm/rw_dirs

# facts the host reports (and that differ between runs: mirror version, ABI)
{
  v=/sys/hypervisor/version
  [ -r $v/major ] && echo "xen_version=$(cat $v/major).$(cat $v/minor)$(cat $v/extra)"
  echo "dom0_kernel=$(uname -r)"
  echo "events_abi=$(dmesg | sed -n 's/.*xen:events: Using \(.*\) ABI.*/\1/p' | head -1)"
  echo "ready_uptime=$(up)"
} > /xenvm/info 2>/dev/null
echo "@@XENVM dom0-userspace-ready uptime=$(up)@@"

chroot /host /bin/bash "$RUN/cmd.sh" </dev/null >/xenvm/stdout 2>/xenvm/stderr
rc=$?
echo "done_uptime=$(up)" >> /xenvm/info

echo "@@XENVM-OUT-BEGIN@@"
sz=$(wc -c < /xenvm/stdout)
if [ "$sz" -le 65536 ]; then
  cat /xenvm/stdout
  # keep the END marker on a line of its own (boot.sh only uses this copy as a fallback)
  [ "$sz" -gt 0 ] && [ "$(tail -c1 /xenvm/stdout | wc -l)" = 0 ] && echo
else
  echo "(xen-vm: $sz bytes of stdout, not mirrored)"
fi
echo "@@XENVM-OUT-END@@"
echo $rc > /xenvm/rc
echo "@@XENVM-RC $rc@@"
sync
umount "/host$RUN" 2>/dev/null
umount /xenvm 2>/dev/null
echo "@@XENVM dom0-poweroff uptime=$(up)@@"
off
