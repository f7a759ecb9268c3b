#!/usr/bin/env bash
# load.sh [BUILD] - the load part of `make bench`: 10,000 concurrent SMTP
# sessions held open on loopback against one etrnd, mail through a share of
# them, the caps, and slowloris clients; etrnd's RSS and the accept rate
# meanwhile.  The client is bench/load.py (Debian's /usr/bin/python3,
# standard library only); see bench/README.md, "The load part".
#
# Sourced by run.sh after the delivery half (it then uses run.sh's OUT,
# ETRND, ETRNCTL, log, mono, alive, port_listening and FAILED_ANY, and keeps
# etrnd's pid in ET_PID and the client's in SLOT_PIDS, so that run.sh's
# cleanup stops them), or run alone:
#     bench/load.sh [BUILD]         (BUILD: default build; as root)
# Either way it writes bench/out/load.md (a Markdown section), the figures
# in bench/out/load.json, etrnd's log in bench/out/load-etrnd.log; it sets
# FAILED_ANY=1 (alone: exits 1) when a target is missed.
#
# Raising the open-file limit to 65536 (or the hard limit, when that cannot
# be raised) needs root.  Everything listens on 127.0.0.1; the client binds
# its sockets to other addresses of 127/8.  Bounded: the client has a hard
# limit of BENCH_LOAD_LIMIT seconds (default 240; a run takes 1-2 minutes).
# Tunables (environment):
#   BENCH_LOAD_PORT          etrnd's port (default 10028)
#   BENCH_LOAD_SESSIONS      sessions held open (10000)
#   BENCH_LOAD_PER_ADDR      sessions per client source address (100)
#   BENCH_LOAD_SENDERS       of them, sending mail at once (200)
#   BENCH_LOAD_MAIL_SECONDS  how long they send (20)
#   BENCH_LOAD_SIZE          message size in bytes (5120)
#   BENCH_LOAD_IDLE_TIMEOUT  etrnd's idle_timeout and data_timeout, s (20)
#   BENCH_LOAD_TRICKLE       slowloris clients sending a byte at a time (1500)
#   BENCH_LOAD_TRICKLE_INTERVAL  seconds between their bytes (4)
#   BENCH_LOAD_SILENT        slowloris clients that never send (500)
#   BENCH_LOAD_NOFILE        the open-file limit wanted (65536)

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
	# --- alone: what run.sh would otherwise provide ----------------------
	set -euo pipefail
	LOAD_ALONE=1
	BUILD=${1:-build}
	ROOT=$(cd "$(dirname "$0")/.." && pwd)
	cd "$ROOT"
	BUILD=$(cd "$BUILD" && pwd)
	OUT=$ROOT/bench/out
	for f in "$BUILD/etrnd" "$BUILD/etrnctl"; do
		[[ -x $f ]] || { echo "bench: $f missing (make all)" >&2; exit 1; }
	done
	mkdir -p "$OUT/load-bin"
	# private copies: a rebuild of BUILD during the run cannot swap them
	cp "$BUILD/etrnd" "$BUILD/etrnctl" "$OUT/load-bin/"
	ETRND=$OUT/load-bin/etrnd
	ETRNCTL=$OUT/load-bin/etrnctl
	FAILED_ANY=0
	ET_PID=""
	SLOT_PIDS=()	# the client, as in run.sh

	log() { printf 'bench: %s\n' "$*" >&2; }
	mono() { local u _r; read -r u _r < /proc/uptime; printf '%s\n' "$u"; }
	alive() { [[ -r /proc/$1/stat ]] && [[ $(awk '{ sub(/^.*\) /, ""); print $1 }' "/proc/$1/stat" 2>/dev/null) != Z ]]; }
	port_listening() { [[ -n $(ss -Hltn "sport = :$1" 2>/dev/null) ]]; }

	load_cleanup() {
		local rc=$? p
		trap - EXIT INT TERM
		for p in "${SLOT_PIDS[@]}"; do
			kill -TERM "$p" 2>/dev/null || true
			wait "$p" 2>/dev/null || true
		done
		if [[ -n $ET_PID ]] && kill -0 "$ET_PID" 2>/dev/null; then
			kill -TERM "$ET_PID" 2>/dev/null || true
			wait "$ET_PID" 2>/dev/null || true
		fi
		exit "$rc"
	}
	trap load_cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
else
	LOAD_ALONE=0
fi

