"""SECURITY.md 2.6, resource exhaustion (X1-X5), scaled down to run in
seconds: small connection caps, a 2 s idle timeout, a 100 kB size limit
and a 40 MB file system for the queue.

What a user relies on: past a cap a client gets an immediate 421, never a
hang, and a legitimate client is still served; a silent client is timed
out; an oversized or unstorable message is refused (never 250) and
nothing of it is left behind; the daemon keeps running throughout."""

import os
import subprocess
import socket
import time

import pytest

from hostile_util import (connect_from, ehlo, expect, integrity_ok,
                          make_cert, messages, msg_count, queue_files, rss_kb,
                          send_in_thread, stored_contents, tls_extra,
                          try_reply, wait_for, wrap_tls)
from hostile_util import free_bytes as _free, fill_to as _fill_to
from hostile_util import small_fs  # noqa: F401 (fixture)

CAPS = "max_connections = 20\nmax_connections_per_client = 5\n"


def _greeted(c):
    return c.greeting is not None and c.greeting[0] == 220


def _refused(c):
    """421 4.7.0 at connect, then closed."""
    g = c.greeting
    assert g is not None and g[0] == 421, g
    assert g[1][0].startswith("421 4.7.0"), g
    assert c.closed(), "not closed after 421"
    return True


def _queue_one(c, tag):
    expect(c, "EHLO client.test", 250)
    expect(c, f"MAIL FROM:<{tag}@client.test>", 250)
    expect(c, f"RCPT TO:<{tag}@example.org>", 250)
    expect(c, "DATA", 354)
    c.send(b"Subject: x\r\n\r\nx\r\n.\r\n")
    assert c.reply()[0] == 250
    expect(c, "QUIT", 221)


# --- X1: connection caps -----------------------------------------------------

def _settled(d):
    """The harness's start-up probes (from 127.0.0.1) are gone."""
    time.sleep(0.5)
    return d


def test_x1_total_and_per_client_caps(etrnd_factory):
    d = _settled(etrnd_factory(extra=CAPS))
    held = {}
    # 5 from 127.0.0.6 are served; the 6th from that address is refused
    held["127.0.0.6"] = [connect_from(d.port, "127.0.0.6") for _ in range(5)]
    assert all(_greeted(c) for c in held["127.0.0.6"])
    _refused(connect_from(d.port, "127.0.0.6"))
    # fill the total cap from three more addresses
    for src in ("127.0.0.2", "127.0.0.3", "127.0.0.4"):
        held[src] = [connect_from(d.port, src) for _ in range(5)]
        assert all(_greeted(c) for c in held[src]), src
    # the 21st, from a fresh address, is refused at once: no hang
    t0 = time.time()
    c = connect_from(d.port, "127.0.0.5")
    _refused(c)
    assert time.time() - t0 < 5
    # the held sessions still work
    for conns in held.values():
        expect(conns[0], "NOOP", 250)
    # after some leave, a new client is served within 5 s
    for c in held["127.0.0.2"][:2]:
        c.close()

    def fresh():
        c = connect_from(d.port, "127.0.0.5")
        if _greeted(c):
            return c
        c.close()
        return None
    c = wait_for(fresh, timeout=5, step=0.1)
    assert c, "a fresh client was not served after others left"
    _queue_one(c, "fresh")
    # and the per-client cap still holds for the busy address
    _refused(connect_from(d.port, "127.0.0.6"))
    for conns in held.values():
        for c in conns:
            c.close()
    assert msg_count(d) == 1


# --- X3: many connections from one address -----------------------------------

def test_x3_per_client_limit_other_addresses_unaffected(etrnd_factory):
    d = _settled(etrnd_factory(extra=CAPS))
    conns = [connect_from(d.port, "127.0.0.8") for _ in range(30)]
    served = [c for c in conns if _greeted(c)]
    refused = [c for c in conns if not _greeted(c)]
    assert len(served) == 5 and len(refused) == 25
    for c in refused:
        assert c.greeting[1][0] == ("421 4.7.0 relay.test Error: too many "
                                    "connections from your address")
    # another address is served and can send mail
    other = connect_from(d.port, "127.0.0.9")
    assert _greeted(other)
    _queue_one(other, "other")
    for c in conns:
        c.close()
    assert [m[1] for m in messages(d)] == ["other@client.test"]


