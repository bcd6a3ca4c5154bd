#!/bin/sh
# provision.sh — configure the mero-tee node image of one profile (run by Packer as root on the
# build VM; MERO_PROFILE and MERO_TEE_VERSION come from the template).
#   debug             read-write root, serial console and SSH for operators
#   debug-read-only   read-only root (dm-verity-style overlay), serial console
#   locked-read-only  read-only root, no console, no SSH: the production profile
# The kernel command line carries the profile (mero.profile=…): it is measured into RTMR2, so
# each profile's measurements differ and a policy of one profile never accepts another.
set -eu
: "${MERO_PROFILE:?MERO_PROFILE is required}"
: "${MERO_TEE_VERSION:?MERO_TEE_VERSION is required}"

case "$MERO_PROFILE" in
  debug) cmdline="console=ttyS0,115200 mero.profile=debug" ;;
  debug-read-only) cmdline="console=ttyS0,115200 ro mero.profile=debug-read-only mero.rootfs=readonly" ;;
  locked-read-only) cmdline="ro quiet mero.profile=locked-read-only mero.rootfs=readonly mero.console=off" ;;
  *) echo "provision.sh: unknown profile $MERO_PROFILE" >&2; exit 2 ;;
esac

install -d -m 0755 /etc/mero
printf 'profile=%s\nversion=%s\n' "$MERO_PROFILE" "$MERO_TEE_VERSION" > /etc/mero/node.conf

# The profile's kernel command line (RTMR2), appended to the base image's defaults.
install -d -m 0755 /etc/default/grub.d
# shellcheck disable=SC2016 # $GRUB_CMDLINE_LINUX_DEFAULT is expanded by grub's shell, not here
printf 'GRUB_CMDLINE_LINUX_DEFAULT="$GRUB_CMDLINE_LINUX_DEFAULT %s"\n' "$cmdline" > /etc/default/grub.d/90-mero.cfg
update-grub

if [ "$MERO_PROFILE" = locked-read-only ]; then
  # No interactive access on the production profile.
  systemctl disable --now ssh.service serial-getty@ttyS0.service 2>/dev/null || true
  systemctl mask ssh.service serial-getty@ttyS0.service
fi

# Leave nothing of the build VM behind: no host keys, no machine id, no logs.
rm -f /etc/ssh/ssh_host_* /var/lib/dbus/machine-id
truncate -s 0 /etc/machine-id
find /var/log -type f -exec truncate -s 0 {} +
sync
