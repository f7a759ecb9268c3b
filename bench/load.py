#!/usr/bin/python3
"""load.py - the client of the load part of `make bench` (run by bench/load.sh).

Against one etrnd on 127.0.0.1:PORT whose domain is in mode hold, in one
asyncio process (standard library only), in four phases:

  hold       open SESSIONS SMTP sessions (greeting, EHLO), PER_ADDR per
             source address from 127.0.0.2 on, so that the per-client cap
             is never reached; every refusal is counted (a 421, a
             connection error, no greeting within 15 s).  The sessions are
             then held open; each sends a NOOP every 30-50 % of
             idle_timeout, as a live client would, so the timeout does not
             end them.  The connect rate is sessions established (EHLO
             answered) per second while opening.
  mail       with all of them open, SENDERS of them send SIZE-byte messages
             (MAIL, RCPT, DATA pipelined, then the body) in a loop for
             MAIL_SECONDS: the accept rate, counted as 250s after the dot.
  cap        more sessions up to max_connections (none may be refused),
             then a few further ones, which must get a 421 at once; then
             every session says QUIT.
  slowloris  TRICKLE clients that send an EHLO line one byte every
             TRICKLE_INTERVAL seconds (a line takes minutes), SILENT
             clients that never send, and one address opening PER_CLIENT +
             GREEDY_EXTRA sessions; they must be dropped (421 4.4.2 at
             idle_timeout; 421 at once past the per-client cap) while a
             fresh client from a new address, every 2 s, gets its greeting
             and a message through within 5 s.

etrnd's memory (VmRSS, VmHWM from /proc/PID/status) and CPU time are
sampled every half second and at each phase's end.  Writes the figures as
JSON (--json) and a Markdown section (--md); exits 0 when every target was
met, 1 when one was missed, 2 when the run could not be made.
"""

import argparse
import asyncio
import collections
import json
import logging
import os
import random
import resource
import socket
import statistics
import sys
import time

MONO = time.monotonic
IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)
OPEN_TIMEOUT = 15.0	# connect + greeting + EHLO of one session
REPLY_TIMEOUT = 15.0	# one reply while held
MSG_TIMEOUT = 30.0	# one whole transaction
OPENING = 400		# handshakes in flight at once
CAP_MS = 1000.0		# "at once": a 421 past a cap within this
FRESH_EVERY = 2.0	# a fresh client every so many seconds of slowloris
FRESH_LIMIT = 5.0	# ... served (greeting and 250 after the dot) within
SLOW_GRACE = 5.0	# dropped by idle_timeout + this counts as dropped in time
SLOW_WINDOW = 12.0	# wait at most idle_timeout + this past the last greeting
RSS_LIMIT_KB = 1024 * 1024


def log(msg):
    print(f"bench: load: {msg}", file=sys.stderr, flush=True)


# --- source addresses: all of 127/8 is loopback on Linux -------------------
class AddrPool:
    """Hands out 127.x.y.z addresses from a start, `per` sessions each."""

    def __init__(self, second, third, fourth, per):
        self.i = (second * 254 + third) * 254 + (fourth - 1)
        self.per = per
        self.used = 0
        self.addrs = []

    def take(self):
        if self.used % self.per == 0:
            i = self.i
            self.i += 1
            a = f"127.{i // 64516}.{(i // 254) % 254}.{i % 254 + 1}"
            self.addrs.append(a)
        self.used += 1
        return self.addrs[-1]


# --- SMTP plumbing ----------------------------------------------------------
class Refusal(Exception):
    """An SMTP reply that ends the session for us (e.g. a 421)."""


async def open_session(src, port):
    """A connected stream pair from address src to etrnd."""
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        # the port is chosen at connect time, per 4-tuple: no bind-time
        # shortage of ephemeral ports with thousands of sockets per address
        sock.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
        sock.bind((src, 0))
        await loop.sock_connect(sock, ("127.0.0.1", port))
        return await asyncio.open_connection(sock=sock, limit=1 << 16)
    except BaseException:
        sock.close()
        raise


async def read_reply(r):
    """(code, [lines]) of one reply, multi-line replies joined."""
    lines = []
    while True:
        line = await r.readline()
        if not line.endswith(b"\n"):
            raise EOFError("connection closed" + (
                f" after {line[:60]!r}" if line else ""))
        lines.append(line.rstrip(b"\r\n").decode("ascii", "replace"))
        if len(line) < 4 or line[3:4] != b"-":
            break
    try:
        code = int(lines[0][:3])
    except ValueError:
        code = 0
    return code, lines


def shape(text, host):
    """A reply line with etrnd's host name taken out, to group them."""
    return text.replace(f" {host} ", " HOST ") if host else text


def why(e):
    """A short reason for a failed session."""
    if isinstance(e, (TimeoutError, asyncio.TimeoutError)):
        return "timeout"
    if isinstance(e, Refusal):
        return str(e)
    if isinstance(e, EOFError):
        return "closed by etrnd"
    if isinstance(e, OSError) and e.errno is not None:
        import errno as _errno
        return f"{_errno.errorcode.get(e.errno, e.errno)}"
    return type(e).__name__


