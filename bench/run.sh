#!/usr/bin/env bash
# run.sh [BUILD] - the etrnd benchmark (make bench): the same SMTP workload,
# in one run, against
#   smtp-sink  Postfix's test server; stores nothing: the ceiling of this
#              machine for the protocol alone,
#   Postfix    a private instance on a loopback port, its queue on the same
#              disk as etrnd's, holding the mail like an ETRN backup MX,
#   etrnd      BUILD/etrnd, every domain in mode = hold,
# with Postfix's smtp-source as the load generator for all three.  Prints a
# Markdown report and writes it to bench/out/report.md.  See bench/README.md.
#
# Everything listens on 127.0.0.1.  Needs root (it installs Postfix when
# missing and starts the Postfix instance).  Tunables (environment):
#   BENCH_SECONDS  target length of each measured run (default 8)
#   BENCH_SIZES    message sizes in bytes (default "5120 51200")
#   BENCH_MODES    "conn" (one message per connection) and/or "reuse" (-d)
#   BENCH_REF_SECONDS  length of the one-process sink reference run (4)
#   BENCH_TIMEOUT  hard limit of one smtp-source invocation, s (default 60)
#   BENCH_N_<target>_<size>_<mode>  a fixed message count instead of the
#                  probe-derived one, e.g. BENCH_N_postfix_5120_conn=3000
set -euo pipefail

BUILD=${1:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
BUILD=$(cd "$BUILD" && pwd)
OUT=$ROOT/bench/out

SESSIONS=50
DOMAINS=100
LOADERS=10	# smtp-source processes per run, SESSIONS/LOADERS sessions each
SINK_PORT=${BENCH_SINK_PORT:-10027}
PF_PORT=${BENCH_POSTFIX_PORT:-10025}
ET_PORT=${BENCH_ETRND_PORT:-10026}
SECONDS_TARGET=${BENCH_SECONDS:-8}
REF_SECONDS=${BENCH_REF_SECONDS:-4}
SIZES=${BENCH_SIZES:-"5120 51200"}
MODES=${BENCH_MODES:-"conn reuse"}
RUN_TIMEOUT=${BENCH_TIMEOUT:-60}
SMTP_SOURCE=/usr/sbin/smtp-source
SMTP_SINK=/usr/sbin/smtp-sink
PF=$OUT/postfix
ETCONF=$OUT/etrnd.conf
ETQ=$OUT/etrnd-queue
CLK_TCK=$(getconf CLK_TCK)

case $ROOT in
*[[:space:]]*) echo "bench: the tree's path must not contain blanks: $ROOT" >&2; exit 1 ;;
esac
for f in "$BUILD/etrnd" "$BUILD/etrnctl"; do
	[[ -x $f ]] || { echo "bench: $f missing (make all)" >&2; exit 1; }
done
(( DOMAINS % LOADERS == 0 && SESSIONS % LOADERS == 0 )) || { echo "bench: LOADERS must divide DOMAINS and SESSIONS" >&2; exit 1; }

log() { printf 'bench: %s\n' "$*" >&2; }

# ---------------------------------------------------------------------------
# Processes we start, and their cleanup (on any exit).
SINK_PID=""
ET_PID=""
PF_STARTED=0
SLOT_PIDS=()

cleanup() {
	local rc=$? p
	trap - EXIT INT TERM
	# the load loops: stop each (so it starts nothing new), end its
	# children (timeout passes the signal on to smtp-source), then it
	for p in "${SLOT_PIDS[@]}"; do
		kill -STOP "$p" 2>/dev/null || true
		pkill -TERM -P "$p" 2>/dev/null || true
		kill -TERM "$p" 2>/dev/null || true
		kill -CONT "$p" 2>/dev/null || true
	done
	if [[ -n $ET_PID ]] && kill -0 "$ET_PID" 2>/dev/null; then
		kill -TERM "$ET_PID" 2>/dev/null || true
		wait "$ET_PID" 2>/dev/null || true
	fi
	if [[ -n $SINK_PID ]] && kill -0 "$SINK_PID" 2>/dev/null; then
		kill -TERM "$SINK_PID" 2>/dev/null || true
		wait "$SINK_PID" 2>/dev/null || true
	fi
	if (( PF_STARTED )); then
		postfix -c "$PF/etc" stop >/dev/null 2>&1 || true
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# monotonic seconds (CLOCK_BOOTTIME, 10 ms resolution)
mono() { local u _r; read -r u _r < /proc/uptime; printf '%s\n' "$u"; }

fdiv() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }

