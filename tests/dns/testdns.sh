#!/bin/sh
# testdns.sh start|stop|check DIR PORT - the test DNS server of the suites
#
# Runs NSD (Debian's nsd package) as an authoritative server for the zone
# "test." on 127.0.0.1:PORT.  Every file it reads or writes (nsd.conf, the
# zone, its pid file, log and state files) lives in DIR; nothing outside DIR
# is touched and no system service is involved.  NSD daemonizes; "stop"
# kills it by the pid in DIR/nsd.pid.
#
#   start  write the config and zone, start NSD, wait (at most 10 s) until it
#          answers "node1.test MX"; on failure print nsd.log and exit 1
#   check  exit 0 when the server at PORT answers, 1 otherwise
#   stop   kill the NSD whose pid is in DIR/nsd.pid and wait for it to exit
#
# The zone is written here so the tests can rely on its names; every name
# is listed in the comment above the zone below.
set -u
PATH=$PATH:/usr/sbin:/sbin	# nsd, nsd-checkzone

usage() {
	echo "usage: $0 start|stop|check DIR PORT" >&2
	exit 2
}

[ $# -eq 3 ] || usage
cmd=$1
dir=$2
port=$3
case $port in
''|*[!0-9]*) usage ;;
esac

answers() {	# answers: the server gives an authoritative answer
	dig @127.0.0.1 -p "$port" +norec +time=1 +tries=1 node1.test MX \
	    2>/dev/null | grep -q 'status: NOERROR'
}

write_config() {
	cat >"$dir/nsd.conf" <<CONF
server:
	ip-address: 127.0.0.1
	port: $port
	server-count: 1
	username: ""
	chroot: ""
	zonesdir: "$dir"
	database: ""
	zonelistfile: "$dir/zone.list"
	xfrdfile: "$dir/xfrd.state"
	xfrdir: "$dir"
	pidfile: "$dir/nsd.pid"
	logfile: "$dir/nsd.log"
	verbosity: 1
	hide-version: yes
remote-control:
	control-enable: no
zone:
	name: "test"
	zonefile: "$dir/test.zone"
# configured but its file is never written: NSD answers SERVFAIL in it
zone:
	name: "servfail.test"
	zonefile: "$dir/servfail.zone"
CONF
}

