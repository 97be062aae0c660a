#!/bin/bash
# up.sh DIR: a one-node Slurm cluster on this machine, for trying jobs/ on a laptop and for the
# tests. As root, starts its own munged, slurmctld and slurmd, with every file (config, key,
# state, logs, pid files) under DIR, and returns once the node is idle. Then:
#   source DIR/env.sh              # SLURM_CONF for sbatch, squeue, scontrol ...
#   jobs/submit.sh configs/default.yaml
#   slurm/local/down.sh DIR        # stops the daemons it started, by PID
# The node has this machine's CPUs and memory (slurmd -C). Ports: ONFH_SLURM_PORT (slurmctld)
# and the one above it (slurmd); by default the first free pair from 6817. Needs the Debian
# packages slurmctld slurmd slurm-client munge (tools/deps.sh test installs them).
set -eu
dir=${1:?usage: slurm/local/up.sh DIR}
[ "$(id -u)" = 0 ] || { echo "up.sh: slurmd must run as root (it starts jobs as their users)" >&2; exit 1; }
for cmd in munged mungekey slurmctld slurmd sinfo; do
    command -v "$cmd" >/dev/null || { echo "up.sh: $cmd not found: apt-get install slurmctld slurmd slurm-client munge" >&2; exit 1; }
done
if [ -e "$dir/slurm.conf" ] && [ -e "$dir/run/slurmctld.pid" ] && kill -0 "$(cat "$dir/run/slurmctld.pid")" 2>/dev/null; then
    echo "up.sh: a cluster from $dir is already running (slurm/local/down.sh $dir stops it)" >&2
    exit 1
fi
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
mkdir -p "$dir/munge" "$dir/run" "$dir/log" "$dir/state" "$dir/spool" "$dir/tmp"
chmod 700 "$dir/munge"

# A port is free when nothing answers on it.
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
port=${ONFH_SLURM_PORT:-}
if [ -z "$port" ]; then
    port=6817
    until port_free "$port" && port_free $((port + 1)); do port=$((port + 2)); done
fi

# Our own munge key and daemon: the machine's /etc/munge and any munged already running are
# left alone.
[ -f "$dir/munge/munge.key" ] || mungekey -c -k "$dir/munge/munge.key"
chmod 600 "$dir/munge/munge.key"
munged --force --socket="$dir/munge/munge.socket" --key-file="$dir/munge/munge.key" \
    --pid-file="$dir/run/munged.pid" --log-file="$dir/log/munged.log" --seed-file="$dir/munge/munged.seed"

# The node line as slurmd -C finds it (CPUs, sockets, cores, threads, RealMemory), renamed
# localhost so the config does not depend on the host name.
node=$(slurmd -C | sed -n 's/^NodeName=[^ ]* /NodeName=localhost NodeAddr=127.0.0.1 /p')
cat >"$dir/slurm.conf" <<EOF
# Written by slurm/local/up.sh: a one-node cluster, everything under $dir.
ClusterName=onfhlocal
SlurmctldHost=localhost
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=root
AuthType=auth/munge
CredType=cred/munge
# cred_expire: a requeued job may start again after cred_expire + 1 s (default 120 s)
AuthInfo=socket=$dir/munge/munge.socket,cred_expire=10
# Debian's Open MPI is launched by srun through PMIx (pmi2 does not work with it)
MpiDefault=pmix
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
# cores only: a job without --mem must not hold all the memory, and so the whole node
SelectTypeParameters=CR_Core
# a job whose afterok dependency failed is cancelled, not left pending forever
DependencyParameters=kill_invalid_depend
ReturnToService=2
MailProg=/bin/true
# finished jobs stay visible to scontrol for an hour; one line per finished job in jobcomp.txt
MinJobAge=3600
JobCompType=jobcomp/filetxt
JobCompLoc=$dir/log/jobcomp.txt
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
TmpFS=$dir/tmp
SlurmctldPidFile=$dir/run/slurmctld.pid
SlurmdPidFile=$dir/run/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
$node
PartitionName=local Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
printf 'export SLURM_CONF=%q\n' "$dir/slurm.conf" >"$dir/env.sh"
export SLURM_CONF=$dir/slurm.conf

slurmctld
slurmd -N localhost
# Wait (at most 30 s) for the node to be idle.
for _ in $(seq 300); do
    [ "$(sinfo -h -n localhost -o %t 2>/dev/null)" = idle ] && { echo "up.sh: node localhost idle ($node); source $dir/env.sh"; exit 0; }
    sleep 0.1
done
echo "up.sh: the node did not become idle in 30 s; see $dir/log/" >&2
sinfo -N >&2 || true
exit 1