# alive PID: running, not a zombie (kill -0 succeeds on an unreaped child)
alive() { [[ -r /proc/$1/stat ]] && [[ $(awk '{ sub(/^.*\) /, ""); print $1 }' "/proc/$1/stat" 2>/dev/null) != Z ]]; }

port_listening() { [[ -n $(ss -Hltn "sport = :$1" 2>/dev/null) ]]; }

wait_port() {	# wait_port PORT SECONDS PID
	local i
	for ((i = 0; i < $2 * 20; i++)); do
		port_listening "$1" && return 0
		[[ -n ${3:-} ]] && ! alive "$3" && return 1
		sleep 0.05
	done
	return 1
}

# ---------------------------------------------------------------------------
# Postfix: install when missing (no system configuration, no service).
install_postfix() {
	if [[ -x $SMTP_SOURCE && -x $SMTP_SINK && -x /usr/sbin/postfix ]] &&
	    getent passwd postfix >/dev/null && getent group postdrop >/dev/null; then
		return 0
	fi
	if [[ $(id -u) != 0 ]]; then
		log "Postfix (smtp-source, smtp-sink) is missing; run as root to install it"
		exit 1
	fi
	log "installing postfix"
	export DEBIAN_FRONTEND=noninteractive
	echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
	local made_policy=0
	if [[ ! -e /usr/sbin/policy-rc.d ]]; then
		printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
		chmod 755 /usr/sbin/policy-rc.d
		made_policy=1
	fi
	local ok=1
	apt-get update -qq && apt-get install -y -qq --no-install-recommends postfix >/dev/null || ok=0
	(( made_policy )) && rm -f /usr/sbin/policy-rc.d
	(( ok )) || { log "apt-get install postfix failed"; exit 1; }
	[[ -x $SMTP_SOURCE && -x $SMTP_SINK ]] || { log "smtp-source/smtp-sink not in /usr/sbin after install"; exit 1; }
}

for p in ss awk timeout pkill; do
	command -v "$p" >/dev/null || { log "$p is required"; exit 1; }
done
install_postfix
if [[ $(id -u) != 0 ]]; then
	log "the Postfix instance must be started as root"
	exit 1
fi

# One run at a time: a second one would stop the first's Postfix below.
exec 9>"$ROOT/bench/.lock"
if ! flock -n 9; then
	log "another bench run is in progress (bench/.lock)"
	exit 1
fi

# A Postfix instance left running by an interrupted earlier run.
if [[ -f $PF/etc/main.cf ]] && postfix -c "$PF/etc" status >/dev/null 2>&1; then
	log "stopping the Postfix instance of an earlier run"
	postfix -c "$PF/etc" stop >/dev/null 2>&1 || true
fi
for p in $SINK_PORT $PF_PORT $ET_PORT; do
	if port_listening "$p"; then
		log "127.0.0.1:$p is already in use; set BENCH_*_PORT"
		exit 1
	fi
done

rm -rf "$OUT"
mkdir -p "$OUT/runs" "$OUT/bin" "$PF/etc" "$PF/queue" "$PF/data"
# private copies: a rebuild of BUILD during the run cannot swap them
cp "$BUILD/etrnd" "$BUILD/etrnctl" "$OUT/bin/"
ETRND=$OUT/bin/etrnd
ETRNCTL=$OUT/bin/etrnctl
chown postfix "$PF/data"

DOMAIN_LIST=$(for ((d = 0; d < DOMAINS; d++)); do printf 'd%d.bench.test ' "$d"; done)

