# delivery.sh - the delivery half of `make bench`, sourced by run.sh after
# the accept half (it uses run.sh's Postfix instance, smtp-sink, variables
# and functions).  Two measurements, each beside Postfix:
#   flush: BENCH_FLUSH_N queued 5 KB messages of one domain, flushed to
#          smtp-sink: messages per second and etrnd's CPU per message;
#   ETRN:  reply latency and the node's first and last delivery with the
#          queue holding BENCH_ETRN_SIZES recipients over 1,000 domains,
#          the node 1,000 of them (Postfix at BENCH_ETRN_PF_N, a size it
#          fills in reasonable time).
# Results go to $OUT/delivery.md, which the report includes.

FLUSH_N=${BENCH_FLUSH_N:-10000}
ETRN_SIZES=${BENCH_ETRN_SIZES:-"10000 100000 1000000"}
ETRN_PF_N=${BENCH_ETRN_PF_N:-10000}
NODE_N=1000
FE=$ROOT/bench/flush_etrn.py
DLV=$OUT/delivery.md
: >"$DLV"

jget() { /usr/bin/python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(d.get(sys.argv[2]))' "$1" "$2"; }

# pf_fill N DOMAIN: N 5 KB messages for DOMAIN through Postfix's smtpd
pf_fill() {
	local n=$1 dom=$2 per=$(( ($1 + 9) / 10 )) i pids=()
	for ((i = 0; i < 10; i++)); do
		timeout 900 "$SMTP_SOURCE" -4 -s 5 -l 5120 -m "$per" -N \
		    -M client.bench.test -f sender@client.bench.test \
		    -t "rcpt@$dom" "127.0.0.1:$PF_PORT" >/dev/null 2>&1 &
		pids+=($!)
	done
	for i in "${pids[@]}"; do wait "$i" || log "smtp-source to Postfix failed"; done
	pf_drain
}

# Postfix routes the two bench nodes to smtp-sink, once flushed
postconf -c "$PF/etc" -e \
    "relay_domains = $DOMAIN_LIST flush.bench.test node.bench.test" \
    "transport_maps = inline:{flush.bench.test=smtp:[127.0.0.1]:$SINK_PORT, node.bench.test=smtp:[127.0.0.1]:$SINK_PORT}" \
    "smtp_tls_security_level = none"
postfix -c "$PF/etc" reload >/dev/null 2>&1 || true
sleep 1

# --- flush (the delivery engine) ---------------------------------------------
log "flush: etrnd, $FLUSH_N messages of one domain"
et_json=$("$FE" etrnd "$OUT" "$BUILD" "$SINK_PORT" "$ET_PORT" "$FLUSH_N" "$FLUSH_N" | tail -1)
et_last=$(jget "$et_json" last_s)
et_cpu=$(jget "$et_json" cpu_ms_per_msg)

log "flush: Postfix, filling $FLUSH_N messages"
base=$(pf_queued)
pf_fill "$FLUSH_N" flush.bench.test
pf_n=$(( $(pf_queued) - base ))
log "flush: Postfix holds $pf_n; postqueue -s flush.bench.test"
t0=$(mono)
postqueue -c "$PF/etc" -s flush.bench.test
pf_last=n/a
for ((i = 0; i < 12000; i++)); do
	if (( $(pf_queued) <= base )); then
		pf_last=$(awk -v a="$t0" -v b="$(mono)" 'BEGIN { printf "%.2f", b - a }')
		break
	fi
	sleep 0.05
done
{
	echo "## Flush: $FLUSH_N queued 5 KB messages of one domain to smtp-sink"
	echo
	echo "| server | messages | seconds to empty | msg/s | CPU ms per message |"
	echo "|---|---:|---:|---:|---:|"
	echo "| etrnd | $FLUSH_N | $et_last | $(fdiv "$FLUSH_N" "$et_last") | $et_cpu |"
	echo "| Postfix | $pf_n | $pf_last | $(fdiv "$pf_n" "$pf_last") | (several processes: not measured) |"
	echo
	echo "etrnd/Postfix: $(awk -v e="$et_last" -v p="$pf_last" -v ne="$FLUSH_N" -v np="$pf_n" 'BEGIN { if (e + 0 > 0 && p + 0 > 0) printf "%.1f", (ne / e) / (np / p); else print "n/a" }') times the messages per second (target: 10)."
	echo
} >>"$DLV"

# --- ETRN: reply latency and the node's delivery, by queue size -----------
log "ETRN: etrnd at $ETRN_SIZES recipients"
{
	echo "## ETRN: reply latency and delivery of a node holding $NODE_N of the queue's recipients"
	echo
	echo "Latency: the first ETRN for the node (which starts the flush) and the 200 that follow it in the same session (they join the flush; each still counts the node's mail), client-side time from sending ETRN to the whole reply. First/last: from the first ETRN until the node's first and last message left the queue for smtp-sink."
	echo
	echo "| server | queue recipients | start-up ms | first reply | median ms | p99 ms | first delivered s | last delivered s | CPU ms/msg |"
	echo "|---|---:|---:|---|---:|---:|---:|---:|---:|"
} >>"$DLV"
"$FE" etrnd "$OUT" "$BUILD" "$SINK_PORT" "$ET_PORT" "$ETRN_SIZES" "$NODE_N" |
while read -r j; do
	printf '| etrnd | %s | %s | %s | %s | %s | %s | %s | %s |\n' \
	    "$(jget "$j" queue)" "$(jget "$j" startup_ms)" "$(jget "$j" first_reply)" \
	    "$(jget "$j" lat_median_ms)" "$(jget "$j" lat_p99_ms)" \
	    "$(jget "$j" first_s)" "$(jget "$j" last_s)" "$(jget "$j" cpu_ms_per_msg)" >>"$DLV"
done

log "ETRN: Postfix at $ETRN_PF_N recipients"
base=$(pf_queued)
rest=$(( ETRN_PF_N - NODE_N ))
pf_fill "$rest" d7.bench.test
pf_fill "$NODE_N" node.bench.test
held=$(( $(pf_queued) - base ))
lats=()
j=$("$FE" postfix-etrn "$PF_PORT" node.bench.test)
t0=$(mono)
first=n/a last=n/a
for ((i = 0; i < 12000; i++)); do
	now=$(pf_queued)
	if [[ $first == n/a ]] && (( now < base + held )); then
		first=$(awk -v a="$t0" -v b="$(mono)" 'BEGIN { printf "%.2f", b - a }')
	fi
	if (( now <= base + held - NODE_N )); then
		last=$(awk -v a="$t0" -v b="$(mono)" 'BEGIN { printf "%.2f", b - a }')
		break
	fi
	sleep 0.05
done
for ((i = 0; i < 20; i++)); do
	lats+=("$(jget "$("$FE" postfix-etrn "$PF_PORT" node.bench.test)" lat_ms)")
done
med=$(printf '%s\n' "${lats[@]}" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
printf '| Postfix | %s | - | %s | %s (20 more ETRNs) | - | %s | %s | - |\n' \
    "$held" "$(jget "$j" reply)" "$med" "$first" "$last" >>"$DLV"
{
	echo
	echo "Postfix's first reply latency: $(jget "$j" lat_ms) ms. Its queue is filled through SMTP (about its accept rate), which bounds the sizes it is measured at."
	echo
} >>"$DLV"
