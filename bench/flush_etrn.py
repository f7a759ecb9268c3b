#!/usr/bin/python3
"""flush_etrn.py - the delivery side of `make bench`: how fast a flush
empties a domain, how fast ETRN answers, etrnd beside Postfix.

  flush_etrn.py etrnd OUT BUILD SINK_PORT PORT SIZES NODE_MSGS
      etrnd: for each queue size (recipients over 1,000 domains, the node
      holding NODE_MSGS of them), filled with etrnd-fill: start-up time,
      ETRN reply latency (the first ETRN for the node starts its flush, the
      next 200 join it: each reply still counts the node's mail), and the
      time until the node's first and last message reached smtp-sink,
      with etrnd's CPU per delivered message.
  flush_etrn.py postfix-etrn PORT NODE
      one ETRN to Postfix: its reply latency, printed as JSON.

Prints one JSON object per measurement; run.sh turns them into tables.
Everything is on 127.0.0.1 and bounded in time."""

import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")


def etrn_session(port):
    s = socket.create_connection(("127.0.0.1", port), 10)
    f = s.makefile("rb")

    def reply():
        lines = []
        while True:
            ln = f.readline()
            if not ln:
                raise EOFError("connection closed")
            lines.append(ln)
            if ln[3:4] != b"-":
                return int(ln[:3]), b"".join(lines)
    reply()
    s.sendall(b"EHLO bench.test\r\n")
    reply()
    return s, reply


def etrn_once(s, reply, node):
    t = time.perf_counter()
    s.sendall(b"ETRN " + node.encode() + b"\r\n")
    code, text = reply()
    return time.perf_counter() - t, code, text


def pctl(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / CLK_TCK


def pending(etrnctl, conf, node):
    r = subprocess.run([etrnctl, "-c", conf, "--json", "list", node],
                       capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise RuntimeError(r.stderr)
    return len(json.loads(r.stdout))


def run_etrnd(out, build, sink_port, port, sizes, node_msgs):
    fill = os.path.join(build, "etrnd-fill")
    etrnd = os.path.join(out, "bin", "etrnd")
    etrnctl = os.path.join(out, "bin", "etrnctl")
    node = "node.bench.test"
    for size in sizes:
        qdir = os.path.join(out, f"etrn-queue-{size}")
        conf = os.path.join(out, f"etrn-{size}.conf")
        sock = os.path.join(out, f"etrn-{size}.sock")
        log = os.path.join(out, f"etrnd-etrn-{size}.log")
        subprocess.run(["rm", "-rf", qdir], check=True)
        with open(conf, "w") as f:
            f.write(f"hostname = relay.bench.test\nlisten = 127.0.0.1:{port}\n"
                    f"queue_dir = {qdir}\ncontrol = {sock}\n"
                    "etrn_clients = 127.0.0.0/8\netrn_rate = 100000\n\n"
                    f"[domain {node}]\nroute = [127.0.0.1]:{sink_port}\n"
                    "mode = hold\ntls = none\n\n"
                    "[domain bench.test]\nroute = [127.0.0.1]:1\nmode = hold\n"
                    "subdomains = yes\n")
        t = time.perf_counter()
        subprocess.run([fill, qdir, str(size), "1000", node, str(node_msgs),
                        "5120"], check=True, stdout=subprocess.DEVNULL)
        fill_s = time.perf_counter() - t
        subprocess.run(["sync"], check=True)
        logf = open(log, "wb")
        t = time.perf_counter()
        proc = subprocess.Popen([etrnd, "-c", conf], stdout=logf,
                                stderr=logf)
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                if proc.poll() is not None or time.perf_counter() - t > 60:
                    raise RuntimeError(f"etrnd did not start: {log}")
                time.sleep(0.002)
        startup_s = time.perf_counter() - t
        try:
            cpu0 = cpu_seconds(proc.pid)
            s, reply = etrn_session(port)
            t0 = time.perf_counter()
            lat, code, text = etrn_once(s, reply, node)
            first_text = text.decode().strip()
            lats = [lat]
            codes = {code: 1}
            for i in range(200):
                if i % 50 == 49:
                    # a session may send only so many non-mail commands
                    s.sendall(b"QUIT\r\n")
                    s.close()
                    s, reply = etrn_session(port)
                lat, code, _t = etrn_once(s, reply, node)
                lats.append(lat)
                codes[code] = codes.get(code, 0) + 1
            first = last = None
            deadline = time.perf_counter() + 600
            while time.perf_counter() < deadline:
                left = pending(etrnctl, conf, node)
                now = time.perf_counter() - t0
                if first is None and left < node_msgs:
                    first = now
                if left == 0:
                    last = now
                    break
                time.sleep(0.01)
            cpu = cpu_seconds(proc.pid) - cpu0
            s.sendall(b"QUIT\r\n")
            s.close()
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
            logf.close()
        print(json.dumps({
            "kind": "etrnd-etrn", "queue": size, "node": node_msgs,
            "fill_s": round(fill_s, 2), "startup_ms": round(startup_s * 1000, 1),
            "first_reply": first_text,
            "lat_median_ms": round(statistics.median(lats) * 1000, 3),
            "lat_p99_ms": round(pctl(lats, 99) * 1000, 3),
            "replies": codes,
            "first_s": round(first, 3) if first is not None else None,
            "last_s": round(last, 3) if last is not None else None,
            "cpu_ms_per_msg": round(cpu * 1000 / node_msgs, 3),
        }), flush=True)
        subprocess.run(["rm", "-rf", qdir])


def run_postfix_etrn(port, node):
    s, reply = etrn_session(port)
    lat, code, text = etrn_once(s, reply, node)
    s.sendall(b"QUIT\r\n")
    s.close()
    print(json.dumps({"kind": "postfix-etrn", "lat_ms": round(lat * 1000, 3),
                      "reply": text.decode().strip()}), flush=True)


def main():
    if len(sys.argv) >= 8 and sys.argv[1] == "etrnd":
        run_etrnd(sys.argv[2], sys.argv[3], int(sys.argv[4]),
                  int(sys.argv[5]), [int(x) for x in sys.argv[6].split()],
                  int(sys.argv[7]))
    elif len(sys.argv) == 4 and sys.argv[1] == "postfix-etrn":
        run_postfix_etrn(int(sys.argv[2]), sys.argv[3])
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