# The names of the zone "test." and what each one is for:
#
#   ns.test             the zone's own name server (A 127.0.0.1)
#   node1.test          MX 10 mx1.node1.test (127.0.0.1), MX 20
#                       mx2.node1.test (127.0.0.2); the readiness probe
#   mx2.test            MX 10 mxa.mx2 (127.0.0.2), MX 20 mxb.mx2 (127.0.0.3),
#                       MX 30 mxc.mx2 (127.0.0.4), MX 30 mxd.mx2 (127.0.0.5):
#                       two different preferences, then two equal ones
#   aonly.test          no MX, A 127.0.0.1 only: implicit MX (RFC 5321 5.1)
#   v6.test             no MX, AAAA ::1 only
#   dual.test           no MX, A 127.0.0.1 and AAAA ::1
#   nullmx.test         MX 0 . (null MX, RFC 7505)
#   noaddr.test         no MX and no address (a TXT record only)
#   relay.test          our own name in the tests, A 127.0.0.1
#   self.test           MX 10 relay.test: the only MX is ourselves -> loop
#   selfbest.test       MX 10 relay.test, MX 20 mxb.mx2.test: we are the
#                       best MX, nothing better remains -> loop
#   selfbackup.test     MX 10 mxa.mx2.test, MX 20 relay.test, MX 30
#                       mxc.mx2.test: only mxa.mx2.test remains
#   selfaddr.test       MX 10 mx.selfaddr.test, A 127.0.0.9 (the tests give
#                       127.0.0.9 as "ours") -> loop by address
#   selfaddrbk.test     MX 10 mxa.mx2.test, MX 20 mx.selfaddr.test: only
#                       mxa.mx2.test remains
#   a.cname.test        CNAME b.cname.test, and b.cname.test CNAME
#                       a.cname.test: a CNAME loop
#   alias.test          CNAME mx2.test: MX found through a CNAME
#   lame.test           delegated (NS ns.lame.test, glue A 127.0.0.1) to a
#                       server that is never asked: NSD answers with a
#                       referral, no answer and no AA bit
#   mxlame.test         MX 10 host.lame.test: the MX host is in the lame zone
#   nxmx.test           MX 10 host.nxd.test: the MX host does not exist
#   halfnx.test         MX 10 host.nxd.test, MX 20 mxb.mx2.test
#   many.test           12 MX m1..m12.many.test (preferences 1..12), each
#                       A 127.0.1.N: truncated to 10 hosts, 5 addresses
#   wide.test           MX 10 host.wide.test with 20 A records
#                       127.0.2.1..20: truncated to 5 addresses
#   badname.test        MX 10 "bad\032name.test" (a space in a label): an
#                       MX name that is not a host name
#   nxd.test            not defined: NXDOMAIN
#   servfail.test       a zone of its own in nsd.conf whose zone file does
#                       not exist: NSD answers SERVFAIL for every name in
#                       it (e.g. "servfail.test MX")
#   mxservfail.test     MX 10 host.servfail.test: the MX host's lookup
#                       gets SERVFAIL
write_zone() {
	cat >"$dir/test.zone" <<'ZONE'
$ORIGIN test.
$TTL 60
@		IN SOA	ns.test. hostmaster.test. ( 1 3600 600 86400 60 )
		IN NS	ns.test.
ns		IN A	127.0.0.1

node1		IN MX	10 mx1.node1.test.
node1		IN MX	20 mx2.node1.test.
node1		IN A	127.0.0.1
mx1.node1	IN A	127.0.0.1
mx2.node1	IN A	127.0.0.2

mx2		IN MX	10 mxa.mx2.test.
mx2		IN MX	20 mxb.mx2.test.
mx2		IN MX	30 mxc.mx2.test.
mx2		IN MX	30 mxd.mx2.test.
mxa.mx2		IN A	127.0.0.2
mxb.mx2		IN A	127.0.0.3
mxc.mx2		IN A	127.0.0.4
mxd.mx2		IN A	127.0.0.5

aonly		IN A	127.0.0.1
v6		IN AAAA	::1
dual		IN A	127.0.0.1
dual		IN AAAA	::1
nullmx		IN MX	0 .
noaddr		IN TXT	"no mail here"

relay		IN A	127.0.0.1
self		IN MX	10 relay.test.
selfbest	IN MX	10 relay.test.
selfbest	IN MX	20 mxb.mx2.test.
selfbackup	IN MX	10 mxa.mx2.test.
selfbackup	IN MX	20 relay.test.
selfbackup	IN MX	30 mxc.mx2.test.
selfaddr	IN MX	10 mx.selfaddr.test.
mx.selfaddr	IN A	127.0.0.9
selfaddrbk	IN MX	10 mxa.mx2.test.
selfaddrbk	IN MX	20 mx.selfaddr.test.

a.cname		IN CNAME b.cname.test.
b.cname		IN CNAME a.cname.test.
alias		IN CNAME mx2.test.

lame		IN NS	ns.lame.test.
ns.lame		IN A	127.0.0.1
mxlame		IN MX	10 host.lame.test.

nxmx		IN MX	10 host.nxd.test.
halfnx		IN MX	10 host.nxd.test.
halfnx		IN MX	20 mxb.mx2.test.

many		IN MX	1 m1.many.test.
many		IN MX	2 m2.many.test.
many		IN MX	3 m3.many.test.
many		IN MX	4 m4.many.test.
many		IN MX	5 m5.many.test.
many		IN MX	6 m6.many.test.
many		IN MX	7 m7.many.test.
many		IN MX	8 m8.many.test.
many		IN MX	9 m9.many.test.
many		IN MX	10 m10.many.test.
many		IN MX	11 m11.many.test.
many		IN MX	12 m12.many.test.
m1.many		IN A	127.0.1.1
m2.many		IN A	127.0.1.2
m3.many		IN A	127.0.1.3
m4.many		IN A	127.0.1.4
m5.many		IN A	127.0.1.5
m6.many		IN A	127.0.1.6
m7.many		IN A	127.0.1.7
m8.many		IN A	127.0.1.8
m9.many		IN A	127.0.1.9
m10.many	IN A	127.0.1.10
m11.many	IN A	127.0.1.11
m12.many	IN A	127.0.1.12

wide		IN MX	10 host.wide.test.
host.wide	IN A	127.0.2.1
host.wide	IN A	127.0.2.2
host.wide	IN A	127.0.2.3
host.wide	IN A	127.0.2.4
host.wide	IN A	127.0.2.5
host.wide	IN A	127.0.2.6
host.wide	IN A	127.0.2.7
host.wide	IN A	127.0.2.8
host.wide	IN A	127.0.2.9
host.wide	IN A	127.0.2.10
host.wide	IN A	127.0.2.11
host.wide	IN A	127.0.2.12
host.wide	IN A	127.0.2.13
host.wide	IN A	127.0.2.14
host.wide	IN A	127.0.2.15
host.wide	IN A	127.0.2.16
host.wide	IN A	127.0.2.17
host.wide	IN A	127.0.2.18
host.wide	IN A	127.0.2.19
host.wide	IN A	127.0.2.20

badname		IN MX	10 bad\032name.test.

mxservfail	IN MX	10 host.servfail.test.
ZONE
}

start() {
	mkdir -p "$dir" || exit 1
	dir=$(cd "$dir" && pwd) || exit 1
	if [ -s "$dir/nsd.pid" ] && kill -0 "$(cat "$dir/nsd.pid")" 2>/dev/null
	then
		echo "testdns: NSD already running in $dir" >&2
		exit 1
	fi
	rm -f "$dir/nsd.pid" "$dir/nsd.log"
	write_config
	write_zone
	if ! nsd-checkzone test "$dir/test.zone" >"$dir/checkzone.log" 2>&1
	then
		cat "$dir/checkzone.log" >&2
		exit 1
	fi
	if ! nsd -c "$dir/nsd.conf" >>"$dir/nsd.log" 2>&1; then
		echo "testdns: nsd failed to start" >&2
		cat "$dir/nsd.log" >&2
		exit 1
	fi
	i=0
	while [ $i -lt 100 ]; do		# 100 x 0.1 s
		if answers; then
			exit 0
		fi
		sleep 0.1
		i=$((i + 1))
	done
	echo "testdns: no answer from 127.0.0.1:$port within 10 s" >&2
	cat "$dir/nsd.log" >&2
	stop_nsd
	exit 1
}

stop_nsd() {
	[ -s "$dir/nsd.pid" ] || return 0
	pid=$(cat "$dir/nsd.pid")
	case $pid in
	''|*[!0-9]*) return 1 ;;
	esac
	kill "$pid" 2>/dev/null || { rm -f "$dir/nsd.pid"; return 0; }
	i=0
	while kill -0 "$pid" 2>/dev/null && [ $i -lt 50 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	if kill -0 "$pid" 2>/dev/null; then
		kill -9 "$pid" 2>/dev/null
	fi
	rm -f "$dir/nsd.pid"
}

case $cmd in
start)	start ;;
stop)	stop_nsd ;;
check)	answers ;;
*)	usage ;;
esac