# --- Postfix configuration -------------------------------------------------
# The ETRN_README way of holding mail for a backup-MX domain: the relay
# transports are deferred (defer_transports), so accepted mail waits in the
# deferred queue, indexed per domain by the flush daemon (fast_flush_domains
# defaults to $relay_domains), until ETRN.  No chroot, its own queue, data
# and log (postlogd) under bench/out/postfix; nothing leaves 127.0.0.1.
cat > "$PF/etc/main.cf" <<EOF
compatibility_level = 3.6
config_directory = $PF/etc
queue_directory = $PF/queue
data_directory = $PF/data
mail_owner = postfix
setgid_group = postdrop
syslog_name = postfix-bench
maillog_file = $PF/maillog
maillog_file_prefixes = $PF
myhostname = postfix.bench.test
mydomain = bench.test
myorigin = \$myhostname
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relay_domains = $DOMAIN_LIST
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_recipient_restrictions = permit_mynetworks, reject_unauth_destination
defer_transports = smtp relay
smtpd_peername_lookup = no
alias_maps =
alias_database =
local_recipient_maps =
biff = no
smtputf8_enable = no
EOF
cat > "$PF/etc/master.cf" <<EOF
# service  type  private unpriv  chroot  wakeup  maxproc command
127.0.0.1:$PF_PORT inet n - n - 100 smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOF

# --- etrnd configuration ---------------------------------------------------
# Defaults everywhere except what a bench needs; route is never used
# (mode = hold: nothing leaves until ETRN).
{
	printf 'hostname = relay.bench.test\n'
	printf 'listen = 127.0.0.1:%s\n' "$ET_PORT"
	printf 'queue_dir = %s\n' "$ETQ"
	printf 'control = %s/etrnd-control.sock\n' "$OUT"
	printf 'etrn_clients = 127.0.0.0/8\n\n'
	for ((d = 0; d < DOMAINS; d++)); do
		printf '[domain d%d.bench.test]\nroute = [127.0.0.1]:1\nmode = hold\n\n' "$d"
	done
} > "$ETCONF"
"$ETRND" -n -c "$ETCONF" >/dev/null

# ---------------------------------------------------------------------------
# Start smtp-sink and Postfix (etrnd is started fresh for every workload).
log "starting smtp-sink on 127.0.0.1:$SINK_PORT"
"$SMTP_SINK" -4 -u nobody "127.0.0.1:$SINK_PORT" 1024 >"$OUT/smtp-sink.log" 2>&1 &
SINK_PID=$!
wait_port "$SINK_PORT" 10 "$SINK_PID" || { log "smtp-sink did not start"; cat "$OUT/smtp-sink.log" >&2; exit 1; }

log "checking and starting Postfix ($PF/etc, 127.0.0.1:$PF_PORT)"
postfix -c "$PF/etc" check
postfix -c "$PF/etc" start >"$OUT/postfix-start.log" 2>&1 || {
	cat "$OUT/postfix-start.log" "$PF/maillog" >&2 2>/dev/null; exit 1; }
PF_STARTED=1
wait_port "$PF_PORT" 20 || { log "Postfix smtpd did not listen"; cat "$PF/maillog" >&2; exit 1; }

pf_queued() {	# messages in Postfix's queue (the defer/ logs are not messages)
	find "$PF/queue/incoming" "$PF/queue/active" "$PF/queue/deferred" \
	    "$PF/queue/hold" "$PF/queue/maildrop" -type f 2>/dev/null | wc -l
}
pf_busy() {
	find "$PF/queue/incoming" "$PF/queue/active" "$PF/queue/maildrop" -type f 2>/dev/null | wc -l
}
# Let Postfix's queue manager finish deferring what it took, so that work
# does not run into the next measurement (bounded).
pf_drain() {
	local i
	for ((i = 0; i < 600; i++)); do
		(( $(pf_busy) == 0 )) && return 0
		sleep 0.1
	done
	log "Postfix still has $(pf_busy) messages in incoming/active after 60 s"
}

