#!/usr/bin/env bash
# Checks systemd/spanrelay.service and spanrelay.socket: they parse
# (systemd-analyze verify, with the unit pointed at the freshly built binary),
# the service is Type=notify with a reload command, the socket passes the
# Unix sockets the shipped systemd config listens on, the ExecStartPre config
# check passes on that config, and the exposure score stays "OK" or better.
set -euo pipefail
unit_dir="$1"
daemon="$2"
config="$3"
if ! command -v systemd-analyze >/dev/null 2>&1; then
  echo "systemd-analyze is missing (apt-get install systemd)" >&2
  exit 1
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
sed -e "s#/usr/bin/spanrelayd#$daemon#g" -e "s#/etc/spanrelay/spanrelay.yaml#$config#g" \
  "$unit_dir/spanrelay.service" >"$work/spanrelay.service"
cp "$unit_dir/spanrelay.socket" "$work/spanrelay.socket"
# verify only warns on bad settings: any output at all is a failure.
problems=$(cd "$work" && systemd-analyze verify spanrelay.socket spanrelay.service 2>&1 ||
  echo "systemd-analyze verify failed")
if [ -n "$problems" ]; then
  echo "$problems" >&2
  exit 1
fi
fail() { echo "$*" >&2; exit 1; }
grep -qx 'Type=notify' "$work/spanrelay.service" || fail "the service must be Type=notify"
grep -q '^ExecReload=.*-HUP' "$work/spanrelay.service" || fail "ExecReload must send SIGHUP"
# Every Unix socket the socket unit passes must be a configured listener,
# or the daemon would close it unserved.
for path in $(sed -n 's#^ListenStream=\(/.*\)#\1#p' "$work/spanrelay.socket"); do
  grep -q "unix_socket: $path\$" "$config" || fail "spanrelay.socket passes $path, which $config does not listen on"
done
"$daemon" --config "$config" --check-config >/dev/null
score=$(systemd-analyze security --offline=true "$work/spanrelay.service" 2>/dev/null |
  sed -n 's/.*Overall exposure level for spanrelay.service: \([0-9.]*\).*/\1/p')
echo "exposure: $score"
awk -v s="$score" 'BEGIN { exit !(s != "" && s + 0 <= 2.0) }'
