#!/usr/bin/env bash
# Starts a single-node Slurm (munge + slurmctld + slurmd) on this host for the study executor's Slurm test.
# Idempotent: exits 0 at once when sinfo already shows the node up. Installs Debian's slurm-wlm and munge when
# missing (needs root and apt). Every failure says why on stderr and exits non-zero.
set -uo pipefail

# what happened, for the Slurm test to quote when Slurm is not usable
LOG="${TMPDIR:-/tmp}/peftlab-start-slurm.log"
: > "$LOG" 2>/dev/null || LOG=/dev/null
say() { echo "start-slurm: $*" | tee -a "$LOG" >&2; }
fail() { say "FAILED: $*"; exit 1; }

node_state() { timeout 10 sinfo -h -N -o '%T' 2>/dev/null | head -n1; }

if command -v sinfo >/dev/null 2>&1; then
  state=$(node_state)
  case "$state" in
    idle*|mix*|alloc*|comp*) say "slurm already running (node $state)"; exit 0 ;;
  esac
fi

if [ "$(id -u)" -ne 0 ]; then fail "needs root to install and start slurm (run: sudo $0)"; fi

if ! command -v slurmctld >/dev/null 2>&1 || ! command -v munged >/dev/null 2>&1; then
  command -v apt-get >/dev/null 2>&1 || fail "slurm is not installed and apt-get is not available (install slurm-wlm and munge)"
  say "installing slurm-wlm and munge (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/tmp/start-slurm-apt.log 2>&1 || { tail -n 20 /tmp/start-slurm-apt.log | tee -a "$LOG" >&2; fail "apt-get update failed"; }
  apt-get install -y -qq slurm-wlm munge >>/tmp/start-slurm-apt.log 2>&1 || { tail -n 20 /tmp/start-slurm-apt.log | tee -a "$LOG" >&2; fail "apt-get install slurm-wlm munge failed"; }
fi

host=$(hostname -s)
cpus=$(nproc)
mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/munge /var/lib/munge /var/log/munge

# --- munge: key, then the daemon (as the munge user when it exists) -------------------------------------
if [ ! -s /etc/munge/munge.key ]; then
  if command -v mungekey >/dev/null 2>&1; then mungekey --create --force >/dev/null 2>&1 || fail "mungekey --create failed"
  else dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 2>/dev/null || fail "could not write /etc/munge/munge.key"; fi
fi
if id munge >/dev/null 2>&1; then
  chown -R munge:munge /etc/munge /run/munge /var/lib/munge /var/log/munge
fi
chmod 0700 /etc/munge; chmod 0400 /etc/munge/munge.key; chmod 0755 /run/munge
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  rm -f /run/munge/munge.socket.2 /run/munge/munged.pid
  if id munge >/dev/null 2>&1; then runuser -u munge -- munged >/var/log/munge/start.log 2>&1 || munged --force >>/var/log/munge/start.log 2>&1
  else munged --force >/var/log/munge/start.log 2>&1; fi
  for _ in $(seq 1 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
  munge -n 2>/dev/null | unmunge >/dev/null 2>&1 || { tee -a "$LOG" </var/log/munge/start.log >&2; fail "munged did not start (munge -n | unmunge fails)"; }
fi

# --- slurm.conf for this host: one node, one partition, no cgroups, root daemons ------------------------
conf=/etc/slurm/slurm.conf
cat > "$conf.new" <<CONF
# Written by tests/slurm/start-slurm.sh: a single-node Slurm for PeftLab's study executor tests.
ClusterName=peftlab
SlurmctldHost=${host}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=10
MinJobAge=30
NodeName=${host} NodeAddr=127.0.0.1 CPUs=${cpus} State=UNKNOWN
PartitionName=debug Nodes=${host} Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
CONF
mv "$conf.new" "$conf"
# proctrack/linuxproc and task/none need no cgroups; slurmd still autodetects the cgroup version at start

# --- daemons ---------------------------------------------------------------------------------------------
if ! pgrep -x slurmctld >/dev/null 2>&1; then
  slurmctld -i >/var/log/slurm/slurmctld.start.log 2>&1 || { tail -n 20 /var/log/slurm/slurmctld.log /var/log/slurm/slurmctld.start.log 2>&1 | tee -a "$LOG" >&2; fail "slurmctld did not start"; }
fi
if ! pgrep -x slurmd >/dev/null 2>&1; then
  slurmd >/var/log/slurm/slurmd.start.log 2>&1 || { tail -n 20 /var/log/slurm/slurmd.log /var/log/slurm/slurmd.start.log 2>&1 | tee -a "$LOG" >&2; fail "slurmd did not start"; }
fi

for _ in $(seq 1 60); do
  state=$(node_state)
  case "$state" in
    idle*|mix*|alloc*) say "slurm is up: node $host $state, $cpus CPUs, partition debug"; exit 0 ;;
    down*|drain*) scontrol update nodename="$host" state=resume >/dev/null 2>&1 ;;
  esac
  sleep 0.5
done
say "sinfo: $(timeout 10 sinfo 2>&1)"
tail -n 20 /var/log/slurm/slurmctld.log /var/log/slurm/slurmd.log 2>&1 | tee -a "$LOG" >&2
fail "the node did not become idle within 30 s"
