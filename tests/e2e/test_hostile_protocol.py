"""SECURITY.md 2.1, protocol parsing (P1-P14), end to end: a real etrnd
(the sanitizer build) is fed hostile command streams over loopback.

What a user relies on, and what every test here checks: the reply codes
are the documented ones, nothing malformed ever reaches the queue, the
stored envelope is byte-exact, and the daemon stays up and keeps serving
the next client (the fixture also fails the test on any sanitizer report
and on an unclean exit at SIGTERM)."""

import os
import random
import re
import shutil
import tempfile
import time

import pytest

from hostile_util import (codes, ehlo, expect, integrity_ok, messages,
                          msg_count, rcpt_rows, replies_until_closed,
                          rss_kb, send_in_thread, stored_contents, try_reply)

RSS_GROWTH_MAX_KB = 200 * 1024        # "memory stays bounded"


def _noop_ok(c):
    expect(c, "NOOP", 250)


def _alive(d):
    """The daemon still serves a fresh client."""
    c = ehlo(d)
    _noop_ok(c)
    c.close()


# --- P1: over-long command lines ---------------------------------------------

def test_p1_long_command_lines(etrnd):
    c = ehlo(etrnd)
    base = rss_kb(etrnd.pid)
    # MAIL FROM:< + 10 kB + >
    expect(c, "MAIL FROM:<" + "a" * 10240 + "@client.test>", 500, "5.5.2")
    # the whole line was discarded: no transaction was started by it
    expect(c, "RCPT TO:<u@example.org>", 503, "5.5.1")
    # a 1 MB EHLO
    c.send(b"EHLO " + b"h" * (1 << 20) + b"\r\n")
    code, lines = c.reply()
    assert (code, lines[0][4:9]) == (500, "5.5.2"), lines
    _noop_ok(c)
    # a long line cut across segments: its tail looks like a command, but
    # it is the rest of the same line and must be discarded with it
    c.send(b"NOOP " + b"x" * 600)
    time.sleep(0.2)
    c.send(b"QUIT\r\n")                 # ends the long line
    code, lines = c.reply()
    assert code == 500, lines
    _noop_ok(c)                          # still connected: QUIT was not run
    # fence post: 512 octets with the CRLF is a command, 513 is too long
    expect(c, "NOOP " + "x" * 505, 250)
    expect(c, "NOOP " + "x" * 506, 500, "5.5.2")
    # and the session goes on to deliver mail
    expect(c, "MAIL FROM:<s@client.test>", 250)
    expect(c, "RCPT TO:<u@example.org>", 250)
    expect(c, "DATA", 354)
    c.send(b"Subject: p1\r\n\r\nok\r\n.\r\n")
    assert c.reply()[0] == 250
    assert rss_kb(etrnd.pid) - base < RSS_GROWTH_MAX_KB
    c.close()
    assert msg_count(etrnd) == 1


# --- P2: an endless line -----------------------------------------------------

def _stream_no_crlf(c, pid, total, chunk=1 << 20):
    """Send total bytes without a line end; the largest RSS seen."""
    peak = rss_kb(pid)
    block = b"A" * chunk
    sent = 0
    while sent < total:
        c.sock.sendall(block)
        sent += chunk
        peak = max(peak, rss_kb(pid))
    time.sleep(0.2)
    return max(peak, rss_kb(pid))


@pytest.mark.parametrize("where", ["greeting", "after_mail"])
def test_p2_stream_without_crlf_memory_bounded(etrnd, where):
    total = 20 << 20                     # 20 MB, no CR, no LF
    c = etrnd.connect(timeout=30)
    assert c.greeting[0] == 220
    if where == "after_mail":
        expect(c, "EHLO client.test", 250)
        expect(c, "MAIL FROM:<s@client.test>", 250)
    base = rss_kb(etrnd.pid)
    peak = _stream_no_crlf(c, etrnd.pid, total)
    assert peak - base < RSS_GROWTH_MAX_KB, (base, peak)
    c.send(b"\r\n")
    r = try_reply(c)
    assert r is not None
    if r[0] == 421:                      # allowed: 421 and close
        assert c.closed()
        _alive(etrnd)
        return
    assert r[0] == 500 and r[1][0][4:9] == "5.5.2", r
    # resynchronised at the CRLF: the session works
    if where == "greeting":
        expect(c, "EHLO client.test", 250)
        expect(c, "MAIL FROM:<s@client.test>", 250)
    expect(c, "RCPT TO:<u@example.org>", 250)
    expect(c, "DATA", 354)
    c.send(b"Subject: p2\r\n\r\nafter the flood\r\n.\r\n")
    assert c.reply()[0] == 250
    c.close()
    assert msg_count(etrnd) == 1


# --- P3: NUL and 8-bit bytes -------------------------------------------------

