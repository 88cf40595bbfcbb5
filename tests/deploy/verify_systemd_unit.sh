#!/usr/bin/env bash
# Checks systemd/spanrelay.service: it parses (systemd-analyze verify, with the
# unit pointed at the freshly built binary), its ExecStartPre config check
# passes on the shipped config, and its exposure score stays "OK" or better.
set -euo pipefail
unit_src="$1"
daemon="$2"
config="$3"
if ! command -v systemd-analyze >/dev/null 2>&1; then
  echo "systemd-analyze is missing (apt-get install systemd)" >&2
  exit 1
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
sed -e "s#/usr/bin/spanrelayd#$daemon#g" -e "s#/etc/spanrelay/spanrelay.yaml#$config#g" \
  "$unit_src" >"$work/spanrelay.service"
# verify only warns on bad settings: any output at all is a failure.
problems=$(systemd-analyze verify "$work/spanrelay.service" 2>&1 || echo "systemd-analyze verify failed")
if [ -n "$problems" ]; then
  echo "$problems" >&2
  exit 1
fi
"$daemon" --config "$config" --check-config >/dev/null
score=$(systemd-analyze security --offline=true "$work/spanrelay.service" 2>/dev/null |
  sed -n 's/.*Overall exposure level for spanrelay.service: \([0-9.]*\).*/\1/p')
echo "exposure: $score"
awk -v s="$score" 'BEGIN { exit !(s != "" && s + 0 <= 2.0) }'