def close(w):
    if w is not None:
        try:
            w.close()
        except Exception:
            pass


# --- etrnd's process ---------------------------------------------------------
CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_status(pid):
    """{'VmRSS': kB, 'VmHWM': kB} or None when the process is gone."""
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmRSS", "VmHWM", "State"):
                    out[k] = v.split()[0]
    except OSError:
        return None
    if out.get("State") == "Z":
        return None
    return {k: int(out.get(k, 0)) for k in ("VmRSS", "VmHWM")}


def proc_cpu(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            f = f.read().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / CLK_TCK
    except (OSError, IndexError, ValueError):
        return None


def proc_fds(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


def self_cpu():
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime


# --- the run -----------------------------------------------------------------
class Run:
    def __init__(self, a):
        self.a = a
        self.t0 = MONO()
        self.host = ""
        self.phase = "idle"
        self.open_sem = asyncio.Semaphore(OPENING)
        self.mail_go = asyncio.Event()
        self.release = asyncio.Event()
        self.mail_deadline = 0.0
        # per pool ("hold", "fill"): opened, refused reasons, lost reasons
        self.opened = collections.Counter()
        self.refused = collections.defaultdict(collections.Counter)
        self.lost = collections.defaultdict(collections.Counter)
        self.quit_ok = collections.Counter()
        self.first_open = {}
        self.last_open = {}
        self.noops = 0
        self.pipelining = True
        self.senders_started = 0
        self.senders_done = 0
        self.mail_ok = 0
        self.mail_fail = collections.Counter()
        self.mail_lat = []
        self.mail_t0 = self.mail_t1 = 0.0
        self.fresh_ok = 0
        self.samples = []	# (t, phase, rss kB)
        self.snaps = []
        self.etrnd_gone = False
        self.peak_rss = 0
        self.peak_rss_phase = ""

    def held(self, pool):
        return self.opened[pool] - sum(self.lost[pool].values())

    def snap(self, label, sessions):
        st = proc_status(self.a.pid)
        if st is None:
            self.etrnd_gone = True
            st = {"VmRSS": None, "VmHWM": None}
        s = {"point": label, "t": round(MONO() - self.t0, 2),
             "sessions": sessions, "rss_kb": st["VmRSS"],
             "hwm_kb": st["VmHWM"], "fds": proc_fds(self.a.pid),
             "cpu_s": proc_cpu(self.a.pid), "client_cpu_s": self_cpu()}
        self.snaps.append(s)
        return s


async def sampler(run):
    while True:
        st = proc_status(run.a.pid)
        if st is None:
            if not run.etrnd_gone:
                log("etrnd is gone")
            run.etrnd_gone = True
            return
        run.samples.append((round(MONO() - run.t0, 2), run.phase, st["VmRSS"]))
        if st["VmRSS"] > run.peak_rss:
            run.peak_rss, run.peak_rss_phase = st["VmRSS"], run.phase
        await asyncio.sleep(0.5)


async def until(pred, limit):
    end = MONO() + limit
    while not pred():
        if MONO() >= end:
            return False
        await asyncio.sleep(0.1)
    return True


async def noop_until(run, ev, r, w):
    """Hold the session, a NOOP every 30-50 % of idle_timeout, until ev."""
    idle = run.a.idle_timeout
    while not ev.is_set():
        try:
            async with asyncio.timeout(random.uniform(0.3, 0.5) * idle):
                await ev.wait()
        except TimeoutError:
            w.write(b"NOOP\r\n")
            async with asyncio.timeout(REPLY_TIMEOUT):
                code, lines = await read_reply(r)
            if code != 250:
                raise Refusal(shape(lines[0], run.host))
            run.noops += 1


def make_message(size):
    head = (b"From: <load@client.bench.test>\r\n"
            b"To: <rcpt@load.bench.test>\r\n"
            b"Subject: bench load\r\n\r\n")
    line = b"x" * 78 + b"\r\n"
    body = bytearray(head)
    while len(body) + len(line) <= size:
        body += line
    body += b"y" * max(0, size - len(body) - 2) + b"\r\n"
    return bytes(body) + b".\r\n"


async def transaction(run, r, w, pipelined):
    """One message; (True, None) on a 250 after the dot, else (False, why)."""
    env = [b"MAIL FROM:<load@client.bench.test>\r\n",
           b"RCPT TO:<rcpt@load.bench.test>\r\n", b"DATA\r\n"]
    want = (250, 250, 354)
    if pipelined:
        w.write(b"".join(env))
    for i, cmd in enumerate(env):
        if not pipelined:
            w.write(cmd)
        code, lines = await read_reply(r)
        if code != want[i]:
            if i < 2 and pipelined:
                # the rest of the group is still answered
                for _ in range(i + 1, 3):
                    c2, _l = await read_reply(r)
                    if c2 == 354:
                        w.write(b".\r\n")
                        await read_reply(r)
            w.write(b"RSET\r\n")
            await read_reply(r)
            return False, f"{code} after {cmd.split()[0].decode()}: " + \
                shape(lines[0], run.host)
    w.write(run.message)
    code, lines = await read_reply(r)
    if code != 250:
        return False, "after the dot: " + shape(lines[0], run.host)
    return True, None


async def mail_loop(run, r, w):
    run.senders_started += 1
    try:
        while MONO() < run.mail_deadline:
            t = MONO()
            async with asyncio.timeout(MSG_TIMEOUT):
                ok, err = await transaction(run, r, w, run.pipelining)
            if ok:
                run.mail_ok += 1
                run.mail_lat.append(MONO() - t)
            else:
                run.mail_fail[err] += 1
    finally:
        run.senders_done += 1


async def held_session(run, pool, src, sender=False):
    """One legitimate session: open, EHLO, hold (maybe send), QUIT."""
    w = None
    try:
        async with run.open_sem:
            t = MONO()
            run.first_open.setdefault(pool, t)
            try:
                async with asyncio.timeout(OPEN_TIMEOUT):
                    r, w = await open_session(src, run.a.port)
                    code, lines = await read_reply(r)
                    if code != 220:
                        raise Refusal(f"greeting {shape(lines[0], run.host)}")
                    if not run.host:
                        run.host = lines[0].split()[1] if len(lines[0].split()) > 1 else ""
                    w.write(b"EHLO load.bench.test\r\n")
                    code, lines = await read_reply(r)
                    if code != 250:
                        raise Refusal(f"EHLO {shape(lines[0], run.host)}")
                    if not any("PIPELINING" in x for x in lines):
                        run.pipelining = False
            except (OSError, EOFError, TimeoutError, Refusal) as e:
                run.refused[pool][why(e)] += 1
                return
            run.opened[pool] += 1
            run.last_open[pool] = MONO()
        try:
            if sender:
                await noop_until(run, run.mail_go, r, w)
                if MONO() < run.mail_deadline:
                    await mail_loop(run, r, w)
            await noop_until(run, run.release, r, w)
            w.write(b"QUIT\r\n")
            async with asyncio.timeout(REPLY_TIMEOUT):
                code, _l = await read_reply(r)
            if code == 221:
                run.quit_ok[pool] += 1
        except (OSError, EOFError, TimeoutError, Refusal) as e:
            run.lost[pool][f"{run.phase}: {why(e)}"] += 1
    finally:
        close(w)


async def past_cap(run, src):
    """A connection that should be refused at once: {code, text, ms}."""
    t = MONO()
    w = None
    try:
        async with asyncio.timeout(5):
            r, w = await open_session(src, run.a.port)
            code, lines = await read_reply(r)
            ms = (MONO() - t) * 1000
            rest = await r.read()	# then closed by etrnd
            return {"code": code, "text": shape(lines[0], run.host),
                    "ms": round(ms, 1), "closed": rest == b""}
    except (OSError, EOFError, TimeoutError) as e:
        return {"code": None, "text": why(e), "ms": None, "closed": None}
    finally:
        close(w)


# --- slowloris ---------------------------------------------------------------
async def slow_client(run, kind, src, rec):
    """kind "trickle" sends a byte every interval; "silent" never sends."""
    w = None
    try:
        async with run.open_sem:
            t = MONO()
            try:
                async with asyncio.timeout(OPEN_TIMEOUT):
                    r, w = await open_session(src, run.a.port)
                    code, lines = await read_reply(r)
            except (OSError, EOFError, TimeoutError) as e:
                rec["refused"] = why(e)
                return
        if code != 220:
            rec["refused"] = shape(lines[0], run.host)
            rec["refused_ms"] = (MONO() - t) * 1000
            return
        rec["greeted"] = MONO()
        line = b"EHLO " + b"s" * 200 + b".bench.test\r\n"
        interval = run.a.trickle_interval
        nxt = MONO() + random.uniform(0.2, interval)
        i = 0
        while True:
            wait = None
            if kind == "trickle":
                if MONO() >= nxt:
                    w.write(line[i % len(line):i % len(line) + 1])
                    i += 1
                    rec["bytes"] = i
                    nxt += interval
                wait = max(0.05, nxt - MONO())
            try:
                async with asyncio.timeout(wait):
                    data = await r.read(1024)
            except TimeoutError:
                continue
            if not data:
                rec["dropped"] = MONO() - rec["greeted"]
                return
            rec.setdefault("got", shape(data.decode("ascii", "replace")
                                        .splitlines()[0], run.host))
    except (OSError, EOFError) as e:
        if "greeted" in rec:
            rec["dropped"] = MONO() - rec["greeted"]
            rec.setdefault("got", why(e))
        else:
            rec["refused"] = why(e)
    finally:
        close(w)


async def fresh_client(run, src, t_phase):
    """A new client during slowloris: greeting and one message, timed."""
    rec = {"at_s": round(MONO() - t_phase, 1), "src": src}
    w = None
    t = MONO()
    try:
        async with asyncio.timeout(2 * FRESH_LIMIT):
            r, w = await open_session(src, run.a.port)
            code, lines = await read_reply(r)
            rec["greeting_ms"] = round((MONO() - t) * 1000, 1)
            if code != 220:
                rec["error"] = shape(lines[0], run.host)
                return rec
            w.write(b"EHLO fresh.bench.test\r\n")
            code, lines = await read_reply(r)
            if code != 250:
                rec["error"] = "EHLO: " + shape(lines[0], run.host)
                return rec
            ok, err = await transaction(run, r, w, False)
            rec["message_ms"] = round((MONO() - t) * 1000, 1)
            if not ok:
                rec["error"] = err
                return rec
            run.fresh_ok += 1
            w.write(b"QUIT\r\n")
            await read_reply(r)
    except (OSError, EOFError, TimeoutError) as e:
        rec["error"] = why(e) + f" after {(MONO() - t):.1f} s"
    finally:
        close(w)
    return rec


# --- phases ------------------------------------------------------------------
async def phases(run, res):
    a = run.a
    sampler_task = asyncio.create_task(sampler(run))
    res["snapshots"] = run.snaps
    run.snap("idle", 0)

    # hold: SESSIONS sessions
    run.phase = "opening"
    pool = AddrPool(0, 0, 2, a.per_addr)
    every = max(1, a.sessions // max(1, a.senders))
    tasks = []
    t_open = MONO()
    log(f"opening {a.sessions} sessions ({a.per_addr} per source address)")
    for i in range(a.sessions):
        sender = a.senders > 0 and i % every == 0 and i // every < a.senders
        tasks.append(asyncio.create_task(
            held_session(run, "hold", pool.take(), sender)))
    settled = await until(lambda: run.opened["hold"] +
                          sum(run.refused["hold"].values()) >= a.sessions or
                          run.etrnd_gone, 120)
    t_last = run.last_open.get("hold", MONO())
    res["hold"] = {
        "sessions": a.sessions, "addresses": len(pool.addrs),
        "first_address": pool.addrs[0], "last_address": pool.addrs[-1],
        "opened": run.opened["hold"],
        "refused": dict(run.refused["hold"]),
        "settled": settled,
        "open_s": round(t_last - t_open, 2),
        "connect_rate": round(run.opened["hold"] / max(1e-3, t_last - t_open), 1),
    }
    log(f"{run.opened['hold']} open, {sum(run.refused['hold'].values())} refused, "
        f"{res['hold']['open_s']} s ({res['hold']['connect_rate']}/s)")
    await asyncio.sleep(1)
    run.snap(f"{a.sessions:,} open", run.held("hold"))

    # mail: SENDERS of them send for MAIL_SECONDS
    if a.senders > 0 and not run.etrnd_gone:
        run.phase = "mail"
        c0, k0 = proc_cpu(a.pid), self_cpu()
        run.mail_t0 = MONO()
        run.mail_deadline = run.mail_t0 + a.mail_seconds
        log(f"mail through {a.senders} of them for {a.mail_seconds} s")
        run.mail_go.set()
        await asyncio.sleep(1)
        await until(lambda: run.senders_done >= run.senders_started or
                    run.etrnd_gone, a.mail_seconds + MSG_TIMEOUT + 5)
        run.mail_t1 = MONO()
        c1, k1 = proc_cpu(a.pid), self_cpu()
        secs = run.mail_t1 - run.mail_t0
        lat = sorted(run.mail_lat)
        res["mail"] = {
            "senders": run.senders_started, "seconds": round(secs, 2),
            "accepted": run.mail_ok,
            "rate": round(run.mail_ok / secs, 1) if secs > 0 else None,
            "failed": dict(run.mail_fail),
            "pipelining": run.pipelining,
            "lat_median_ms": round(statistics.median(lat) * 1000, 1) if lat else None,
            "lat_p99_ms": round(lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000, 1) if lat else None,
            "etrnd_cpu_s": round(c1 - c0, 2) if c0 is not None and c1 is not None else None,
            "client_cpu_s": round(k1 - k0, 2),
            "held_meanwhile": run.held("hold"),
        }
        log(f"{run.mail_ok} messages accepted in {secs:.1f} s "
            f"({res['mail']['rate']}/s), {sum(run.mail_fail.values())} failed")
        run.snap("after the mail", run.held("hold"))

    # cap: fill up to max_connections, then a few more
    run.phase = "cap"
    need = a.max_connections - run.held("hold")
    fpool = AddrPool(0, 100, 1, a.per_addr)
    log(f"filling up to max_connections: {need} more sessions")
    for _ in range(max(0, need)):
        tasks.append(asyncio.create_task(held_session(run, "fill", fpool.take())))
    await until(lambda: run.opened["fill"] + sum(run.refused["fill"].values())
                >= need or run.etrnd_gone, 60)
    await asyncio.sleep(0.5)
    at_cap = run.held("hold") + run.held("fill")
    run.snap("at max_connections", at_cap)
    xpool = AddrPool(0, 200, 1, 1)
    extra = await asyncio.gather(*(past_cap(run, xpool.take())
                                   for _ in range(a.past_cap)))
    res["cap"] = {"needed": need, "opened": run.opened["fill"],
                  "refused": dict(run.refused["fill"]),
                  "held_at_cap": at_cap, "past_cap": extra}
    log(f"at the cap: {at_cap} held; past it: " +
        ", ".join(f"{e['code']} in {e['ms']} ms" for e in extra))

    # release everything
    run.phase = "release"
    run.release.set()
    await until(lambda: all(t.done() for t in tasks), 30)
    for t in tasks:
        if not t.done():
            t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    res["held"] = {
        "noops": run.noops,
        "lost": {p: dict(run.lost[p]) for p in ("hold", "fill")},
        "quit_221": dict(run.quit_ok),
    }
    await asyncio.sleep(1)
    run.snap("all released", 0)

    # slowloris
    run.phase = "slowloris"
    t_slow = MONO()
    recs = {"trickle": [], "silent": [], "one address": []}
    stasks = []
    tp = AddrPool(1, 0, 1, a.per_addr)
    sp = AddrPool(2, 0, 1, a.per_addr)
    gp = AddrPool(3, 0, 1, 1 << 30)
    log(f"slowloris: {a.trickle} trickling (a byte every {a.trickle_interval} s), "
        f"{a.silent} silent, {a.per_client + a.greedy_extra} from one address")
    for kind, n, p, k in (("trickle", a.trickle, tp, "trickle"),
                          ("silent", a.silent, sp, "silent"),
                          ("silent", a.per_client + a.greedy_extra, gp, "one address")):
        for _ in range(n):
            rec = {}
            recs[k].append(rec)
            stasks.append(asyncio.create_task(slow_client(run, kind, p.take(), rec)))
    fresh = []
    fpool2 = AddrPool(4, 0, 1, 1)
    all_slow = [r for v in recs.values() for r in v]

    def slow_settled():
        return all(("refused" in r) or ("dropped" in r) for r in all_slow)

    def window_over():
        g = [r["greeted"] for r in all_slow if "greeted" in r]
        last = max(g) if g else t_slow
        return MONO() > last + a.idle_timeout + SLOW_WINDOW and \
            MONO() > t_slow + a.idle_timeout + SLOW_WINDOW
    while not run.etrnd_gone and not (slow_settled() and MONO() > t_slow + 6) \
            and not window_over() and MONO() < t_slow + a.idle_timeout + 60:
        fresh.append(asyncio.create_task(fresh_client(run, fpool2.take(), t_slow)))
        await asyncio.sleep(FRESH_EVERY)
    t_end = MONO()
    for t in stasks:
        if not t.done():
            t.cancel()
    await asyncio.gather(*stasks, return_exceptions=True)
    fresh = await asyncio.gather(*fresh)
    await asyncio.sleep(1)	# etrnd sees the closes

    def summary(v):
        greeted = [r for r in v if "greeted" in r]
        dropped = sorted(r["dropped"] for r in greeted if "dropped" in r)
        refused = [r for r in v if "refused" in r]
        return {
            "clients": len(v), "greeted": len(greeted),
            "refused": len(refused),
            "refused_text": dict(collections.Counter(r["refused"] for r in refused)),
            "refused_max_ms": round(max((r.get("refused_ms", 0) for r in refused), default=0), 1) if refused else None,
            "dropped": len(dropped),
            "dropped_min_s": round(dropped[0], 1) if dropped else None,
            "dropped_median_s": round(statistics.median(dropped), 1) if dropped else None,
            "dropped_max_s": round(dropped[-1], 1) if dropped else None,
            "dropped_in_time": sum(1 for d in dropped if d <= a.idle_timeout + SLOW_GRACE),
            "still_open": len(greeted) - len(dropped),
            "got": dict(collections.Counter(r.get("got", "(nothing)") for r in greeted if "dropped" in r)),
            "bytes_sent_max": max((r.get("bytes", 0) for r in v), default=0),
        }
    res["slowloris"] = {
        "window_s": round(t_end - t_slow, 1),
        "trickle_interval_s": a.trickle_interval,
        "groups": {k: summary(v) for k, v in recs.items()},
        "fresh": fresh,
    }
    for k, v in res["slowloris"]["groups"].items():
        log(f"slowloris {k}: {v['dropped']} of {v['greeted']} dropped "
            f"({dash(v['dropped_min_s'])}-{dash(v['dropped_max_s'])} s), {v['refused']} refused, "
            f"{v['still_open']} still open after {res['slowloris']['window_s']} s")
    served = sum(1 for f in fresh if "error" not in f and f.get("message_ms", 1e9) <= FRESH_LIMIT * 1000)
    log(f"fresh clients: {served} of {len(fresh)} served within {FRESH_LIMIT:.0f} s")
    run.phase = "end"
    sampler_task.cancel()
    await asyncio.gather(sampler_task, return_exceptions=True)
    end = run.snap("end (after slowloris)", 0)
    res["peak_rss_kb"] = run.peak_rss
    res["peak_rss_phase"] = run.peak_rss_phase
    res["hwm_kb"] = end["hwm_kb"] if end["hwm_kb"] is not None else \
        max((s["hwm_kb"] or 0 for s in run.snaps), default=0)
    res["accepted_total"] = run.mail_ok + run.fresh_ok
    res["etrnd_gone"] = run.etrnd_gone
    res["samples"] = run.samples


# --- verdicts and the report -------------------------------------------------
def mb(kb):
    return "n/a" if kb is None else f"{kb / 1024:.1f}"


def dash(x):
    return "-" if x is None else str(x)


def n(x):
    return f"{x:,}" if isinstance(x, int) else str(x)


def verdicts(a, res):
    """[(target, result, met)]"""
    out = []
    hwm = res.get("hwm_kb")
    out.append(("etrnd's RSS under 1 GB (peak, VmHWM)",
                f"{mb(hwm)} MB" if hwm else "n/a",
                bool(hwm) and hwm < RSS_LIMIT_KB))
    h, c, held = res["hold"], res["cap"], res["held"]
    refused = sum(h["refused"].values()) + sum(c["refused"].values())
    lost = sum(sum(v.values()) for v in held["lost"].values())
    out.append(("no legitimate session refused below the caps",
                f"{refused} refused of {n(h['sessions'] + c['needed'])} opened "
                f"({n(h['sessions'])} + {n(c['needed'])} up to max_connections); "
                f"{lost} lost while held",
                refused == 0 and lost == 0 and h["opened"] == h["sessions"]))
    m = res.get("mail")
    if m:
        fails = sum(m["failed"].values())
        out.append((f"mail flows while {n(a.sessions)} sessions are open",
                    f"{n(m['accepted'])} accepted ({m['rate']} msg/s), {fails} failed",
                    m["accepted"] > 0 and fails == 0))
    pc = c["past_cap"]
    ok = [e for e in pc if e["code"] == 421 and e["ms"] is not None and e["ms"] <= CAP_MS]
    out.append(("past max_connections: 421 at once",
                f"{len(ok)} of {len(pc)} got 421 within {CAP_MS:.0f} ms "
                f"(slowest {max((e['ms'] or 0) for e in pc) if pc else 'n/a'} ms)",
                len(ok) == len(pc) and len(pc) > 0))
    g = res["slowloris"]["groups"]
    one = g["one address"]
    out.append(("past max_connections_per_client: 421 at once",
                f"one address, {one['clients']} sessions: {one['greeted']} held, "
                f"{one['refused']} refused (slowest {one['refused_max_ms']} ms)",
                one["greeted"] == a.per_client and one["refused"] == a.greedy_extra and
                (one["refused_max_ms"] or 0) <= CAP_MS and
                all(t.startswith("421") for t in one["refused_text"])))
    for k, label in (("silent", "silent clients dropped at idle_timeout"),
                     ("trickle", f"trickling clients (a byte every {a.trickle_interval:g} s) "
                      "dropped at idle_timeout")):
        s = g[k]
        out.append((label,
                    f"{s['dropped_in_time']} of {s['greeted']} dropped within "
                    f"{a.idle_timeout + SLOW_GRACE:g} s; {s['still_open']} still open after "
                    f"{res['slowloris']['window_s']} s",
                    s["greeted"] == s["clients"] and s["dropped_in_time"] == s["greeted"]))
    s = g["one address"]
    out.append(("the one address's held sessions dropped at idle_timeout",
                f"{s['dropped_in_time']} of {s['greeted']}",
                s["dropped_in_time"] == s["greeted"]))
    fr = res["slowloris"]["fresh"]
    served = [f for f in fr if "error" not in f and f["message_ms"] <= FRESH_LIMIT * 1000]
    out.append((f"a fresh client served within {FRESH_LIMIT:g} s during slowloris",
                f"{len(served)} of {len(fr)}",
                len(fr) > 0 and len(served) == len(fr)))
    if res.get("etrnd_gone"):
        out.append(("etrnd alive to the end", "etrnd exited during the run", False))
    return out


def pct(v, q):
    v = sorted(v)
    return v[min(len(v) - 1, int(len(v) * q))] if v else None


def markdown(a, res, vs):
    L = []
    add = L.append
    la = open("/proc/loadavg").read().split()[:3]
    add(f"## Load: {n(a.sessions)} concurrent sessions, mail through {a.senders} of them, slowloris")
    add("")
    add(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} CPUs, "
        f"load average {res['loadavg_before']} before and {' '.join(la)} after; "
        f"{res['seconds']:.0f} s in all. Client: bench/load.py, one asyncio process "
        f"(Python {sys.version.split()[0]}), {OPENING} handshakes in flight at most while opening. "
        f"Open-file limit of etrnd and the client: {a.nofile}.")
    add("")
    add(f"etrnd configuration (`{a.conf}`): `max_connections = {a.max_connections}`, "
        f"`max_connections_per_client = {a.per_client}`, `idle_timeout = {a.idle_timeout:g}s`, "
        f"`data_timeout = {a.data_timeout:g}s`, one domain in `mode = hold`; everything else the default. "
        f"Sessions are spread over source addresses, {a.per_addr} per address "
        f"({res['hold']['first_address']} to {res['hold']['last_address']} for the "
        f"{n(a.sessions)}), so only the run's own cap tests reach a cap.")
    add("")
    add("| target | result | verdict |")
    add("|---|---|---|")
    for t, r, ok in vs:
        add(f"| {t} | {r} | {'met' if ok else '**NOT met**'} |")
    add("")
    h = res["hold"]
    add("### Sessions and mail")
    add("")
    add("| figure | value |")
    add("|---|---:|")
    add(f"| sessions opened (greeting + EHLO answered) | {n(h['opened'])} of {n(h['sessions'])} |")
    add(f"| connect rate while opening | {h['connect_rate']:,.0f} sessions/s ({h['open_s']} s) |")
    add(f"| refused while opening | {sum(h['refused'].values())}"
        + (f" ({', '.join(f'{k}: {v}' for k, v in h['refused'].items())})" if h["refused"] else "") + " |")
    m = res.get("mail")
    if m:
        add(f"| senders (sessions among the open ones) | {m['senders']} |")
        add(f"| messages accepted (250 after the dot), {a.size} bytes, 1 recipient | {n(m['accepted'])} in {m['seconds']} s |")
        add(f"| **accept rate with {n(m['held_meanwhile'])} sessions open** | **{m['rate']} msg/s** |")
        add(f"| transaction latency median / p99 (MAIL to the 250 after the dot) | {m['lat_median_ms']} / {m['lat_p99_ms']} ms |")
        add(f"| failed transactions | {sum(m['failed'].values())}"
            + (f" ({'; '.join(f'{k}: {v}' for k, v in m['failed'].items())})" if m["failed"] else "") + " |")
        add(f"| CPU over the mail phase: etrnd / client | {m['etrnd_cpu_s']} s / {m['client_cpu_s']} s |")
    held = res["held"]
    add(f"| NOOPs sent to keep sessions within idle_timeout | {n(held['noops'])} |")
    lost = {f"{p}/{k}": v for p, d in held["lost"].items() for k, v in d.items()}
    add(f"| sessions lost while held | {sum(lost.values())}"
        + (f" ({', '.join(f'{k}: {v}' for k, v in lost.items())})" if lost else "") + " |")
    add(f"| QUIT answered 221 at the release | {n(sum(held['quit_221'].values()))} |")
    add("")
    add("### etrnd's memory")
    add("")
    add("| point | sessions open | VmRSS MB | VmHWM MB | open descriptors | etrnd CPU s (cumulative) |")
    add("|---|---:|---:|---:|---:|---:|")
    for s in res["snapshots"]:
        cpu = "n/a" if s["cpu_s"] is None else f"{s['cpu_s']:.1f}"
        add(f"| {s['point']} | {n(s['sessions'])} | {mb(s['rss_kb'])} | {mb(s['hwm_kb'])} | "
            f"{s['fds'] if s['fds'] is not None else 'n/a'} | "
            f"{cpu} |")
    snaps = {s["point"]: s for s in res["snapshots"]}
    idle, full = snaps.get("idle"), snaps.get(f"{a.sessions:,} open")
    if idle and full and idle["rss_kb"] and full["rss_kb"] and full["sessions"]:
        per = (full["rss_kb"] - idle["rss_kb"]) / full["sessions"]
        add("")
        add(f"About {per:.1f} KB of RSS per held session (({mb(full['rss_kb'])} - {mb(idle['rss_kb'])}) MB "
            f"/ {n(full['sessions'])}). Highest VmRSS sampled (every 0.5 s): "
            f"{mb(res['peak_rss_kb'])} MB, in the {res['peak_rss_phase']} phase.")
    add("")
    c = res["cap"]
    add("### Caps")
    add("")
    add(f"With {n(c['held_at_cap'])} sessions held (the {n(a.sessions)} plus {n(c['opened'])} more, "
        f"{sum(c['refused'].values())} of which refused), {len(c['past_cap'])} further connections "
        f"from new addresses:")
    add("")
    add("| # | first reply | ms to it | then closed |")
    add("|---:|---|---:|---|")
    for i, e in enumerate(c["past_cap"], 1):
        add(f"| {i} | {e['text']} | {e['ms'] if e['ms'] is not None else 'n/a'} | "
            f"{'yes' if e['closed'] else 'no' if e['closed'] is False else 'n/a'} |")
    add("")
    sl = res["slowloris"]
    add("### Slowloris")
    add("")
    add(f"After every held session had quit: trickling clients send an EHLO line of "
        f"216 bytes, one byte every {a.trickle_interval:g} s (the line would take "
        f"{216 * a.trickle_interval / 60:.0f} minutes); silent clients never send; one address "
        f"opens max_connections_per_client + {a.greedy_extra} silent sessions. Times are from "
        f"the greeting to etrnd closing the connection; the phase lasted {sl['window_s']} s "
        f"(until every client was dropped, or idle_timeout + {SLOW_WINDOW:g} s past the last "
        f"greeting); clients still open then were closed by the client.")
    add("")
    add("| clients | count | greeted | refused at once | dropped by etrnd | dropped after s (min / median / max) | still open at the end | what they got before the close |")
    add("|---|---:|---:|---:|---:|---|---:|---|")
    for k, label in (("trickle", f"trickling, a byte every {a.trickle_interval:g} s"),
                     ("silent", "silent"), ("one address", f"one address, {a.per_client}+{a.greedy_extra} silent")):
        s = sl["groups"][k]
        rt = "; ".join(f"{t}: {v}" for t, v in s["refused_text"].items())
        got = "; ".join(f"{t}: {v}" for t, v in s["got"].items())
        add(f"| {label} | {n(s['clients'])} | {n(s['greeted'])} | {s['refused']}"
            + (f" ({rt}, slowest {s['refused_max_ms']} ms)" if s["refused"] else "")
            + f" | {n(s['dropped'])} | {dash(s['dropped_min_s'])} / {dash(s['dropped_median_s'])} / {dash(s['dropped_max_s'])} | "
            f"{n(s['still_open'])} | {got or '-'} |")
    tb = sl["groups"]["trickle"]["bytes_sent_max"]
    add("")
    add(f"Each trickling client had sent at most {tb} bytes by the end of the phase (no whole "
        f"command line); \"still open\" means etrnd had not closed the connection when the "
        f"phase ended.")
    fr = sl["fresh"]
    add("")
    gl = [f["greeting_ms"] for f in fr if "greeting_ms" in f]
    ml = [f["message_ms"] for f in fr if "message_ms" in f and "error" not in f]
    errs = [f"at {f['at_s']} s: {f['error']}" for f in fr if "error" in f]
    add(f"Fresh clients (a new address each, every {FRESH_EVERY:g} s of the phase): {len(fr)}, "
        f"greeting median / max {pct(gl, 0.5)} / {max(gl) if gl else 'n/a'} ms, whole message "
        f"(connect to the 250 after the dot) median / max {pct(ml, 0.5)} / {max(ml) if ml else 'n/a'} ms"
        + (f"; failures: {'; '.join(errs)}" if errs else "") + ".")
    add("")
    return "\n".join(L) + "\n"


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--pid", type=int, required=True, help="etrnd's process id")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--conf", default="", help="the config file, for the report")
    p.add_argument("--max-connections", type=int, required=True)
    p.add_argument("--per-client", type=int, required=True)
    p.add_argument("--idle-timeout", type=float, required=True)
    p.add_argument("--data-timeout", type=float, required=True)
    p.add_argument("--sessions", type=int, default=10000)
    p.add_argument("--per-addr", type=int, default=100)
    p.add_argument("--senders", type=int, default=200)
    p.add_argument("--mail-seconds", type=float, default=20)
    p.add_argument("--size", type=int, default=5120)
    p.add_argument("--past-cap", type=int, default=5)
    p.add_argument("--trickle", type=int, default=1500)
    p.add_argument("--trickle-interval", type=float, default=4)
    p.add_argument("--silent", type=int, default=500)
    p.add_argument("--greedy-extra", type=int, default=50)
    p.add_argument("--nofile", default="")
    p.add_argument("--limit", type=float, default=240, help="hard limit of the whole run, s")
    p.add_argument("--json", required=True)
    p.add_argument("--md", required=True)
    a = p.parse_args()
    if a.per_addr > a.per_client or a.sessions >= a.max_connections:
        print("load.py: need per-addr <= per-client and sessions < max-connections",
              file=sys.stderr)
        return 2
    need = max(a.max_connections + a.past_cap,
               a.trickle + a.silent + a.per_client + a.greedy_extra) + 200
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < need:
        print(f"load.py: open-file limit {soft} < {need} needed", file=sys.stderr)
        return 2
    a.nofile = a.nofile or str(soft)
    logging.getLogger("asyncio").setLevel(logging.ERROR)
    res = {"loadavg_before": " ".join(open("/proc/loadavg").read().split()[:3]),
           "config": {k: v for k, v in vars(a).items() if k not in ("json", "md")}}
    t0 = MONO()

    async def top():
        run = Run(a)
        run.message = make_message(a.size)
        async with asyncio.timeout(a.limit):
            await phases(run, res)
    try:
        asyncio.run(top())
    except TimeoutError:
        print(f"load.py: the run did not end within {a.limit:g} s", file=sys.stderr)
        return 2
    res["seconds"] = MONO() - t0
    vs = verdicts(a, res)
    res["verdicts"] = [{"target": t, "result": r, "met": ok} for t, r, ok in vs]
    with open(a.json, "w") as f:
        json.dump(res, f, indent=1)
    with open(a.md, "w") as f:
        f.write(markdown(a, res, vs))
    return 0 if all(ok for _t, _r, ok in vs) else 1


if __name__ == "__main__":
    sys.exit(main())