# --- etrnd -----------------------------------------------------------------
et_start() {	# et_start LOG: 0 once etrnd listens and its control socket exists
	local i
	rm -f "$OUT/etrnd-control.sock"
	"$ETRND" -c "$ETCONF" >>"$1" 2>&1 &
	ET_PID=$!
	for ((i = 0; i < 400; i++)); do
		if ! alive "$ET_PID"; then
			log "etrnd exited at start:"
			tail -5 "$1" >&2
			wait "$ET_PID" 2>/dev/null || true
			ET_PID=""
			return 1
		fi
		port_listening "$ET_PORT" && [[ -S $OUT/etrnd-control.sock ]] && return 0
		sleep 0.05
	done
	log "etrnd did not start within 20 s"
	return 1
}
et_stop() {	# et_stop SIGNAL
	[[ -n $ET_PID ]] || return 0
	kill "-$1" "$ET_PID" 2>/dev/null || true
	local rc=0
	wait "$ET_PID" 2>/dev/null || rc=$?
	ET_PID=""
	return "$rc"
}
et_status() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$ET_PID/status"; }
# etrnctl --json summary: [{"domain":"d0.bench.test","messages":N,...},...]
et_summary() { "$ETRNCTL" -c "$ETCONF" --json summary 2>>"$OUT/etrnctl.err"; }
et_queued() {	# messages in etrnd's queue; "error" if etrnctl fails
	local j
	j=$(et_summary) || { echo error; return 0; }
	{ grep -o '"messages":[0-9]*' <<<"$j" || true; } | awk -F: '{ n += $2 } END { print n + 0 }'
}
et_domains() {
	local j
	j=$(et_summary) || { echo error; return 0; }
	{ grep -o '"domain":' <<<"$j" || true; } | wc -l
}

# ---------------------------------------------------------------------------
# One load run.  smtp-source takes one recipient address (-t) per process,
# so the domains are spread over processes: LOADERS processes run in
# parallel, each with SESSIONS/LOADERS sessions (-s); group g sends N/DOMAINS
# messages to rcpt@d{g}.bench.test, then as many to d{g+LOADERS}, ... so the
# N messages spread evenly over all the domains with SESSIONS sessions open
# throughout.  smtp-source aborts (exit 1) on any reply that is not 2xx, so
# an invocation that exits 0 got a 250 for every one of its messages.
#   run_load TAG PORT SIZE MODE N [LOADERS NDOMAINS]
#     ->  R_SECS R_OK R_FAILS R_ERR R_CPU (client CPU seconds)
run_load() {
	local tag=$1 port=$2 size=$3 mode=$4 n=$5 groups=${6:-$LOADERS} ndom=${7:-$DOMAINS}
	local per=$((n / ndom)) spp=$((SESSIONS / groups)) dir=$OUT/runs/$1 g d t0 t1
	local dflag=()
	[[ $mode == reuse ]] && dflag=(-d)
	mkdir -p "$dir"
	SLOT_PIDS=()
	t0=$(mono)
	for ((g = 0; g < groups; g++)); do
		(
			for ((d = g; d < ndom; d += groups)); do
				rc=0
				timeout -k 5 "$RUN_TIMEOUT" "$SMTP_SOURCE" -4 "${dflag[@]}" \
				    -s "$spp" -l "$size" -m "$per" -N -M client.bench.test \
				    -f sender@client.bench.test -t "rcpt@d$d.bench.test" \
				    "127.0.0.1:$port" >"$dir/d$d.out" 2>"$dir/d$d.err" || rc=$?
				echo "$rc" >"$dir/d$d.rc"
			done
			times >"$dir/g$g.times"
		) &
		SLOT_PIDS+=($!)
	done
	wait "${SLOT_PIDS[@]}"
	t1=$(mono)
	SLOT_PIDS=()
	R_SECS=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
	# the children's user and system time, second line of each `times`
	R_CPU=$(awk 'FNR == 2 { for (i = 1; i <= 2; i++) { split($i, t, /[ms]/); c += t[1] * 60 + t[2] } }
	    END { printf "%.1f", c }' "$dir"/g*.times)
	R_OK=0 R_FAILS=0 R_ERR=""
	local rc
	for ((d = 0; d < ndom; d++)); do
		rc=$(cat "$dir/d$d.rc" 2>/dev/null || echo missing)
		if [[ $rc == 0 ]]; then
			R_OK=$((R_OK + per))
		else
			# nothing of a failed invocation is counted
			R_FAILS=$((R_FAILS + 1))
			[[ -z $R_ERR ]] && R_ERR="d$d: rc=$rc $(head -c 300 "$dir/d$d.err" | tr '\n' ' ')"
		fi
	done
	return 0
}

rate() { fdiv "$1" "$2"; }

# The message count of a measured run: RATE x SECONDS x LAYOUT_FACTOR,
# rounded up to a multiple of DOMAINS, within [5 x DOMAINS, cap].  RATE comes
# from a probe run of one smtp-source process (50 sessions, one domain),
# which also warms the server up.  The measured run's 100 smtp-source
# start-ups and 10 processes make it slower than the probe (by 1.3-1.8x
# here), hence LAYOUT_FACTOR.  One message per connection is capped at
# 25,000 so the ephemeral ports of 127.0.0.1 last.
LAYOUT_FACTOR=0.7
pick_n() {	# pick_n TARGET SIZE MODE RATE SECONDS FACTOR
	local var="BENCH_N_$1_$2_$3" cap=200000
	if [[ -n ${!var:-} ]]; then
		echo $(( (${!var} + DOMAINS - 1) / DOMAINS * DOMAINS ))
		return
	fi
	[[ $3 == conn ]] && cap=25000
	awk -v r="$4" -v t="$5" -v f="$6" -v m="$DOMAINS" -v cap="$cap" 'BEGIN {
		x = r * t * f; x = int((x + m - 1) / m) * m
		if (x < 5 * m) x = 5 * m; if (x > cap) x = cap; print x }'
}

