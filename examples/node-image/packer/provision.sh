#!/bin/sh
# provision.sh — configure the mero-tee node image of one profile (run by Packer as root on the
# build VM; MERO_PROFILE and MERO_TEE_VERSION come from the template, which has uploaded the
# agent to /tmp/mero-tee-agent and its unit to /tmp/mero-tee-agent.service).
#
# What differs per profile, and what reaches a TDX register:
#   debug             read-write root; serial console (console=ttyS0, getty) and SSH on
#   debug-read-only   read-only root: overlayroot keeps the root file system read-only under a
#                     tmpfs overlay (writes vanish at reboot); serial console and SSH on
#   locked-read-only  read-only root as above; no interactive access: SSH, the serial and
#                     virtual-console gettys masked, no console= on the kernel command line,
#                     root's password locked
# The kernel command line (profile name, ro, console, overlayroot) and the initrd (which
# carries overlayroot's hook on the read-only profiles) are measured by GRUB into RTMR2 on a
# TDX guest (PCR 8/9 → RTMR2), so each profile's RTMR2 differs and a policy of one profile
# never accepts another. The files changed on the root file system (masked units, sshd) are
# not measured: they are bound to the measurements only through the image they are part of.
# dm-verity is not set up: the base image's root file system carries no verity hash tree.
#
# Last, it records what the SBOM lists — the installed Debian packages and the OS, kernel and
# firmware identity — in /var/tmp/mero-record, which the template downloads and then removes.
set -eu
: "${MERO_PROFILE:?MERO_PROFILE is required}"
: "${MERO_TEE_VERSION:?MERO_TEE_VERSION is required}"

case "$MERO_PROFILE" in
  debug) cmdline="console=ttyS0,115200 mero.profile=debug" ;;
  debug-read-only) cmdline="console=ttyS0,115200 ro overlayroot=tmpfs mero.profile=debug-read-only" ;;
  locked-read-only) cmdline="ro quiet overlayroot=tmpfs mero.profile=locked-read-only" ;;
  *) echo "provision.sh: unknown profile $MERO_PROFILE" >&2; exit 2 ;;
esac
export DEBIAN_FRONTEND=noninteractive

install -d -m 0755 /etc/mero
printf 'profile=%s\nversion=%s\n' "$MERO_PROFILE" "$MERO_TEE_VERSION" > /etc/mero/node.conf

# The agent: a static executable and a systemd unit started at boot.
install -m 0755 /tmp/mero-tee-agent /usr/local/bin/mero-tee-agent
install -m 0644 /tmp/mero-tee-agent.service /etc/systemd/system/mero-tee-agent.service
rm -f /tmp/mero-tee-agent /tmp/mero-tee-agent.service
systemctl enable mero-tee-agent.service

# Read-only root on the read-only profiles: overlayroot (initramfs hook) mounts the root file
# system read-only with a tmpfs upper layer when the command line says overlayroot=tmpfs.
if [ "$MERO_PROFILE" != debug ]; then
  if ! dpkg-query -W -f '${Status}' overlayroot 2>/dev/null | grep -q 'ok installed'; then
    apt-get update
    apt-get install -y --no-install-recommends overlayroot
  fi
  update-initramfs -u
fi

# The profile's kernel command line (RTMR2), appended to the base image's defaults.
install -d -m 0755 /etc/default/grub.d
# shellcheck disable=SC2016 # $GRUB_CMDLINE_LINUX_DEFAULT is expanded by grub's shell, not here
printf 'GRUB_CMDLINE_LINUX_DEFAULT="$GRUB_CMDLINE_LINUX_DEFAULT %s"\n' "$cmdline" > /etc/default/grub.d/90-mero.cfg
if [ "$MERO_PROFILE" = locked-read-only ]; then
  # Drop the base image's console= settings too: no console on the production profile.
  # shellcheck disable=SC2016 # the command substitution runs in grub's shell when it reads the file
  printf 'GRUB_CMDLINE_LINUX="$(echo "$GRUB_CMDLINE_LINUX" | sed "s/console=[^ ]*//g")"\nGRUB_TERMINAL=console\n' >> /etc/default/grub.d/90-mero.cfg
fi
update-grub

case "$MERO_PROFILE" in
  debug|debug-read-only)
    # Interactive access for operators: SSH and a login on the serial console.
    systemctl enable ssh.service serial-getty@ttyS0.service
    ;;
  locked-read-only)
    # No interactive access: nothing to log in to, on the network or a console.
    # (not --now: Packer still needs this SSH connection to download the record)
    systemctl disable ssh.service ssh.socket serial-getty@ttyS0.service getty@tty1.service 2>/dev/null || true
    systemctl mask ssh.service ssh.socket serial-getty@ttyS0.service getty@tty1.service console-getty.service
    passwd -l root
    ;;
esac

# Leave nothing of the build VM behind: no host keys, no machine id, no logs.
rm -f /etc/ssh/ssh_host_* /var/lib/dbus/machine-id
truncate -s 0 /etc/machine-id
find /var/log -type f -exec truncate -s 0 {} +

# The record the SBOM reads (pipeline/packer ReadRecord): packages, then the identity.
rec=/var/tmp/mero-record
install -d -m 0700 "$rec"
dpkg-query -W -f '${binary:Package}\t${Version}\t${Architecture}\t${source:Package}\n' | LC_ALL=C sort > "$rec/packages.tsv"
kernel=$(find /boot -maxdepth 1 -name 'vmlinuz-*' | sort -V | tail -n 1)
# shellcheck disable=SC1091 # the build VM's os-release
. /etc/os-release
dmi() { cat "/sys/class/dmi/id/$1" 2>/dev/null || true; }
{
  printf 'os_id=%s\nos_version_id=%s\nos_pretty_name=%s\n' "$ID" "${VERSION_ID:-}" "${PRETTY_NAME:-}"
  printf 'kernel_release=%s\nkernel_sha256=%s\n' "${kernel#/boot/vmlinuz-}" "$(sha256sum "$kernel" | cut -d' ' -f1)"
  printf 'firmware_vendor=%s\nfirmware_version=%s\nfirmware_date=%s\n' "$(dmi bios_vendor)" "$(dmi bios_version)" "$(dmi bios_date)"
} > "$rec/identity.env"
sync