def test_p3_nul_and_8bit_in_commands(etrnd):
    bad_mail = [
        b"MAIL FROM:<a\x00b@client.test>",
        b"MAIL FROM:<\xff@client.test>",
        b"MAIL FROM:<a@client.test\x00>",
        b"MAIL FROM:<a@client.test>\x00 SIZE=10",
        b"MAIL FROM:<\xc3\xa9t\xc3\xa9@client.test>",
    ]
    bad_rcpt = [
        b"RCPT TO:<a\x00b@example.org>",
        b"RCPT TO:<\xff@example.org>",
        b"RCPT TO:<u@example.org\x00.evil.test>",
        b"RCPT TO:<u@ex\xe4mple.org>",
        b"RCPT TO:<\x00@example.org>",
    ]
    c = ehlo(etrnd)
    for line in bad_mail:
        c.send(line + b"\r\n")
        code, lines = c.reply()
        assert code in (501, 553), (line, lines)
        # no transaction was opened by the part before the bad byte
        expect(c, "RCPT TO:<good@example.org>", 503, "5.5.1")
    c.close()
    c = ehlo(etrnd)
    expect(c, "MAIL FROM:<good@client.test>", 250)
    for line in bad_rcpt:
        c.send(line + b"\r\n")
        code, lines = c.reply()
        assert code in (501, 553), (line, lines)
    expect(c, "RCPT TO:<good@example.org>", 250)
    expect(c, "DATA", 354)
    c.send(b"Subject: p3\r\n\r\nx\r\n.\r\n")
    assert c.reply()[0] == 250
    c.send(b"EHLO bad\x00name\r\n")
    assert c.reply()[0] == 501
    c.close()
    # the queue holds exactly the good identity: nothing truncated at a NUL
    assert [(m[1], m[3]) for m in messages(etrnd)] == [
        ("good@client.test", ["good@example.org"])]
    log = etrnd.read_log()
    senders = re.findall(r"event=mail \S+ \S+ from=(\S+)", log)
    assert senders == ["good@client.test"], senders
    assert "rcpt=a " not in log and "from=a " not in log


# --- P4: shell, SQL and format metacharacters --------------------------------

def _p4_cases(canary):
    # raw local parts (some are not RFC 5321 dot-atoms and must be refused)
    # and quoted ones (legal, so they must be stored byte-exact)
    return [
        "`id`",
        ";sleep 9;",
        "'; DROP TABLE q;--",
        "%n%s",
        "$(reboot)",
        f'"`touch {canary}`"',
        f'";touch {canary};"',
        f'"$(touch {canary})"',
        '"\'; DROP TABLE msg;--"',
        "\"x'); DELETE FROM rcpt;--\"",
        '"%n%s%n%s%p"',
        '"${IFS}sleep${IFS}9"',
        "a|b",
        "{x}&$y",
    ]


