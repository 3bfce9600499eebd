#!/usr/bin/env bash
# A throw-away single-node Slurm (Debian's slurm-wlm + munge) for the runner's Slurm test.
#   single_node.sh start DIR   install (apt, as root) if needed, write DIR/slurm.conf, start munged, slurmctld, slurmd
#   single_node.sh stop DIR    shut the daemons down
# Clients find the cluster with SLURM_CONF=DIR/slurm.conf. Needs root (the daemons run as root: a test cluster only).
set -euo pipefail
cmd=${1:?start|stop}; dir=$(realpath -m "${2:?DIR}")
export SLURM_CONF="$dir/slurm.conf"
if [ "$cmd" = stop ]; then
  scontrol shutdown >/dev/null 2>&1 || true
  for f in slurmd slurmctld; do [ -f "$dir/$f.pid" ] && kill "$(cat "$dir/$f.pid")" 2>/dev/null || true; done
  [ -f "$dir/munged.pid" ] && kill "$(cat "$dir/munged.pid")" 2>/dev/null || true
  exit 0
fi
[ "$(id -u)" = 0 ] || { echo "single_node.sh: needs root to run the Slurm daemons"; exit 3; }
if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  (apt-get install -y -q --no-install-recommends slurmctld slurmd slurm-client munge \
    || { apt-get update -q && apt-get install -y -q --no-install-recommends slurmctld slurmd slurm-client munge; }) >"$dir.apt.log" 2>&1 \
    || { echo "single_node.sh: apt-get could not install slurm-wlm/munge (see $dir.apt.log)"; exit 3; }
fi
mkdir -p "$dir/state" "$dir/spool" /run/munge
[ -s /etc/munge/munge.key ] || { mkdir -p /etc/munge; dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 2>/dev/null; }
chown -R munge:munge /etc/munge /run/munge 2>/dev/null || true; chmod 400 /etc/munge/munge.key
munged --force --pid-file="$dir/munged.pid" --log-file="$dir/munged.log" 2>/dev/null || true
node=$(slurmd -C | head -1)
cat >"$SLURM_CONF" <<CONF
ClusterName=ltwb-test
SlurmctldHost=$(hostname)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
$node State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
slurmctld -i; slurmd
for _ in $(seq 60); do
  sinfo -h -o '%T' 2>/dev/null | grep -q idle && { echo "single_node.sh: Slurm is up ($SLURM_CONF)"; exit 0; }
  sleep 0.5
done
echo "single_node.sh: Slurm did not come up; logs in $dir"; exit 4