# --- X2: idle timeouts -------------------------------------------------------

TIMEOUTS = "idle_timeout = 2s\ndata_timeout = 2s\n"


def test_x2_idle_after_greeting(etrnd_factory):
    d = etrnd_factory(extra=TIMEOUTS)
    c = d.connect()
    t0 = time.time()
    c.sock.settimeout(10)
    r = try_reply(c)
    assert r is not None and r[1][0].startswith("421 4.4.2"), r
    assert 1.5 < time.time() - t0 < 6
    assert c.closed()


def test_x2_idle_mid_data_discards_the_message(etrnd_factory):
    d = etrnd_factory(extra=TIMEOUTS)
    c = ehlo(d)
    expect(c, "MAIL FROM:<slow@client.test>", 250)
    expect(c, "RCPT TO:<slow@example.org>", 250)
    expect(c, "DATA", 354)
    c.send(b"Subject: partial\r\n\r\nhalf a message\r\n")
    t0 = time.time()
    c.sock.settimeout(10)
    r = try_reply(c)
    assert r is not None and r[1][0].startswith("421 4.4.2"), r
    assert 1.5 < time.time() - t0 < 6
    assert c.closed()
    time.sleep(0.2)
    assert msg_count(d) == 0


def test_x2_a_slow_but_active_client_is_not_cut(etrnd_factory):
    """The timeout is per silence, not per session: 4 s of steady small
    steps against a 3 s timeout."""
    d = etrnd_factory(extra="idle_timeout = 3s\ndata_timeout = 3s\n")
    c = ehlo(d)
    t0 = time.time()
    expect(c, "MAIL FROM:<slow@client.test>", 250)
    for _ in range(2):
        time.sleep(1.0)                    # each pause under the timeout
        expect(c, "NOOP", 250)
    expect(c, "RCPT TO:<slow@example.org>", 250)
    expect(c, "DATA", 354)
    for _ in range(2):
        time.sleep(1.0)
        c.send(b"X-Slow: still here\r\n")
    c.send(b"\r\nbody\r\n.\r\n")
    assert c.reply()[0] == 250
    assert time.time() - t0 > 3.5
    c.close()
    assert msg_count(d) == 1


def _trickle_until_cut(c, data, pause, limit):
    """Send data a byte at a time, pause seconds apart, until etrnd
    answers; (reply, seconds from the first byte)."""
    c.sock.settimeout(pause)
    t0 = time.time()
    for i in range(len(data)):
        try:
            c.sock.sendall(data[i:i + 1])
        except OSError:
            break
        try:
            r = c.reply()
            return r, time.time() - t0
        except (socket.timeout, TimeoutError):
            pass
        if time.time() - t0 > limit:
            break
    return None, time.time() - t0


def test_x1_trickling_a_command_does_not_extend_the_timeout(etrnd_factory):
    """Slowloris: one byte of a command every 0.7 s never lets the socket
    go quiet for idle_timeout (3 s), yet the command must be complete 3 s
    after its first byte: 421 4.4.2 and the connection closed."""
    d = etrnd_factory(extra="idle_timeout = 3s\n")
    c = ehlo(d)
    r, took = _trickle_until_cut(c, b"NOOP " + b"x" * 40 + b"\r\n", 0.7, 12)
    assert r is not None and r[1][0].startswith("421 4.4.2"), (r, took)
    assert 2.5 < took < 6, took
    assert c.closed()
    assert d.log_lines("event=disconnect", "reason=timeout")


