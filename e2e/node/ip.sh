#!/usr/bin/env bash
# Prints the node's address: the host's source address for its default route, else its first
# global IPv4 address. The kubelet refuses a loopback node IP, and Pods reach the API server there.
set -euo pipefail
ip=$(ip -4 route get 1.1.1.1 2>/dev/null | sed -n 's/.* src \([0-9.]*\).*/\1/p' | head -n 1)
[ -n "$ip" ] || ip=$(ip -4 -o addr show scope global | awk '{ split($4, a, "/"); print a[1]; exit }')
[ -n "$ip" ] || { echo "ip: this machine has no non-loopback IPv4 address for the node" >&2; exit 1; }
printf '%s\n' "$ip"