LOAD_PORT=${BENCH_LOAD_PORT:-10028}
LOAD_SESSIONS=${BENCH_LOAD_SESSIONS:-10000}
LOAD_PER_ADDR=${BENCH_LOAD_PER_ADDR:-100}
LOAD_SENDERS=${BENCH_LOAD_SENDERS:-200}
LOAD_MAIL_SECONDS=${BENCH_LOAD_MAIL_SECONDS:-20}
LOAD_SIZE=${BENCH_LOAD_SIZE:-5120}
LOAD_IDLE=${BENCH_LOAD_IDLE_TIMEOUT:-20}
LOAD_TRICKLE=${BENCH_LOAD_TRICKLE:-1500}
LOAD_TRICKLE_INTERVAL=${BENCH_LOAD_TRICKLE_INTERVAL:-4}
LOAD_SILENT=${BENCH_LOAD_SILENT:-500}
LOAD_NOFILE_WANT=${BENCH_LOAD_NOFILE:-65536}
LOAD_LIMIT=${BENCH_LOAD_LIMIT:-240}
# The caps: room for 2,000 sessions past the held ones (the cap test fills
# them), and twice the sessions of one source address per client.
LOAD_MAXCONN=$((LOAD_SESSIONS + 2000))
LOAD_PER_CLIENT=$((2 * LOAD_PER_ADDR))
LOAD_GREEDY_EXTRA=50
LOAD_CONF=$OUT/load.conf
LOAD_Q=$OUT/load-queue
LOAD_SOCK=$OUT/load-control.sock
LOAD_LOG=$OUT/load-etrnd.log
LOAD_MD=$OUT/load.md
LOAD_JSON=$OUT/load.json
LOAD_PY=/usr/bin/python3

# load_nofile: the open-file limit the two processes get: the wanted one,
# or the hard limit when that is lower and cannot be raised (a container
# without CAP_SYS_RESOURCE)
load_nofile() {
	local hard
	hard=$(ulimit -Hn)
	if [[ $hard == unlimited ]] || (( hard >= LOAD_NOFILE_WANT )); then
		echo "$LOAD_NOFILE_WANT"
	elif (ulimit -Hn "$LOAD_NOFILE_WANT") 2>/dev/null; then
		echo "$LOAD_NOFILE_WANT"
	else
		echo "$hard"
	fi
}

load_fail() {	# load_fail MESSAGE: a run that could not be made
	log "load: $*"
	FAILED_ANY=1
	{
		echo "## Load: $LOAD_SESSIONS concurrent sessions"
		echo
		echo "**Not run**: $*"
		echo
	} >"$LOAD_MD"
}

load_stop() {	# stop etrnd; its exit status
	local rc=0
	[[ -n $ET_PID ]] || return 0
	kill -TERM "$ET_PID" 2>/dev/null || true
	wait "$ET_PID" 2>/dev/null || rc=$?
	ET_PID=""
	return "$rc"
}

load_count() {	# load_count REGEX: matching lines of etrnd's log
	grep -cE "$1" "$LOAD_LOG" 2>/dev/null || true
}