# ---------------------------------------------------------------------------
declare -A RATE SECS NMSG FAILS ERRS CCPU SCPU
declare -A ET_RSS ET_CHECK ET_WARN PF_CHECK
FAILED_ANY=0

cpu_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }

# measure TARGET PORT SIZE MODE PROBE_N SERVER_PID LOADERS NDOMAINS SECONDS [RATE [N]]
# A probe of PROBE_N messages (one smtp-source process, one domain) unless
# RATE is given, then the measured run with LOADERS processes over NDOMAINS
# domains, of N messages when N is given (the same workload as another
# run), else of a count picked from the rate.  SERVER_PID (may be empty): a
# process whose CPU time over the measured run is recorded.  Sets
# PROBE_OK PROBE_FAILS and run_load's R_*.
measure() {
	local t=$1 port=$2 size=$3 mode=$4 pn=$5 spid=$6 lo=$7 nd=$8 secs=$9 r=${10:-}
	local fixed=${11:-}
	local key="$1/$3/$4" n c0=0 c1=0
	PROBE_OK=0 PROBE_FAILS=0
	if [[ -z $r ]]; then
		log "$t ${size}B $mode: probe $pn"
		run_load "$t-$size-$mode-probe" "$port" "$size" "$mode" "$pn" 1 1
		PROBE_OK=$R_OK PROBE_FAILS=$R_FAILS
		if (( R_FAILS )); then
			FAILED_ANY=1
			log "$t ${size}B $mode: probe failed: $R_ERR"
		fi
		r=$(rate "$R_OK" "$R_SECS")
		[[ $r == n/a ]] && r=0
	fi
	local f=$LAYOUT_FACTOR
	(( lo == 1 )) && f=1
	if [[ -n $fixed ]]; then
		n=$fixed
	else
		n=$(pick_n "$t" "$size" "$mode" "$r" "$secs" "$f")
	fi
	[[ $t == postfix ]] && pf_drain
	log "$t ${size}B $mode: $n messages"
	[[ -n $spid ]] && c0=$(cpu_ticks "$spid")
	run_load "$t-$size-$mode" "$port" "$size" "$mode" "$n" "$lo" "$nd"
	[[ -n $spid ]] && c1=$(cpu_ticks "$spid")
	NMSG[$key]=$n SECS[$key]=$R_SECS FAILS[$key]=$R_FAILS ERRS[$key]=$R_ERR CCPU[$key]=$R_CPU
	SCPU[$key]=$(awk -v a="$c0" -v b="$c1" -v h="$CLK_TCK" -v p="$spid" 'BEGIN { if (p == "") print "n/a"; else printf "%.1f", (b - a) / h }')
	RATE[$key]=$(rate "$R_OK" "$R_SECS")
	if (( R_FAILS )); then
		FAILED_ANY=1
		log "$t ${size}B $mode: $R_FAILS smtp-source invocation(s) failed: $R_ERR"
	fi
	log "$t ${size}B $mode: $R_OK accepted in $R_SECS s = ${RATE[$key]} msg/s"
}

