#!/bin/bash
# run-vm.sh OUTDIR 'shell command'  -- boot Debian's kernel under QEMU/TCG, host / as throw-away root,
# OUTDIR shared read-write at the same path; returns the command's exit status (99: no status,
# i.e. the VM died or hit VM_TIMEOUT; 98: no initramfs could be built).
# Adapted from the tested CUSE VM recipe of cuse-fuse-notes.md section 2.3.
# Env: VM_TIMEOUT (s, 1200), VM_MEM (MiB, 512), VM_CPUS (2), VMLINUZ, INITRD (built by mkinitrd.sh if missing), ACCEL (tcg). The guest command starts with
# env -i and the distro PATH: pass variables inside CMD and call venv/pyenv tools by absolute path.
# SIGTERM/SIGINT to this script stop qemu (GNU timeout runs it in its own process group).
set -u
OUTDIR=$(realpath -m "$1"); CMD=$2; mkdir -p "$OUTDIR"; rm -f "$OUTDIR/.vm-rc"
VMLINUZ=${VMLINUZ:-$(ls /boot/vmlinuz-*-amd64 | sort -V | tail -1)}; K=${VMLINUZ#/boot/vmlinuz-}
HERE=$(cd "$(dirname "$0")" && pwd)
# the cache name carries mkinitrd.sh's hash, so editing the script rebuilds the initramfs
INITRD=${INITRD:-${TMPDIR:-/tmp}/backerd-vm-initrd-$K-$(sha1sum "$HERE/mkinitrd.sh" | cut -c1-12).cpio.gz}
if [ ! -s "$INITRD" ]; then
  "$HERE/mkinitrd.sh" "$K" "$INITRD.tmp.$$" && mv -f "$INITRD.tmp.$$" "$INITRD"
fi
[ -s "$INITRD" ] || { echo "run-vm.sh: cannot build the initramfs for $K" >&2; exit 98; }
QPID=; trap '[ -n "$QPID" ] && kill "$QPID" 2>/dev/null' EXIT; trap 'exit 143' TERM; trap 'exit 130' INT; trap 'exit 129' HUP
timeout ${VM_TIMEOUT:-1200} qemu-system-x86_64 -accel ${ACCEL:-tcg} -M pc -cpu max -m ${VM_MEM:-512} -smp ${VM_CPUS:-2} \
  -nodefaults -no-user-config -display none -serial stdio -no-reboot -pidfile "$OUTDIR/qemu.pid" \
  -kernel "$VMLINUZ" -initrd "$INITRD" \
  -append "console=ttyS0 quiet panic=-1 e2e_out=$OUTDIR e2e_cmd=$(printf %s "$CMD" | base64 -w0)" \
  -fsdev local,id=r,path=/,security_model=none,readonly=on,multidevs=remap -device virtio-9p-pci,fsdev=r,mount_tag=hostroot \
  -fsdev local,id=o,path="$OUTDIR",security_model=none -device virtio-9p-pci,fsdev=o,mount_tag=out < /dev/null &
QPID=$!; wait "$QPID"; QPID=
exit "$(cat "$OUTDIR/.vm-rc" 2>/dev/null || echo 99)"