def test_p4_metacharacters_never_interpreted(etrnd):
    cdir = tempfile.mkdtemp(prefix="c", dir="/tmp")
    canary = os.path.join(cdir, "x")
    try:
        want_senders, want_rcpts = [], []
        for lp in _p4_cases(canary):
            # as the sender
            c = ehlo(etrnd)
            t0 = time.time()
            code, lines = c.cmd(f"MAIL FROM:<{lp}@client.test>")
            assert time.time() - t0 < 3, "timing changed"
            assert code in (250, 501, 553), (lp, lines)
            if code == 250:
                expect(c, "RCPT TO:<meta@example.org>", 250)
                expect(c, "DATA", 354)
                c.send(b"Subject: p4\r\n\r\nx\r\n.\r\n")
                assert c.reply()[0] == 250
                want_senders.append(f"{lp}@client.test")
            c.close()
            # as the recipient
            c = ehlo(etrnd)
            expect(c, "MAIL FROM:<meta@client.test>", 250)
            t0 = time.time()
            code, lines = c.cmd(f"RCPT TO:<{lp}@example.org>")
            assert time.time() - t0 < 3, "timing changed"
            # 550 5.7.1 is the answer for a local part with '%', '!', '@'
            assert code in (250, 501, 553) or (
                code == 550 and lines[0][4:9] == "5.7.1"), (lp, lines)
            if code == 250:
                expect(c, "DATA", 354)
                c.send(b"Subject: p4\r\n\r\nx\r\n.\r\n")
                assert c.reply()[0] == 250
                want_rcpts.append(f"{lp}@example.org")
            c.close()
        # the quoted forms are legal: at least those must have been stored
        assert len(want_senders) >= 6 and len(want_rcpts) >= 5
        assert not os.path.exists(canary), "a shell ran a metacharacter"
        # byte-exact through the control socket and in the store
        rows = etrnd.queued_json()
        assert sorted(r["sender"] for r in rows if r["recipient"] ==
                      "meta@example.org") == sorted(want_senders)
        assert sorted(r["recipient"] for r in rows if r["sender"] ==
                      "meta@client.test") == sorted(want_rcpts)
        msgs = messages(etrnd)
        assert sorted(m[1] for m in msgs if m[1] != "meta@client.test") == \
            sorted(want_senders)
        assert sorted(a for m in msgs for a in m[3]
                      if a != "meta@example.org") == sorted(want_rcpts)
        assert len(msgs) == len(want_senders) + len(want_rcpts)
        with etrnd.db() as db:
            tables = {r[0] for r in db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert {"msg", "rcpt", "seg"} <= tables
        assert integrity_ok(etrnd)
        # the log carries them as data, not as printf formats
        assert "%n%s@client.test" in etrnd.read_log()
    finally:
        shutil.rmtree(cdir, ignore_errors=True)


# --- P5: the address edge table ----------------------------------------------

# (path as sent, reply to MAIL FROM:path, reply to RCPT TO:path,
#  the recipient as stored when RCPT was accepted)
P5_TABLE = [
    ("<>", 250, 501, None),                       # null sender: MAIL only
    ("<@>", 501, 501, None),
    ("<a>", 501, 501, None),                      # no @
    ("<a@>", 501, 501, None),                     # empty domain
    ("<@a>", 501, 501, None),                     # empty user
    ("< @a>", 501, 501, None),
    ("<a@ >", 501, 501, None),
    ("<whatever:a@example.org>", 501, 501, None),
    ("<a:@example.org>", 501, 501, None),
    ("a@example.org", 501, 501, None),            # no angle brackets
    ("<a@example.org", 501, 501, None),           # unbalanced <
    ("a@example.org>", 501, 501, None),
    ("<<a@example.org>>", 501, 501, None),
    ('<"a@example.org>', 501, 501, None),         # unbalanced "
    ('<"a"b@example.org>', 501, 501, None),
    ('<""@example.org>', 501, 501, None),
    ("<a@example.org>junk", 501, 501, None),      # trailing garbage
    ("<a@example.org>>", 501, 501, None),
    ("<a@example.org> junk", 555, 555, None),     # an unknown parameter
    ("<a..b@example.org>", 501, 501, None),
    ("<.a@example.org>", 501, 501, None),
    ("<a.@example.org>", 501, 501, None),
    ("<a@example..org>", 501, 501, None),
    ("<a@.example.org>", 501, 501, None),
    ("<a@-example.org>", 501, 501, None),
    ("<a@example.org.>", 501, 501, None),         # trailing dot
    ("<a@1.2.3.4>", 501, 501, None),              # a bare IP as domain
    ("<a@[300.1.1.1]>", 501, 501, None),          # not an address literal
    ("<a@[1.2.3.4>", 501, 501, None),
    ("<@relay.test:a@example.org>", 250, 250, "a@example.org"),
    ("<@r1.test,@r2.test:b@example.org>", 250, 250, "b@example.org"),
    ("<@relay.test:a@elsewhere.test>", 250, 550, None),  # stripped, checked
    ("<@relay..test:a@example.org>", 501, 501, None),
    ("<@relay.test,a@example.org>", 501, 501, None),
    ("<a@a>", 250, 550, None),                    # valid, not a relay domain
    ("<a@[127.0.0.1]>", 250, 550, None),          # literal: never relayed
    ("<a@[IPv6:::1]>", 250, 550, None),
    ("<c.d@example.org>", 250, 250, "c.d@example.org"),
    ('<"e f"@example.org>', 250, 250, '"e f"@example.org'),
    ('<"g\\"h"@example.org>', 250, 250, '"g\\"h"@example.org'),
    ("<I@EXAMPLE.ORG>", 250, 250, "I@example.org"),
]

P5_COMMANDS = [                                   # broken command syntax
    ("MAIL FROM <a@example.org>", 501),
    ("MAIL TO:<a@example.org>", 501),
    ("MAIL FROM:", 501),
    ("MAIL", 501),
]


def test_p5_address_edge_table(etrnd):
    stored = []
    for path, mail_code, rcpt_code, as_stored in P5_TABLE:
        c = ehlo(etrnd)
        code, lines = c.cmd(f"MAIL FROM:{path}")
        assert code == mail_code, ("MAIL", path, lines)
        if code == 250:
            expect(c, "RSET", 250)
        expect(c, "MAIL FROM:<s@client.test>", 250)
        code, lines = c.cmd(f"RCPT TO:{path}")
        assert code == rcpt_code, ("RCPT", path, lines)
        if code == 550:
            assert lines[0][4:9] == "5.7.1", lines
        if code == 250:
            expect(c, "DATA", 354)
            c.send(b"Subject: p5\r\n\r\nx\r\n.\r\n")
            assert c.reply()[0] == 250
            stored.append(as_stored)
        c.close()
    c = ehlo(etrnd)
    for command, code in P5_COMMANDS:
        expect(c, command, code)
    expect(c, "RCPT", 501)
    c.close()
    assert sorted(a for a, _ in rcpt_rows(etrnd)) == sorted(stored)


# --- P6: length boundaries ---------------------------------------------------

def domain_of_length(n, suffix="example.org"):
    """A syntactically valid subdomain of suffix, exactly n octets long."""
    need = n - len(suffix)
    labels = []
    while need > 0:
        k = min(63, need - 1)
        if need - (k + 1) == 1:
            k -= 1
        labels.append("d" * k)
        need -= k + 1
    d = ".".join(labels + [suffix])
    assert len(d) == n
    return d


def _p6_cases():
    L = lambda n: "l" * n                                   # noqa: E731
    dom = domain_of_length
    ok, bad = 250, "bad"
    return [
        # local part
        (f"{L(63)}@example.org", ok),
        (f"{L(64)}@example.org", ok),
        (f"{L(65)}@example.org", bad),
        (f"{L(4096)}@example.org", bad),
        # label
        (f"u@{'x' * 63}.example.org", ok),
        (f"u@{'x' * 64}.example.org", bad),
        # path: "<" local "@" domain ">" is at most 256 octets
        (f"u@{dom(252)}", ok),                     # path 256
        (f"u@{dom(253)}", bad),                    # path 257
        (f"{L(64)}@{dom(189)}", ok),               # path 256
        (f"{L(64)}@{dom(190)}", bad),              # path 257
        # domain
        (f"u@{dom(254)}", bad),
        (f"u@{dom(255)}", bad),
        (f"u@{dom(256)}", bad),
        (f"u@{dom(4096)}", bad),
    ]


def test_p6_length_boundaries(etrnd):
    accepted = []
    for addr, want in _p6_cases():
        # as a recipient ...
        c = ehlo(etrnd)
        expect(c, "MAIL FROM:<s@client.test>", 250)
        code, lines = c.cmd(f"RCPT TO:<{addr}>")
        if want == 250:
            assert code == 250, (len(addr), lines)
            accepted.append(addr)
        else:
            # 500: the command line itself is over 512 octets
            assert code in (500, 501, 553), (len(addr), lines)
            if code != 500:
                assert lines[0][4:9] == "5.1.3", lines
        if code == 250:
            expect(c, "DATA", 354)
            c.send(b"Subject: p6\r\n\r\nx\r\n.\r\n")
            assert c.reply()[0] == 250
        c.close()
        # ... and as the sender
        c = ehlo(etrnd)
        code, lines = c.cmd(f"MAIL FROM:<{addr}>")
        if want == 250:
            assert code == 250, (len(addr), lines)
        else:
            assert code in (500, 501, 553), (len(addr), lines)
        c.close()
    # fence posts stored exactly, not cut or overrun
    assert sorted(a for a, _ in rcpt_rows(etrnd)) == sorted(accepted)
    assert {m[1] for m in messages(etrnd)} == {"s@client.test"}


# --- P7: ESMTP parameter abuse -----------------------------------------------

M = "MAIL FROM:<s@client.test>"
R = "RCPT TO:<u@example.org>"
P7_MAIL = [
    (f"{M} FOO=bar", 555, "5.5.4"),
    (f"{M} SMTPUTF8", 555, "5.5.4"),
    (f"{M} =x", 555, "5.5.4"),
    (f"{M} NOTIFY=NEVER", 555, "5.5.4"),          # a RCPT parameter
    (f"{M} SIZE=1 SIZE=2", 501, "5.5.4"),
    (f"{M} BODY=9BIT", 501, "5.5.4"),
    (f"{M} BODY=", 501, "5.5.4"),
    (f"{M} RET=FULL RET=HDRS", 501, "5.5.4"),
    (f"{M} RET=HDRS RET=HDRS", 501, "5.5.4"),
    (f"{M} RET=ALL", 501, "5.5.4"),
    (f"{M} ENVID=a+0D+0Ab", 501, "5.5.4"),        # decoded CR LF
    (f"{M} ENVID=a+00b", 501, "5.5.4"),           # decoded NUL
    (f"{M} ENVID=a+0Ab", 501, "5.5.4"),
    (f"{M} ENVID=a=b", 501, "5.5.4"),
    (f"{M} ENVID=", 501, "5.5.4"),
    (f"{M} ENVID=+", 501, "5.5.4"),
    (f"{M} ENVID=abc+", 501, "5.5.4"),            # '+' at the very end
    (f"{M} ENVID=abc+0", 501, "5.5.4"),
    (f"{M} ENVID=+zz", 501, "5.5.4"),
    (f"{M} ENVID=+0d", 501, "5.5.4"),             # lower-case hex
    (f"{M} ENVID={'e' * 101}", 501, "5.5.4"),     # over 100 decoded
    (f"{M} ENVID=x ENVID=y", 501, "5.5.4"),
    (f"{M} AUTH=<>+0A", 501, "5.5.4"),
    (f"{M} AUTH=+0D+0AMAIL", 501, "5.5.4"),
    (f"{M}" + " A=1" * 121, 501, "5.5.4"),       # too many parameters
    # the line edge: '=', '"', '+' as the last octet of a 512-octet line
    (f"{M} ENVID=" + "v" * (510 - len(M) - 8) + "=", 501, "5.5.4"),
    (f"{M} ENVID=" + "v" * (510 - len(M) - 8) + '"', 501, "5.5.4"),
    (f"{M} ENVID=" + "v" * (510 - len(M) - 8) + "+", 501, "5.5.4"),
    (f"{M} ENVID=" + "v" * (510 - len(M) - 9) + "+0", 501, "5.5.4"),
    (f"{M} X=" + "v" * (510 - len(M) - 3), 555, "5.5.4"),
    (f"{M} " + "X" * (510 - len(M) - 1), 555, "5.5.4"),
]
P7_RCPT = [
    (f"{R} ORCPT=rfc822;a+0D+0Ab@example.org", 501, "5.5.4"),
    (f"{R} ORCPT=rfc822;a=b", 501, "5.5.4"),
    (f"{R} ORCPT=rfc822;", 501, "5.5.4"),
    (f"{R} ORCPT=;u@example.org", 501, "5.5.4"),
    (f"{R} ORCPT=rfc822", 501, "5.5.4"),
    (f"{R} ORCPT=rfc822;u+00@example.org", 501, "5.5.4"),
    (f"{R} ORCPT=rfc822;u@example.org ORCPT=rfc822;v@example.org", 501,
     "5.5.4"),
    (f"{R} NOTIFY=NEVER,SUCCESS", 501, "5.5.4"),
    (f"{R} NOTIFY=BOGUS", 501, "5.5.4"),
    (f"{R} NOTIFY=", 501, "5.5.4"),
    (f"{R} NOTIFY=SUCCESS NOTIFY=FAILURE", 501, "5.5.4"),
    (f"{R} SIZE=10", 555, "5.5.4"),
    (f"{R} FOO=bar", 555, "5.5.4"),
]


def test_p7_esmtp_parameter_abuse(etrnd):
    for line, code, enh in P7_MAIL:
        assert len(line) <= 510, len(line)
        c = ehlo(etrnd)
        expect(c, line, code, enh)
        c.close()
    for line, code, enh in P7_RCPT:
        c = ehlo(etrnd)
        expect(c, M, 250)
        expect(c, line, code, enh)
        c.close()
    # 500 parameters do not fit in a command line at all
    c = ehlo(etrnd)
    expect(c, M + " A=1" * 500, 500, "5.5.2")
    # a raw CR inside a value, and an embedded LF, never reach the parser
    c.send(M.encode() + b" ENVID=a\rb\r\n")
    assert c.reply()[0] == 501
    c.send(M.encode() + b" AUTH=<>\nRCPT TO:<u@example.org>\r\n")
    assert codes([c.reply(), c.reply()]) == [500, 503]
    c.close()
    # what is accepted is stored decoded, and never with a control byte
    c = ehlo(etrnd)
    expect(c, f"{M} ENVID=abc+2Bdef+3Dx RET=HDRS BODY=8BITMIME SIZE=100", 250)
    expect(c, f"{R} ORCPT=rfc822;u+2Bx@example.org NOTIFY=SUCCESS,FAILURE",
           250)
    expect(c, "DATA", 354)
    c.send(b"Subject: p7\r\n\r\nx\r\n.\r\n")
    assert c.reply()[0] == 250
    c.close()
    c = ehlo(etrnd)
    envid = "q" * 99 + "+22"                     # 100 octets decoded
    expect(c, f"{M} ENVID={envid}", 250)
    expect(c, R, 250)
    expect(c, "DATA", 354)
    c.send(b"Subject: p7\r\n\r\nx\r\n.\r\n")
    assert c.reply()[0] == 250
    c.close()
    with etrnd.db() as db:
        envids = sorted(r[0] for r in db.execute("SELECT envid FROM msg"))
        orcpts = [r[0] for r in db.execute("SELECT orcpt FROM rcpt")]
        texts = [v for row in db.execute(
            "SELECT sender, envid, client, helo FROM msg") for v in row] + \
            [v for row in db.execute("SELECT addr, orcpt FROM rcpt")
             for v in row]
    assert envids == ["abc+def=x", "q" * 99 + '"']
    assert "rfc822;u+x@example.org" in orcpts
    for v in texts:
        assert v is None or not re.search(r"[\x00-\x1f\x7f]", v), repr(v)


# --- P8: SIZE overflow -------------------------------------------------------

P8_TABLE = [
    ("SIZE=18446744073709551616", 552, "5.3.4"),  # 2^64: would wrap to 0
    ("SIZE=18446744073709551716", 552, "5.3.4"),  # 2^64 + 100
    ("SIZE=18446744073709551615", 552, "5.3.4"),
    ("SIZE=99999999999999999999", 552, "5.3.4"),
    ("SIZE=" + "9" * 200, 552, "5.3.4"),
    ("SIZE=10240001", 552, "5.3.4"),
    ("SIZE=" + "0" * 30 + "10240001", 552, "5.3.4"),
    ("SIZE=-1", 501, "5.5.4"),
    ("SIZE=+1", 501, "5.5.4"),
    ("SIZE=0x10", 501, "5.5.4"),
    ("SIZE=1e3", 501, "5.5.4"),
    ("SIZE=10M", 501, "5.5.4"),
    ("SIZE=", 501, "5.5.4"),
    ("SIZE=10240000", 250, "2.1.0"),
    ("SIZE=0", 250, "2.1.0"),
    ("SIZE=" + "0" * 40 + "1", 250, "2.1.0"),
]


def test_p8_size_parameter_overflow(etrnd):
    for param, code, enh in P8_TABLE:
        c = ehlo(etrnd)
        expect(c, f"MAIL FROM:<s@client.test> {param}", code, enh)
        c.close()
    _alive(etrnd)


# --- P9: recipient flood -----------------------------------------------------

def test_p9_recipient_flood(etrnd):
    n = 5000
    c = ehlo(etrnd, timeout=60)
    expect(c, "MAIL FROM:<flood@client.test>", 250)
    base = rss_kb(etrnd.pid)
    burst = b"".join(b"RCPT TO:<u%d@example.org>\r\n" % i for i in range(n))
    t = send_in_thread(c.sock, burst)
    replies = [c.reply() for _ in range(n)]
    t.join(30)
    got = codes(replies)
    assert got[:1000] == [250] * 1000
    assert got[1000:] == [452] * (n - 1000)
    assert all(r[1][0].startswith("452 4.5.3") for r in replies[1000:])
    assert rss_kb(etrnd.pid) - base < RSS_GROWTH_MAX_KB
    # the session survives, and DATA queues exactly the accepted ones
    expect(c, "NOOP", 250)
    expect(c, "DATA", 354)
    c.send(b"Subject: flood\r\n\r\nx\r\n.\r\n")
    assert c.reply()[0] == 250
    c.close()
    (m,) = messages(etrnd)
    assert m[3] == ["u%d@example.org" % i for i in range(1000)]


# --- P10: the state machine --------------------------------------------------

def test_p10_bad_sequences(etrnd):
    c = etrnd.connect()
    expect(c, "MAIL FROM:<s@client.test>", 503, "5.5.1")   # before EHLO
    expect(c, "EHLO client.test", 250)
    expect(c, "RCPT TO:<u@example.org>", 503, "5.5.1")      # before MAIL
    expect(c, "DATA", 503, "5.5.1")                         # before MAIL
    expect(c, "MAIL FROM:<s@client.test>", 250)
    expect(c, "MAIL FROM:<s@client.test>", 503, "5.5.1")    # MAIL twice
    expect(c, "DATA", 503, "5.5.1")                         # before RCPT
    code, lines = c.cmd("AUTH PLAIN AHUAcA==")              # inside a txn
    assert code in (502, 503), lines
    expect(c, "RCPT TO:<u@elsewhere.test>", 550, "5.7.1")
    code, lines = c.cmd("DATA")                             # all refused
    assert (code, lines[0][4:9]) in ((503, "5.5.1"), (554, "5.5.1")), lines
    # the refused commands did not disturb the transaction
    expect(c, "RCPT TO:<keep@example.org>", 250)
    expect(c, "RSET", 250)
    expect(c, "RCPT TO:<u@example.org>", 503, "5.5.1")      # RSET cleared it
    expect(c, "DATA", 503, "5.5.1")
    c.close()
    assert msg_count(etrnd) == 0


def test_p10_ehlo_and_rset_clear_the_transaction(etrnd):
    c = ehlo(etrnd)
    expect(c, "MAIL FROM:<old@client.test>", 250)
    expect(c, "RCPT TO:<old@example.org>", 250)
    expect(c, "EHLO again.test", 250)                       # mid-transaction
    expect(c, "RCPT TO:<x@example.org>", 503, "5.5.1")
    expect(c, "DATA", 503, "5.5.1")
    expect(c, "MAIL FROM:<new@client.test>", 250)
    expect(c, "RCPT TO:<new@example.org>", 250)
    expect(c, "DATA", 354)
    c.send(b"Subject: p10\r\n\r\nx\r\n.\r\n")
    assert c.reply()[0] == 250
    # RSET after a failed DATA
    expect(c, "MAIL FROM:<bad@client.test>", 250)
    expect(c, "RCPT TO:<bad@example.org>", 250)
    expect(c, "DATA", 354)
    c.send(b"Subject: p10\r\n\r\nbare\nLF\r\n.\r\n")
    assert c.reply()[0] == 550
    expect(c, "RSET", 250)
    expect(c, "DATA", 503, "5.5.1")
    expect(c, "RSET", 250)
    expect(c, "RSET", 250)
    c.close()
    assert [(m[1], m[3]) for m in messages(etrnd)] == [
        ("new@client.test", ["new@example.org"])]


def test_p10_quit_mid_data_is_content(etrnd):
    c = ehlo(etrnd)
    expect(c, "MAIL FROM:<q@client.test>", 250)
    expect(c, "RCPT TO:<q@example.org>", 250)
    expect(c, "DATA", 354)
    c.send(b"Subject: p10\r\n\r\nQUIT\r\nRSET\r\n")
    assert not c.closed(timeout=0.5)        # no 221: it was message text
    assert c.buf == b""
    c.close()                               # and the client just goes away
    time.sleep(0.2)
    _alive(etrnd)
    assert msg_count(etrnd) == 0


class _Model:
    """What etrnd must answer, command by command (DESIGN.md 9 limits:
    20 errors, 100 non-mail commands)."""

    def __init__(self):
        self.reset_conn()

    def reset_conn(self):
        self.state = "fresh"
        self.errors = 0
        self.junk = 0
        self.rcpt_tried = False
        self.accepted = 0

    def err(self, code):
        self.errors += 1
        return 421 if self.errors >= 20 else code

    def predict(self, verb):
        if verb in ("RSET", "NOOP", "VRFY", "HELP", "EXPN"):
            self.junk += 1
            if self.junk > 100:
                return 421
        if verb in ("EHLO", "HELO"):
            self.state, self.rcpt_tried = "ready", False
            return 250
        if verb == "MAIL":
            if self.state != "ready":
                return self.err(503)
            self.state, self.junk, self.rcpt_tried = "mail", 0, False
            return 250
        if verb in ("RCPT", "RCPT_BAD"):
            if self.state not in ("mail", "rcpt"):
                return self.err(503)
            self.rcpt_tried = True
            if verb == "RCPT_BAD":
                return self.err(550)
            self.state = "rcpt"
            return 250
        if verb == "DATA":
            if self.state == "rcpt":
                self.state = "ready"
                self.accepted += 1
                return 250              # after the body, see below
            if self.state == "mail" and self.rcpt_tried:
                return self.err(554)
            return self.err(503)
        if verb == "RSET":
            if self.state != "fresh":
                self.state = "ready"
            return 250
        if verb == "NOOP":
            return 250
        if verb == "VRFY":
            return 252
        if verb == "HELP":
            return 214
        if verb in ("BOGUS", "AUTH", "STARTTLS", "TURN", "EXPN"):
            return self.err(500 if verb == "BOGUS" else 502)
        raise AssertionError(verb)


_WALK_LINES = {
    "EHLO": "EHLO walk.test", "HELO": "HELO walk.test",
    "MAIL": "MAIL FROM:<w@client.test>", "RCPT": "RCPT TO:<w{}@example.org>",
    "RCPT_BAD": "RCPT TO:<w@elsewhere.test>", "DATA": "DATA",
    "RSET": "RSET", "NOOP": "NOOP", "VRFY": "VRFY w", "HELP": "HELP",
    "BOGUS": "XYZZY", "AUTH": "AUTH PLAIN", "STARTTLS": "STARTTLS",
    "TURN": "TURN", "EXPN": "EXPN list",
}


def test_p10_random_command_walks_match_the_model(etrnd_factory):
    # replies only: the error tarpit (P11, tested below) would just slow
    # the walk down
    etrnd = etrnd_factory(extra="error_delay = 0\n")
    rng = random.Random(20240610)
    verbs = list(_WALK_LINES)
    weights = [3, 1, 6, 6, 2, 3, 3, 4, 1, 1, 2, 1, 1, 1, 1]
    model, total = _Model(), 0
    c = etrnd.connect()
    steps = 1500
    for step in range(steps):
        verb = rng.choices(verbs, weights)[0]
        want = model.predict(verb)
        if verb == "DATA" and want == 250:
            expect(c, "DATA", 354)
            c.send(b"Subject: walk %d\r\n\r\n.x\r\n.\r\n" % step)
            got = c.reply()[0]
        else:
            got = c.cmd(_WALK_LINES[verb].format(step))[0]
        assert got == want, (step, verb, got, want)
        if got == 421:
            assert c.closed()
            total += model.accepted
            model.reset_conn()
            c = etrnd.connect()
    total += model.accepted
    c.close()
    assert msg_count(etrnd) == total and total > 10


# --- P11: junk and error limits ----------------------------------------------

@pytest.mark.parametrize("line,per,limit_reply", [
    (b"XYZZY\r\n", 500, 19),      # errors: the 20th is 421
    (b"NOOP\r\n", 250, 100),      # non-mail commands: the 101st is 421
    (b"RSET\r\n", 250, 100),
])
def test_p11_junk_and_error_limits(etrnd_factory, line, per, limit_reply):
    etrnd = etrnd_factory(extra="error_delay = 0\n")     # limits only
    c = ehlo(etrnd)
    t = send_in_thread(c.sock, line * 10000)
    replies = replies_until_closed(c, timeout=20)
    t.join(20)
    assert codes(replies) == [per] * limit_reply + [421], codes(replies)[-5:]
    assert replies[-1][1][0].startswith("421 4.7.0")
    _alive(etrnd)


def test_p11_error_replies_slow_down(etrnd_factory):
    """Past soft_error_limit every refusal waits error_delay (Postfix's
    smtpd_error_sleep_time); at hard_error_limit the session ends."""
    etrnd = etrnd_factory(extra="soft_error_limit = 3\n"
                                "hard_error_limit = 6\nerror_delay = 1s\n")
    c = ehlo(etrnd)
    times = []
    for _ in range(6):
        t0 = time.time()
        c.send(b"XYZZY\r\n")
        r = try_reply(c)
        times.append(time.time() - t0)
        assert r is not None
        if r[0] == 421:
            break
        assert r[0] == 500, r
    assert r[1][0].startswith("421 4.7.0"), r
    assert len(times) == 6
    assert all(t < 0.8 for t in times[:2]), times     # errors 1 and 2
    assert all(t >= 0.9 for t in times[2:5]), times   # errors 3 to 5 wait
    assert c.closed()
    # a pipelined flood is slowed the same way, and still ends at the limit
    c = ehlo(etrnd)
    t0 = time.time()
    t = send_in_thread(c.sock, b"XYZZY\r\n" * 1000)
    replies = replies_until_closed(c, timeout=20)
    t.join(20)
    assert codes(replies) == [500] * 5 + [421]
    assert time.time() - t0 >= 2.7
    _alive(etrnd)


def test_p11_mail_resets_the_non_mail_count(etrnd):
    c = ehlo(etrnd)
    for _ in range(3):
        c.send(b"NOOP\r\n" * 90)
        assert codes(c.reply() for _ in range(90)) == [250] * 90
        expect(c, "MAIL FROM:<s@client.test>", 250)
        expect(c, "RSET", 250)
    c.close()


# --- P12: cross-protocol -----------------------------------------------------

@pytest.mark.parametrize("request_bytes", [
    b"GET / HTTP/1.1\r\nHost: relay.test\r\n\r\n",
    b"POST /x HTTP/1.1\r\nContent-Length: 38\r\n\r\n"
    b"MAIL FROM:<a@b.test>\r\nRCPT TO:<u@example.org>\r\n",
    b"CONNECT relay.test:443 HTTP/1.1\r\nHost: relay.test:443\r\n\r\n",
    b"GET / HTTP/1.1\r\n",
])
@pytest.mark.parametrize("after_ehlo", [False, True])
def test_p12_cross_protocol_disconnects(etrnd, request_bytes, after_ehlo):
    c = ehlo(etrnd) if after_ehlo else etrnd.connect()
    c.send(request_bytes)
    replies = replies_until_closed(c, timeout=5)
    assert len(replies) <= 1, replies
    if replies:
        assert replies[0][0] == 554, replies
    assert "event=mail" not in etrnd.read_log()
    _alive(etrnd)


# --- P13: header bombs -------------------------------------------------------

def _p13_messages():
    continuation = b"Subject: x\r\n" + b" y\r\n" * 100000 + b"\r\nbody\r\n"
    fold = b"X-Big: " + b"\r\n ".join([b"a" * 900] * 5500) + b"\r\n"
    big_header = fold + b"Subject: big\r\n\r\nbody\r\n"
    no_colon = b"this line is not a header\r\nSubject: x\r\n\r\nbody\r\n"
    to = b"To: " + b",\r\n ".join(b"u%d@example.org" % i
                                  for i in range(50000)) + b"\r\n"
    big_to = to + b"Subject: many\r\n\r\nbody\r\n"
    return [continuation, big_header, no_colon, big_to]


def test_p13_header_bombs(etrnd):
    base = rss_kb(etrnd.pid)
    sent = []
    for content in _p13_messages():
        assert len(content) < 10240000
        c = ehlo(etrnd, timeout=60)
        expect(c, "MAIL FROM:<bomb@client.test>", 250)
        expect(c, "RCPT TO:<bomb@example.org>", 250)
        expect(c, "DATA", 354)
        c.sock.sendall(content + b".\r\n")
        code, lines = c.reply()
        # accepted, or refused cleanly after the end of data
        assert code in (250, 552, 550), lines
        if code == 250:
            sent.append(content)
        _noop_ok(c)
        c.close()
    assert rss_kb(etrnd.pid) - base < RSS_GROWTH_MAX_KB
    assert sorted(stored_contents(etrnd).values()) == sorted(sent)


# --- P14: loop headers -------------------------------------------------------

def _hops(n, name=b"Received"):
    return b"".join(name + b": from hop%d.test by relay%d.test; "
                    b"Mon, 1 Jan 2024 00:00:00 +0000\r\n" % (i, i)
                    for i in range(n))


def test_p14_received_hop_limit(etrnd):
    cases = [
        (_hops(49) + b"Subject: 49\r\n\r\nx\r\n", 250),
        (_hops(50) + b"Subject: 50\r\n\r\nx\r\n", 554),
        (_hops(51) + b"Subject: 51\r\n\r\nx\r\n", 554),
        (_hops(101) + b"Subject: 101\r\n\r\nx\r\n", 554),
        (_hops(50, b"rEcEiVeD") + b"Subject: case\r\n\r\nx\r\n", 554),
        # Received lines in the body are not hops
        (b"Subject: body\r\n\r\n" + _hops(60), 250),
    ]
    c = ehlo(etrnd)
    accepted = []
    for content, want in cases:
        expect(c, "MAIL FROM:<hop@client.test>", 250)
        expect(c, "RCPT TO:<hop@example.org>", 250)
        expect(c, "DATA", 354)
        c.send(content + b".\r\n")
        code, lines = c.reply()
        assert code == want, (content[-30:], lines)
        if want == 554:
            assert lines[0].startswith("554 5.4.6"), lines
        else:
            accepted.append(content)
    c.close()
    assert sorted(stored_contents(etrnd).values()) == sorted(accepted)
