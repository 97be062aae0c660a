#!/bin/bash
# down.sh DIR: stops the daemons slurm/local/up.sh DIR started (slurmd, slurmctld, munged), each
# by the PID in its pid file, and waits until each is gone (at most 30 s each). Jobs still
# queued or running are cancelled first. DIR itself is kept (logs); remove it when done.
set -eu
dir=${1:?usage: slurm/local/down.sh DIR}
status=0
# Jobs first, so no slurmstepd outlives slurmd: cancel every job of this cluster and wait (at
# most 30 s) until none is left.
if [ -f "$dir/run/slurmctld.pid" ] && kill -0 "$(cat "$dir/run/slurmctld.pid")" 2>/dev/null; then
    export SLURM_CONF=$dir/slurm.conf
    jobs=$(squeue -h -o %A 2>/dev/null || true)
    if [ -n "$jobs" ]; then
        # shellcheck disable=SC2086 # one job id per word
        scancel $jobs 2>/dev/null || true
        for _ in $(seq 300); do
            [ -z "$(squeue -h -o %A 2>/dev/null)" ] && break
            sleep 0.1
        done
    fi
fi
for daemon in slurmd slurmctld munged; do
    pidfile=$dir/run/$daemon.pid
    [ -f "$pidfile" ] || continue
    pid=$(cat "$pidfile")
    if kill -TERM "$pid" 2>/dev/null; then
        for _ in $(seq 300); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            echo "down.sh: $daemon (pid $pid) still running after 30 s; sending KILL" >&2
            kill -KILL "$pid" 2>/dev/null || true
            status=1
        fi
    fi
    rm -f "$pidfile"
done
exit "$status"