load_main() {
	local nofile need i rc=0 queued="n/a" accepted stop_rc=0 t0 t1
	rm -rf "$LOAD_Q" "$LOAD_MD" "$LOAD_JSON" "$LOAD_SOCK"
	: >"$LOAD_LOG"
	if [[ ! -x $LOAD_PY ]]; then
		load_fail "$LOAD_PY missing"
		return 0
	fi
	if port_listening "$LOAD_PORT"; then
		load_fail "127.0.0.1:$LOAD_PORT is already in use; set BENCH_LOAD_PORT"
		return 0
	fi
	nofile=$(load_nofile)
	need=$((LOAD_MAXCONN + 500))
	if (( nofile < need )); then
		load_fail "open-file limit $nofile < $need (max_connections $LOAD_MAXCONN + the queue's files); run as root or lower BENCH_LOAD_SESSIONS"
		return 0
	fi

	cat >"$LOAD_CONF" <<-EOF
	# bench/load.sh: defaults except the caps, the timeouts and the paths
	hostname = relay.bench.test
	listen = 127.0.0.1:$LOAD_PORT
	queue_dir = $LOAD_Q
	control = $LOAD_SOCK
	dns_server = 127.0.0.1:1
	max_connections = $LOAD_MAXCONN
	max_connections_per_client = $LOAD_PER_CLIENT
	idle_timeout = ${LOAD_IDLE}s
	data_timeout = ${LOAD_IDLE}s

	[domain load.bench.test]
	route = [127.0.0.1]:1
	mode = hold
	EOF
	if ! "$ETRND" -n -c "$LOAD_CONF" >/dev/null 2>>"$LOAD_LOG"; then
		load_fail "etrnd -n refuses $LOAD_CONF: $(tail -3 "$LOAD_LOG")"
		return 0
	fi

	log "load: starting etrnd on 127.0.0.1:$LOAD_PORT (open files: $nofile)"
	(ulimit -n "$nofile" && exec "$ETRND" -c "$LOAD_CONF") 2>>"$LOAD_LOG" &
	ET_PID=$!
	for ((i = 0; i < 400; i++)); do
		alive "$ET_PID" || break
		port_listening "$LOAD_PORT" && [[ -S $LOAD_SOCK ]] && break
		sleep 0.05
	done
	if ! alive "$ET_PID" || ! port_listening "$LOAD_PORT"; then
		load_stop || true
		load_fail "etrnd did not start: $(tail -3 "$LOAD_LOG" | tr '\n' ' ')"
		return 0
	fi

	# In the background and waited for, so that a signal to the shell is
	# handled at once; the cleanup (run.sh's through SLOT_PIDS, or
	# load_cleanup) stops it.  timeout passes a SIGTERM on to load.py.
	t0=$(mono)
	(ulimit -n "$nofile" && exec timeout -k 5 $((LOAD_LIMIT + 20)) "$LOAD_PY" \
	    "$ROOT/bench/load.py" --pid "$ET_PID" --port "$LOAD_PORT" \
	    --conf "bench/out/load.conf" --nofile "$nofile" \
	    --max-connections "$LOAD_MAXCONN" --per-client "$LOAD_PER_CLIENT" \
	    --idle-timeout "$LOAD_IDLE" --data-timeout "$LOAD_IDLE" \
	    --sessions "$LOAD_SESSIONS" --per-addr "$LOAD_PER_ADDR" \
	    --senders "$LOAD_SENDERS" --mail-seconds "$LOAD_MAIL_SECONDS" \
	    --size "$LOAD_SIZE" --trickle "$LOAD_TRICKLE" \
	    --trickle-interval "$LOAD_TRICKLE_INTERVAL" --silent "$LOAD_SILENT" \
	    --greedy-extra "$LOAD_GREEDY_EXTRA" --limit "$LOAD_LIMIT" \
	    --json "$LOAD_JSON" --md "$LOAD_MD") &
	SLOT_PIDS=($!)
	wait "${SLOT_PIDS[0]}" || rc=$?
	SLOT_PIDS=()
	t1=$(mono)
	if (( rc == 1 )); then
		FAILED_ANY=1
		log "load: load.py: a target was missed"
	elif (( rc != 0 )); then
		FAILED_ANY=1
		log "load: load.py exited $rc: the run could not be made"
	fi

	# every 250 the client counted must be in the queue
	accepted=$("$LOAD_PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))["accepted_total"])' \
	    "$LOAD_JSON" 2>/dev/null || true)
	if alive "$ET_PID"; then
		queued=$("$ETRNCTL" -c "$LOAD_CONF" --json summary 2>>"$LOAD_LOG" |
		    { grep -o '"messages":[0-9]*' || true; } | awk -F: '{ n += $2 } END { print n + 0 }') || queued="error"
		load_stop || stop_rc=$?
	else
		stop_rc=died
		wait "$ET_PID" 2>/dev/null || true
		ET_PID=""
	fi

	# some 400 MB of held mail: counted, not kept
	rm -rf "$LOAD_Q"

	if [[ ! -s $LOAD_MD ]]; then
		load_fail "load.py wrote no report (exit $rc); see the lines above"
		return 0
	fi
	local qcheck=ok
	if [[ -z $accepted || $queued != [0-9]* ]] || (( queued < accepted )); then
		qcheck="**mismatch**"
		FAILED_ANY=1
	fi
	[[ $stop_rc == 0 ]] || FAILED_ANY=1
	{
		echo "### etrnd's log and queue (bench/out/load-etrnd.log)"
		echo
		echo "| figure | value |"
		echo "|---|---:|"
		echo "| sessions accepted (event=connect) | $(load_count 'event=connect ') |"
		echo "| refused at the total cap (reason=total_limit) | $(load_count 'event=refuse .*reason=total_limit') |"
		echo "| refused at the per-client cap (reason=per_client_limit) | $(load_count 'event=refuse .*reason=per_client_limit') |"
		echo "| dropped by a timeout (event=disconnect reason=timeout) | $(load_count 'event=disconnect .*reason=timeout') |"
		echo "| level=warn / level=error lines | $(load_count 'level=warn') / $(load_count 'level=error') |"
		echo "| messages in the queue (etrnctl summary) / 250s counted by the client | $queued / ${accepted:-n/a} ($qcheck) |"
		echo "| etrnd's exit after SIGTERM | $([[ $stop_rc == 0 ]] && echo 0 || echo "**$stop_rc**") |"
		echo "| wall time of the load part | $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f s", b - a }') |"
		echo
		if [[ $(load_count 'level=(warn|error)') != 0 ]]; then
			echo "First warn/error lines:"
			echo
			grep -E 'level=(warn|error)' "$LOAD_LOG" | head -5 | sed 's/^/    /'
			echo
		fi
	} >>"$LOAD_MD"
	return 0
}

load_main

if (( LOAD_ALONE )); then
	cat "$LOAD_MD"
	if (( FAILED_ANY )); then
		log "load: a target was missed or the run failed: see bench/out/load.md"
		exit 1
	fi
fi