# combine TARGET SIZE MODE: TARGET's two runs A and B as one (their
# messages over their seconds)
combine() {
	local k="$1/$2/$3" a="${1}A/$2/$3" b="${1}B/$2/$3"
	NMSG[$k]=$(( ${NMSG[$a]} + ${NMSG[$b]} ))
	FAILS[$k]=$(( ${FAILS[$a]} + ${FAILS[$b]} ))
	ERRS[$k]=${ERRS[$a]:-${ERRS[$b]}}
	SECS[$k]=$(awk -v a="${SECS[$a]}" -v b="${SECS[$b]}" 'BEGIN { printf "%.2f", a + b }')
	CCPU[$k]=$(awk -v a="${CCPU[$a]}" -v b="${CCPU[$b]}" 'BEGIN { printf "%.1f", a + b }')
	SCPU[$k]=$(awk -v a="${SCPU[$a]}" -v b="${SCPU[$b]}" 'BEGIN { if (a == "n/a" || b == "n/a") print "n/a"; else printf "%.1f", a + b }')
	RATE[$k]=$(awk -v a="${RATE[$a]}" -v b="${RATE[$b]}" -v x="${SECS[$a]}" -v y="${SECS[$b]}" \
	    'BEGIN { if (a == "n/a" || b == "n/a") print "n/a"; else printf "%.1f", (a * x + b * y) / (x + y) }')
}

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
T_START=$(mono)
PF_BASE=0
for size in $SIZES; do
	for mode in $MODES; do
		# reference: one smtp-source process, 50 sessions, one domain
		measure sink1 "$SINK_PORT" "$size" "$mode" 2000 "$SINK_PID" 1 1 "$REF_SECONDS"
		# sink0 sizes the workload (its count N is every later run's)
		measure sink0 "$SINK_PORT" "$size" "$mode" 0 "$SINK_PID" "$LOADERS" "$DOMAINS" \
		    "$SECONDS_TARGET" "${RATE[sink1/$size/$mode]}"
		n=${NMSG[sink0/$size/$mode]}

		PF_BASE=$(pf_queued)
		measure postfix "$PF_PORT" "$size" "$mode" 300 "" "$LOADERS" "$DOMAINS" "$SECONDS_TARGET"
		pf_drain
		key="postfix/$size/$mode"
		got=$(( $(pf_queued) - PF_BASE ))
		sent=$((PROBE_OK + R_OK))
		PF_CHECK[$key]="$got of $sent in the queue"
		(( PROBE_FAILS + R_FAILS )) && PF_CHECK[$key]+=" (client failures: count is a lower bound)"

		# etrnd: a fresh daemon and queue for every workload
		rm -rf "$ETQ"
		etlog=$OUT/etrnd-$size-$mode.log
		et_start "$etlog" || exit 1
		# the sink's workload exactly: the ratio compares like with like
		# (a run's rate depends on its count: 100 smtp-source start-ups
		# and their sessions' uneven ends weigh more in a shorter run).
		# etrnd and the sink alternate, A B B A: the machine's speed
		# drifts between runs here, and a drift that is steady over the
		# four runs weighs on both alike
		measure etrndA "$ET_PORT" "$size" "$mode" 2000 "$ET_PID" "$LOADERS" "$DOMAINS" "$SECONDS_TARGET" \
		    "" "$n"
		sent=$((PROBE_OK + R_OK))
		measure sinkA "$SINK_PORT" "$size" "$mode" 0 "$SINK_PID" "$LOADERS" "$DOMAINS" "$SECONDS_TARGET" 1 "$n"
		measure sinkB "$SINK_PORT" "$size" "$mode" 0 "$SINK_PID" "$LOADERS" "$DOMAINS" "$SECONDS_TARGET" 1 "$n"
		measure etrndB "$ET_PORT" "$size" "$mode" 0 "$ET_PID" "$LOADERS" "$DOMAINS" "$SECONDS_TARGET" 1 "$n"
		sent=$((sent + R_OK))
		combine sink "$size" "$mode"
		combine etrnd "$size" "$mode"
		key="etrnd/$size/$mode"
		hwm=$(et_status VmHWM)
		ET_RSS[$key]=$(awk -v k="${hwm:-0}" 'BEGIN { printf "%.1f", k / 1024 }')
		live=$(et_queued)
		doms=$(et_domains)
		# durability: SIGKILL, restart on the same queue, count again
		et_stop KILL || true
		echo "--- bench: SIGKILL, restart on the same queue ---" >>"$etlog"
		if et_start "$etlog"; then
			after=$(et_queued)
			et_stop TERM || echo "--- bench: etrnd exited non-zero after SIGTERM ---" >>"$etlog"
		else
			after="(no restart)"
			et_stop KILL || true
		fi
		verdict=FAIL
		if [[ $live == "$sent" && $after == "$sent" && $doms == "$DOMAINS" ]] &&
		    (( PROBE_FAILS + R_FAILS == 0 )); then
			verdict=ok
		fi
		[[ $verdict == ok ]] || FAILED_ANY=1
		ET_CHECK[$key]="$verdict: client got 250 for $sent; etrnctl summary: $live in $doms domains while running, $after after kill -9 and restart"
		ET_WARN[$key]=$(grep -cE 'level=(warn|error)' "$etlog" || true)
	done
