# Sourced by e2e/node/up.sh and down.sh: the names this checkout's node uses on the host, derived
# from the checkout's path so that two checkouts on one machine do not share them. Needs ROOT.
#   NODE_CGROUP              the kubelet's cgroup root, one folder per controller
#   NODE_CGROUP_CONTROLLERS  the mounted hierarchies under /sys/fs/cgroup (v1 and "unified")
#   NODE_BRIDGE              the CNI bridge (at most 15 characters)
#   NODE_POD_SUBNET          the Pods' addresses
node_id=$(printf '%s' "$ROOT" | cksum | awk '{ print $1 % 200 + 20 }')
NODE_CGROUP="ssj-node-$node_id"
NODE_BRIDGE="ssj$node_id"
NODE_POD_SUBNET="10.244.$node_id.0/24"
mapfile -t NODE_CGROUP_CONTROLLERS < <(awk '$3 == "cgroup" || $3 == "cgroup2" { print $2 }' /proc/mounts |
  sed -n 's#^/sys/fs/cgroup/##p' | grep -v '/')
