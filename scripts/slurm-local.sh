#!/bin/bash
# A one-node Slurm cluster on this machine, for trying lmforge's --executor slurm and the
# torchrun sbatch script of docs/cluster.md without a real cluster (Debian/Ubuntu, as root).
#
#   scripts/slurm-local.sh install   # apt-get install slurm-wlm munge
#   scripts/slurm-local.sh start     # write /etc/slurm/slurm.conf, start munged, slurmctld, slurmd
#   scripts/slurm-local.sh stop      # stop the three daemons
#
# The node is `localhost` with this machine's CPUs and memory, in partition `debug` (the
# default). Processes are tracked by proctrack/linuxproc and tasks are not confined (no
# cgroups: they fail in most containers); accounting is off.
set -euo pipefail
STATE=${SLURM_LOCAL_STATE:-/var/spool/slurm-local}

case "${1:-}" in
install)
    apt-get install -y slurm-wlm munge
    ;;
start)
    cpus=$(nproc)
    mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024 ))
    mkdir -p /etc/slurm "$STATE/ctld" "$STATE/d" /var/log/slurm /run/munge
    cat > /etc/slurm/slurm.conf <<CONF
ClusterName=local
SlurmctldHost=localhost
SlurmUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
ReturnToService=2
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF
    [ -s /etc/munge/munge.key ] || mungekey --create
    chown -R munge:munge /etc/munge /run/munge /var/lib/munge /var/log/munge 2>/dev/null || true
    pgrep -x munged > /dev/null || runuser -u munge -- /usr/sbin/munged
    pgrep -x slurmctld > /dev/null || slurmctld
    pgrep -x slurmd > /dev/null || slurmd -N localhost
    for _ in $(seq 30); do
        sinfo -h -o %T 2>/dev/null | grep -q idle && break
        sleep 1
    done
    sinfo
    ;;
stop)
    for daemon in slurmd slurmctld munged; do
        [ -f /run/$daemon.pid ] && kill "$(cat /run/$daemon.pid)" 2>/dev/null || true
    done
    [ -f /run/munge/munged.pid ] && kill "$(cat /run/munge/munged.pid)" 2>/dev/null || true
    sleep 1
    running=$(ps -C slurmd,slurmctld,munged -o pid=,stat=,comm= | awk '$2 !~ /^Z/' || true)  # zombies are gone
    [ -z "$running" ] && echo "slurm stopped" || echo "still running: $running"
    ;;
*)
    echo "usage: $0 install|start|stop" >&2
    exit 2
    ;;
esac