def test_x1_trickling_a_message_line_does_not_extend_the_timeout(
        etrnd_factory):
    """The same inside DATA: a line of the message must be complete
    data_timeout after its first byte; the message is not queued."""
    d = etrnd_factory(extra="idle_timeout = 20s\ndata_timeout = 3s\n")
    c = ehlo(d)
    expect(c, "MAIL FROM:<slow@client.test>", 250)
    expect(c, "RCPT TO:<slow@example.org>", 250)
    expect(c, "DATA", 354)
    c.send(b"Subject: trickle\r\n\r\n")
    r, took = _trickle_until_cut(c, b"y" * 40 + b"\r\n.\r\n", 0.7, 12)
    assert r is not None and r[1][0].startswith("421 4.4.2"), (r, took)
    assert 2.5 < took < 6, took
    assert c.closed()
    time.sleep(0.2)
    assert msg_count(d) == 0


# --- X8: descriptor limit ---------------------------------------------------

def test_x8_descriptor_limit_gives_421_not_a_hang(etrnd_factory):
    """Started under `ulimit -n 64` with max_connections at its default
    (1000): etrnd says it takes fewer connections, and 100 clients at once
    each get a greeting or an immediate 421, never silence; the queue
    still stores mail afterwards."""
    d = etrnd_factory(start=False)
    d.start(prefix=["prlimit", "--nofile=64:64", "--"])
    (line,) = d.log_lines("event=limit_clamped")
    assert "max_connections=1000" in line and "nofile=64" in line, line
    conns, codes = [], []
    for i in range(100):
        c = connect_from(d.port, f"127.0.0.{10 + i % 40}", timeout=5)
        conns.append(c)
        codes.append(c.greeting[0])
    assert set(codes) == {220, 421}, codes
    assert 10 <= codes.count(220) <= 40, codes.count(220)
    for c in conns:
        c.close()
    assert wait_for(lambda: _greeted(connect_from(d.port, "127.0.0.99")), 10)
    d.submit("after@client.test", ["after@example.org"])
    assert len(d.stored_bodies()) == 1
    assert not d.log_lines("event=store_error")


# --- X4: oversize messages ---------------------------------------------------

def _x4_send(c, content, size_param=""):
    expect(c, f"MAIL FROM:<big@client.test>{size_param}", 250)
    expect(c, "RCPT TO:<big@example.org>", 250)
    expect(c, "DATA", 354)
    c.sock.sendall(content + b".\r\n")
    return c.reply()


def _exact(n):
    """Content of exactly n octets: 100-octet lines, the last one shorter."""
    lines, left = [], n
    while left > 0:
        k = min(100, left)
        if k < 2:                          # a line is at least its CR LF
            lines[-1] = lines[-1][:-2] + b"y" * k + b"\r\n"
            break
        lines.append(b"z" * (k - 2) + b"\r\n")
        left -= k
    out = b"".join(lines)
    assert len(out) == n
    return out


def test_x4_oversize_refused_nothing_left_behind(etrnd_factory):
    limit = 100 * 1024
    d = etrnd_factory(extra="message_size_limit = 100k\n")
    c = ehlo(d, timeout=60)
    code, lines = c.cmd("EHLO client.test")
    assert "250-SIZE 102400" in lines
    expect(c, f"MAIL FROM:<big@client.test> SIZE={limit + 1}", 552, "5.3.4")
    expect(c, f"MAIL FROM:<big@client.test> SIZE={limit}", 250)
    expect(c, "RSET", 250)
    files_before = queue_files(d)
    base = rss_kb(d.pid)
    # undeclared and over the limit: refused after the dot
    code, lines = _x4_send(c, b"Subject: big\r\n\r\n" + b"b" * 98 * 2048
                           + b"\r\n")
    assert lines[0].startswith("552 5.3.4"), lines
    # declared small, sent big
    code, lines = _x4_send(c, _exact(limit * 2), " SIZE=1000")
    assert lines[0].startswith("552 5.3.4"), lines
    # the fence post: one octet over
    code, lines = _x4_send(c, _exact(limit + 1))
    assert lines[0].startswith("552 5.3.4"), lines
    # a 20 MB stream is read and thrown away with bounded memory
    code, lines = _x4_send(c, (b"w" * 998 + b"\r\n") * 20000)
    assert lines[0].startswith("552 5.3.4"), lines
    assert rss_kb(d.pid) - base < 200 * 1024
    assert msg_count(d) == 0
    assert queue_files(d) == files_before
    # the session continues; exactly the limit is accepted
    code, lines = _x4_send(c, _exact(limit))
    assert code == 250, lines
    code, lines = _x4_send(c, b"Subject: small\r\n\r\nsmall\r\n")
    assert code == 250, lines
    c.close()
    assert sorted(stored_contents(d).values()) == sorted(
        [_exact(limit), b"Subject: small\r\n\r\nsmall\r\n"])


