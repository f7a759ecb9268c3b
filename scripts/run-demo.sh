#!/bin/sh
# run-demo.sh BUILD - start etrnd in the foreground with the demo
# configuration; its queue and control socket live under run/ in the tree.
set -eu
build=${1:-build}
mkdir -p run
./"$build"/etrnd -n -c demo/etrnd.conf
echo "etrnd: listening on 127.0.0.1:2525 (Ctrl-C stops it)"
echo "try:   swaks --server 127.0.0.1:2525 --to user@example.org"
echo "       ./$build/etrnctl -c demo/etrnd.conf summary"
exec ./"$build"/etrnd -c demo/etrnd.conf