done
T_END=$(mono)
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# The delivery half: flush and ETRN, etrnd beside Postfix (bench/delivery.sh)
if [[ ${BENCH_DELIVERY:-yes} == yes ]]; then
	# shellcheck source=bench/delivery.sh
	. "$ROOT/bench/delivery.sh"
fi

# The load part: 10,000 sessions held open, mail through a share of them,
# the caps and slowloris clients (bench/load.sh; writes $OUT/load.md)
if [[ ${BENCH_LOAD:-yes} == yes ]]; then
	# shellcheck source=bench/load.sh
	. "$ROOT/bench/load.sh"
fi

# ---------------------------------------------------------------------------
# Report.
pf_warn=$(grep -E 'warning:|fatal:|panic:' "$PF/maillog" 2>/dev/null | grep -vc 'not owned by postfix' || true)
fmt_rate() { awk -v r="$1" 'BEGIN { if (r == "n/a") print r; else printf "%.0f", r }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "n/a" || b == "n/a" || b + 0 == 0) print "n/a"; else printf "%.2f", a / b }'; }
size_name() { awk -v s="$1" 'BEGIN { if (s % 1024 == 0) printf "%d KB", s / 1024; else printf "%d B", s }'; }
mode_name() { [[ $1 == reuse ]] && echo "many per connection (-d)" || echo "one per connection"; }