# --- X5: low disk ------------------------------------------------------------

RESERVE = 16 << 20            # queue_min_free, set explicitly below


def _mail_reply(d, size_param=""):
    c = ehlo(d)
    try:
        return c.cmd(f"MAIL FROM:<disk@client.test>{size_param}")
    finally:
        c.close()


def _until_mail(d, code, size_param="", timeout=12):
    """The queue refreshes its free-space figure after each commit and
    every 5 s: poll MAIL until it answers code."""
    return wait_for(lambda: _mail_reply(d, size_param)[0] == code,
                    timeout=timeout, step=0.25)


def _send_big(d, total, before_dot=None):
    """One message of about total octets in 1000-octet lines: the reply to
    its dot, and the content sent."""
    line = b"v" * 998 + b"\r\n"
    block = line * max(1, min(total, 1 << 20) // len(line))
    content = b""
    c = ehlo(d, timeout=60)
    try:
        expect(c, "MAIL FROM:<disk@client.test>", 250)
        expect(c, "RCPT TO:<disk@example.org>", 250)
        expect(c, "DATA", 354)
        sent = 0
        while sent < total:
            c.sock.sendall(block)
            sent += len(block)
        if sent < (1 << 20):
            content = block * (sent // len(block))
        if before_dot:
            before_dot()
        c.sock.sendall(b".\r\n")
        return c.reply(), content
    finally:
        c.close()


def test_x5_the_message_just_acknowledged_counts_against_the_reserve(
        small_fs, etrnd_factory):
    """The free-space figure is refreshed with every stored batch, before
    its 250s go out: the MAIL that follows a message which took the queue
    under its reserve is refused at once, not at the next periodic
    refresh (every 5 s)."""
    d = etrnd_factory(extra="message_size_limit = 1G\n"
                            "queue_min_free = 16M\n")
    _fill_to(small_fs, RESERVE + (3 << 20))
    assert _until_mail(d, 250, " SIZE=%d" % (2 << 20))
    (code, lines), _ = _send_big(d, 5 << 19)     # 2.5 MB
    assert code == 250, lines
    # what is left over the reserve is now under 1 MB
    code, lines = _mail_reply(d, " SIZE=%d" % (1 << 20))
    assert code == 452 and lines[0].startswith("452 4.3.1"), lines


def test_x5_low_disk(small_fs, etrnd_factory):
    d = etrnd_factory(extra="message_size_limit = 1G\n"
                            "queue_min_free = 16M\n")
    assert d.queue_dir == small_fs
    # under the reserve: MAIL is refused, with and without SIZE
    filler = _fill_to(small_fs, 10 << 20)
    assert _until_mail(d, 452), _mail_reply(d)
    code, lines = _mail_reply(d)
    assert lines[0].startswith("452 4.3.1"), lines
    assert _mail_reply(d, " SIZE=1000")[0] == 452
    # space comes back: mail flows again
    os.unlink(filler)
    assert _until_mail(d, 250), _mail_reply(d)
    (code, lines), good = _send_big(d, 100 << 10)
    assert code == 250, lines
    assert msg_count(d) == 1
    # just above the reserve: SIZE is checked against what is left
    filler = _fill_to(small_fs, RESERVE + (2 << 20))
    assert _until_mail(d, 452, " SIZE=%d" % (3 << 20)), \
        _mail_reply(d, " SIZE=%d" % (3 << 20))
    assert _mail_reply(d, " SIZE=%d" % (1 << 20))[0] == 250
    # an undeclared body bigger than what is left: never 250
    (code, lines), _ = _send_big(d, 25 << 20)
    assert code in (452, 451), lines
    assert lines[0][4:9] in ("4.3.1", "4.3.0"), lines
    assert msg_count(d) == 1
    # the daemon runs on and the store is sound
    c = ehlo(d)
    expect(c, "NOOP", 250)
    c.close()
    assert integrity_ok(d)
    # the disk fills mid-DATA, then space comes back before the dot: the
    # part that could not be written is gone, so this message must not be
    # accepted either
    filler = _fill_to(small_fs, RESERVE + (1 << 20))
    log_mark = len(d.read_log())

    def free_space_again():
        assert wait_for(lambda: "event=spill_error" in d.read_log()[log_mark:]
                        or "store_error" in d.read_log()[log_mark:],
                        timeout=10), "no write error logged"
        os.unlink(filler)
    (code, lines), _ = _send_big(d, 18 << 20, before_dot=free_space_again)
    assert code in (452, 451), lines
    assert msg_count(d) == 1
    assert integrity_ok(d)
    # nothing partial is left: the one good message, whole
    assert list(stored_contents(d).values()) == [good]
    assert all(f in ("queue.db", "queue.db-wal", "queue.db-shm")
               or f.startswith("seg/") for f in queue_files(d)), \
        queue_files(d)
    # and mail flows again
    assert _until_mail(d, 250)
    assert _send_big(d, 10 << 10)[0][0] == 250
    assert msg_count(d) == 2


# --- X4: input pushed while a message is being stored ------------------------

@pytest.mark.parametrize("tls", [False, True], ids=["plain", "tls"])
def test_x4_input_pushed_while_a_message_is_stored_is_held_back(
        etrnd_factory, tmp_path, tls):
    """While a session waits for its message's sync, etrnd goes on reading
    its input (the next pipelined command is there at once), but only up
    to its read limit: a client that pushes 32 MB behind the dot is held
    back by TCP, and etrnd's memory does not grow with what it pushes."""
    extra = tls_extra(*make_cert(tmp_path)) if tls else ""
    d = etrnd_factory(extra=extra, start=False)
    d.start(env={"ETRND_FAULT": "slow_sync"})     # the first sync waits 2 s
    c = ehlo(d, timeout=30)
    if tls:
        expect(c, "STARTTLS", 220, "2.0.0")
        wrap_tls(c, timeout=30)
        expect(c, "EHLO client.test", 250)
    expect(c, "MAIL FROM:<push@client.test>", 250)
    expect(c, "RCPT TO:<push@example.org>", 250)
    expect(c, "DATA", 354)
    base = rss_kb(d.pid)
    push = 32 << 20
    # one line with no end: after the 250 it is read and dropped
    t = send_in_thread(c.sock, b"Subject: push\r\n\r\nfirst\r\n.\r\n"
                       + b"x" * push)
    assert wait_for(lambda: "name=slow_sync action=delay" in d.read_log(), 5)
    time.sleep(1.2)
    assert t.is_alive(), "32 MB went out while etrnd was not reading"
    grown = rss_kb(d.pid) - base
    assert grown < 8 * 1024, f"etrnd grew by {grown} kB"
    t.join(60)              # etrnd reads and drops the rest after the 250
    assert not t.is_alive()
    lines = c.reply()[1]
    assert lines[0].startswith("250 "), lines
    c.close()
    assert list(stored_contents(d).values()) == [
        b"Subject: push\r\n\r\nfirst\r\n"]
