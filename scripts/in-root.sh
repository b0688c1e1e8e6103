#!/usr/bin/env bash
# Run a command inside a root made by scripts/make-trixie-root.sh (as root):
#   scripts/in-root.sh DIR CMD [ARGS...]
# /proc, /sys and /dev are bind-mounted for the command's lifetime and unmounted after it.
# $HOME inside is /root; the host's proxy variables pass through.
set -euo pipefail
dir=$(cd "${1:?usage: in-root.sh DIR CMD...}" && pwd)
shift
mounted=()
cleanup() {
  local i
  for (( i=${#mounted[@]}-1; i>=0; i-- )); do umount -l "${mounted[$i]}" 2>/dev/null || true; done
}
trap cleanup EXIT
for m in proc sys dev dev/pts dev/shm; do
  mkdir -p "$dir/$m"
  if ! mountpoint -q "$dir/$m"; then
    case "$m" in
      proc) mount -t proc proc "$dir/proc" ;;
      dev/shm) mount -t tmpfs shm "$dir/dev/shm" ;;
      *) mount --bind "/$m" "$dir/$m" ;;
    esac
    mounted+=("$dir/$m")
  fi
done
chroot "$dir" /usr/bin/env -i HOME=/root TERM="${TERM:-dumb}" LANG=C.UTF-8 \
  PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin \
  ${http_proxy:+http_proxy=$http_proxy} ${https_proxy:+https_proxy=$https_proxy} \
  ${no_proxy:+no_proxy=$no_proxy} ${CI:+CI=$CI} "$@"