report() {
	local size mode k ok
	echo "# etrnd benchmark"
	echo
	echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, load average $LOAD_BEFORE before and $LOAD_AFTER after;"
	echo "etrnd $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo '?') ($BUILD), Postfix $(postconf -h mail_version 2>/dev/null)."
	echo "Load: smtp-source, $SESSIONS sessions ($LOADERS processes x $((SESSIONS / LOADERS)) sessions, each process cycling through $((DOMAINS / LOADERS)) of the $DOMAINS domains),"
	echo "1 recipient per message; measured runs of about $SECONDS_TARGET s after a probe run."
	echo "msg/s = messages that got a 250 / wall time of the run, counted by the client. Total $(awk -v a="$T_START" -v b="$T_END" 'BEGIN { printf "%.0f", b - a }') s."
	echo
	echo "| size | mode | sink msg/s (ceiling) | Postfix msg/s | etrnd msg/s | etrnd/ceiling | etrnd/ceiling, A and B | etrnd/Postfix | etrnd peak RSS MB | target: etrnd >= 0.80 x ceiling | ref: sink, 1 smtp-source process, 1 domain | etrnd/ref |"
	echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|"
	for size in $SIZES; do
		for mode in $MODES; do
			local s=${RATE[sink/$size/$mode]} p=${RATE[postfix/$size/$mode]} e=${RATE[etrnd/$size/$mode]} r1=${RATE[sink1/$size/$mode]}
			local rc rp
			rc=$(ratio "$e" "$s"); rp=$(ratio "$e" "$p")
			ok=$(awk -v r="$rc" 'BEGIN { if (r == "n/a") print "n/a"; else print (r >= 0.80) ? "met" : "NOT met" }')
			for k in sink0 sink postfix etrnd; do
				(( ${FAILS[$k/$size/$mode]} )) && ok="$ok (failures, see below)" && break
			done
			local ab="$(ratio "${RATE[etrndA/$size/$mode]}" "${RATE[sinkA/$size/$mode]}"), $(ratio "${RATE[etrndB/$size/$mode]}" "${RATE[sinkB/$size/$mode]}")"
			echo "| $(size_name "$size") | $(mode_name "$mode") | $(fmt_rate "$s") | $(fmt_rate "$p") | $(fmt_rate "$e") | $rc | $ab | $rp | ${ET_RSS[etrnd/$size/$mode]} | $ok | $(fmt_rate "$r1") | $(ratio "$e" "$r1") |"
		done
	done
	echo
	echo "## Runs"
	echo
	echo "Client CPU: user+system seconds of all smtp-source processes of the run; server CPU: of the smtp-sink or etrnd process (Postfix: not measured)."
	echo
	echo "| size | mode | server | messages | seconds | msg/s | client CPU s | server CPU s | failed smtp-source invocations | notes |"
	echo "|---|---|---|---:|---:|---:|---:|---:|---:|---|"
	for size in $SIZES; do
		for mode in $MODES; do
			for k in sink1 sink0 postfix etrndA sinkA sinkB etrndB; do
				local key=$k/$size/$mode note=""
				case $k in
				sink1) note="reference: 1 process, -s $SESSIONS, all to d0" ;;
				sink0) note="sets the count of the runs below" ;;
				etrndA) note="warn/error lines in its log (A and B): ${ET_WARN[etrnd/$size/$mode]}" ;;
				postfix) note="queue files: ${PF_CHECK[$key]}" ;;
				esac
				[[ -n ${ERRS[$key]} ]] && note="$note; first error: ${ERRS[$key]}"
				echo "| $(size_name "$size") | $mode | $k | ${NMSG[$key]} | ${SECS[$key]} | $(fmt_rate "${RATE[$key]}") | ${CCPU[$key]} | ${SCPU[$key]} | ${FAILS[$key]} | $note |"
			done
		done
	done
	echo
	echo "## Durability check (etrnd)"
	echo
	for size in $SIZES; do
		for mode in $MODES; do
			echo "- $(size_name "$size"), $(mode_name "$mode"): ${ET_CHECK[etrnd/$size/$mode]}"
		done
	done
	echo
	echo "## Commands"
	echo
	echo "    $SMTP_SINK -4 -u nobody 127.0.0.1:$SINK_PORT 1024"
	echo "    # per run, $LOADERS in parallel; each runs its $((DOMAINS / LOADERS)) domains K in turn (N = messages of the run):"
	echo "    $SMTP_SOURCE -4 [-d] -s $((SESSIONS / LOADERS)) -l SIZE -m N/$DOMAINS -N -M client.bench.test -f sender@client.bench.test -t rcpt@dK.bench.test 127.0.0.1:PORT"
	echo "    # probes and the sink1 reference: one process"
	echo "    $SMTP_SOURCE -4 [-d] -s $SESSIONS -l SIZE -m N -N -M client.bench.test -f sender@client.bench.test -t rcpt@d0.bench.test 127.0.0.1:PORT"
	echo
	echo "Postfix log: $pf_warn warning/fatal/panic lines (bench/out/postfix/maillog)."
	echo "Raw output: bench/out/runs/ (per smtp-source invocation), bench/out/etrnd-*.log."
	if [[ -s $OUT/delivery.md ]]; then
		echo
		cat "$OUT/delivery.md"
	fi
	if [[ -s $OUT/load.md ]]; then
		echo
		cat "$OUT/load.md"
	fi
}

report | tee "$OUT/report.md"
if (( FAILED_ANY )); then
	log "some runs failed or the durability check failed: see the report"
	exit 1
fi
