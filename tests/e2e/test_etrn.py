"""ETRN (RFC 1985) end to end: every reply of DESIGN.md section 4 from a
real session, SECURITY.md E1-E6 (including injection attempts), flush
coalescing, exact selection of a domain / subtree / named queue in a queue
holding many domains, and the clients a site really runs: fetchmail in
ETRN mode and our own `etrn` (against etrnd and against Postfix)."""

import os
import re
import subprocess
import time

import pytest

from conftest import BUILD
from etrnd_harness import free_port
from peers import RawPeer, SmtpPeer, wait_for
from peers import peer_factory, postfix_factory  # noqa: F401 (fixtures)

BODY = b"Subject: queued for the site\r\n\r\nhello from the relay\r\n"


def domains_for(port, extra=""):
    """The relay's domains, all routed to one peer on 127.0.0.1:port."""
    return f"""
[domain example.org]
route = [127.0.0.1]:{port}
mode = hold
subdomains = yes

[domain example.net]
route = [127.0.0.1]:{port}
mode = hold

[domain empty.example]
route = [127.0.0.1]:{port}
mode = hold

[domain odmr.example]
route = odmr

[domain private.example]
route = [127.0.0.1]:{port}
mode = hold
etrn_clients = 127.0.0.1/32

[queue dialup]
domains = example.org example.net
{extra}
"""


def flush_runs(d, domain):
    return len(d.log_lines(f"event=run_start domain={domain} kind=flush"))


def queue_rows(d):
    """Every msg and rcpt row, to prove a request changed nothing."""
    with d.db() as db:
        return (db.execute("SELECT * FROM msg ORDER BY id").fetchall(),
                db.execute("SELECT * FROM rcpt ORDER BY id").fetchall())


# --- the reply table (DESIGN.md section 4) ----------------------------------

def test_every_reply_of_the_table(etrnd_factory, peer_factory):
    peer = peer_factory(SmtpPeer)
    plain = free_port()
    d = etrnd_factory(extra=f"etrn_rate = 1000\n"
                            f"etrn_plain_listen = 127.0.0.1:{plain}\n",
                      domains=domains_for(peer.port))
    for i in range(3):
        d.submit("s@client.test", ["u@example.org"], BODY)

    # 503 before HELO/EHLO, and inside a mail transaction
    c = d.connect_from()
    code, lines = c.cmd("ETRN example.org")
    assert code == 503 and lines[0].startswith("503 5.5.1")
    c.cmd("EHLO site.test")
    assert c.cmd("MAIL FROM:<s@client.test>")[0] == 250
    code, lines = c.cmd("ETRN example.org")
    assert code == 503 and lines[0].startswith("503 5.5.1"), lines
    assert c.cmd("RSET")[0] == 250
    # 500: no argument (RFC 1985's own example), also spaces only (E1)
    assert c.cmd("ETRN") == (500, ["500 5.5.2 Syntax Error"])
    assert c.cmd("ETRN   ") == (500, ["500 5.5.2 Syntax Error"])
    # E6: TURN is not implemented and never reverses roles
    code, lines = c.cmd("TURN")
    assert code == 502 and lines[0].startswith("502 5.5.1")
    c.close()
    # 501: two arguments, an address literal, not a domain (a new session:
    # past 10 errors in one, replies slow down)
    c = d.session()
    for bad in ("example.org example.net", "[127.0.0.1]", "[1.2.3.4]",
                "exa_mple.org", "@", "#", "example..org"):
        assert c.cmd(f"ETRN {bad}") == (
            501, ["501 5.5.4 Syntax Error in Parameters"]), bad
    c.close()

    c = d.session()
    # 251: allowed, nothing waiting
    assert c.cmd("ETRN empty.example") == (251, [
        "251 2.0.0 OK, no messages waiting for node empty.example"])
    # 459 with each reason
    for node, reason in (
            ("unknown.example", "not a relay domain"),
            ("@com", "suffix too broad"),
            ("@org", "suffix too broad"),
            ("@example.net", "subdomains are not relayed for this domain"),
            ("odmr.example", "its mail is collected with ATRN"),
            ("#nosuch", "no such queue")):
        code, lines = c.cmd(f"ETRN {node}")
        assert code == 459, (node, lines)
        assert lines[0].startswith(
            f"459 4.7.1 Node {node} not allowed: {reason}"), lines
    c.close()
    # 459 client not allowed: private.example takes 127.0.0.1 only
    code, line = d.etrn("private.example", src="127.0.0.2")
    assert code == 459 and line == ("459 4.7.1 Node private.example not"
                                    " allowed: client not allowed")
    assert d.etrn("private.example", src="127.0.0.1")[0] == 251
    # nothing was started by any of that
    assert flush_runs(d, "example.org") == 0
    assert len(d.pending()) == 3

    # 250 plain on the etrn_plain_listen listener, even with nothing queued
    assert d.etrn("empty.example", port=plain) == (
        250, "250 2.0.0 OK, queuing for node empty.example started")
    # 253 with the exact count
    assert d.etrn("example.org") == (
        253, "253 2.0.0 OK, 3 pending messages for node example.org started")
    msgs = peer.wait_messages(3)
    assert sorted(r for m in msgs for r in m.rcpt_tos) == ["u@example.org"] * 3
    assert wait_for(lambda: d.pending() == [], 10)
    assert flush_runs(d, "example.org") == 1        # exactly one flush
    # and then there is nothing left
    assert d.etrn("example.org")[0] == 251


def test_253_counts_messages_not_recipients(etrnd_factory, peer_factory):
    peer = peer_factory(SmtpPeer)
    d = etrnd_factory(domains=domains_for(peer.port))
    d.submit("s@client.test", ["a@example.org", "b@example.org"], BODY)
    d.submit("s@client.test", ["c@example.org", "x@example.net"], BODY)
    d.submit("s@client.test", ["y@example.net"], BODY)
    assert d.etrn("example.net") == (
        253, "253 2.0.0 OK, 2 pending messages for node example.net started")
    peer.wait_messages(2)
    assert wait_for(lambda: d.pending() == [
        "a@example.org", "b@example.org", "c@example.org"], 10), d.pending()
    assert d.etrn("example.org") == (
        253, "253 2.0.0 OK, 2 pending messages for node example.org started")
    peer.wait_messages(4)
    assert wait_for(lambda: d.pending() == [], 10)
    got = sorted(r for m in peer.messages for r in m.rcpt_tos)
    assert got == ["a@example.org", "b@example.org", "c@example.org",
                   "x@example.net", "y@example.net"]


def test_delivery_never_over_the_requesting_connection(etrnd_factory,
                                                       peer_factory):
    """E2: the flush goes to the domain's route on a new connection; the
    ETRN session only ever sees its own replies."""
    peer = peer_factory(SmtpPeer)
    d = etrnd_factory(domains=domains_for(peer.port))
    d.submit("s@client.test", ["u@example.org"], BODY)
    c = d.session()
    code, _ = c.cmd("ETRN example.org")
    assert code == 253
    peer.wait_messages(1)
    assert peer.connections == 1
    # nothing unsolicited arrived on the ETRN connection
    assert not c.closed(timeout=0.5)
    assert c.buf == b""
    assert c.cmd("NOOP")[0] == 250
    assert c.cmd("QUIT")[0] == 221
    c.close()


def test_rate_limit_458(etrnd_factory, peer_factory):
    peer = peer_factory(SmtpPeer)
    d = etrnd_factory(extra="etrn_rate = 3\n", domains=domains_for(peer.port))
    c = d.session()
    for _ in range(3):
        assert c.cmd("ETRN empty.example")[0] == 251
    code, lines = c.cmd("ETRN empty.example")
    assert code == 458, lines
    assert lines[0].startswith("458 4.7.0 Unable to queue messages for node"
                               " empty.example"), lines
    # the limit is per client address, and counts across sessions
    c.close()
    assert d.etrn("empty.example")[0] == 458
    assert d.etrn("empty.example", src="127.0.0.3")[0] == 251


def test_458_when_too_many_flushes_run(etrnd_factory, peer_factory):
    """E3: the flush slots (20) all taken by a site that never greets ->
    the next ETRN gets 458 at once, not a hang."""
    silent = peer_factory(RawPeer, greeting="hang")
    doms = [f"d{i:02d}.example" for i in range(21)]
    text = "".join(f"[domain {x}]\nroute = [127.0.0.1]:{silent.port}\n"
                   f"mode = hold\n\n" for x in doms)
    text += "[queue first20]\ndomains = " + " ".join(doms[:20]) + "\n"
    d = etrnd_factory(extra="etrn_rate = 1000\n", domains=text)
    for x in doms:
        d.submit("s@client.test", [f"u@{x}"], BODY)
    assert d.etrn("#first20") == (
        253, "253 2.0.0 OK, 20 pending messages for node #first20 started")
    assert wait_for(lambda: silent.connections >= 20, 15), silent.connections
    t = time.monotonic()
    code, line = d.etrn(doms[20])
    assert code == 458, line
    assert line.startswith(f"458 4.3.0 Unable to queue messages for node "
                           f"{doms[20]}"), line
    assert time.monotonic() - t < 5
    # a domain already flushing is joined, not refused
    assert d.etrn(doms[0])[0] == 253
    assert silent.connections == 20


def test_repeated_etrn_joins_the_running_flush(etrnd_factory, peer_factory):
    """E3: ETRNs for a domain while its flush runs start no second flush:
    one run, one connection, each message delivered once."""
    slow = peer_factory(RawPeer, dot_delay=2)
    d = etrnd_factory(domains=domains_for(slow.port))
    for i in range(2):
        d.submit("s@client.test", [f"u{i}@example.org"], BODY)
    assert d.etrn("example.org")[0] == 253
    assert wait_for(lambda: slow.dots, 10)     # the flush is mid-delivery
    c = d.session()
    for _ in range(5):
        code, lines = c.cmd("ETRN example.org")
        assert code == 253, lines               # counted, and joined
    c.close()
    assert wait_for(lambda: d.pending() == [], 20), d.pending()
    time.sleep(1.5)     # a second run would start right after the first
    assert flush_runs(d, "example.org") == 1, d.log_lines("run_start")
    assert slow.connections == 1
    assert sorted(r for m in slow.messages for r in m.rcpt_tos) == [
        "u0@example.org", "u1@example.org"]


# --- E4, E5 -----------------------------------------------------------------

INJECTIONS = [
    b"x' OR '1'='1",
    b"example.org' OR '1'='1",
    b"example.org'; DROP TABLE rcpt;--",
    b"%' --",
    b"../../etc/passwd",
    b"example.org/../x",
    b"..",
    b"%n%s%x",
    b"$(touch /tmp/etrn-canary)",
    b"`id`.example.org",
    b"exam\x00ple.org",
    b"example.org\x00.evil",
    "exämple.org".encode(),
    "例え.jp".encode(),
    b"xn--\xff.example",
    b"a" * 300 + b".org",
    b"a" * 64 + b".example.org",
    b"@example.org/..",
    b"#dialup'--",
    b"#../dialup",
    b"@@example.org",
    b"[1.2.3.4]",
    b"[IPv6:::1]",
]


@pytest.mark.parametrize("arg", INJECTIONS + [b"x" * 10240],
                         ids=lambda a: repr(a[:24]) + (
                             f"..{len(a)}" if len(a) > 24 else ""))
def test_injection_gets_501_and_changes_nothing(etrnd_factory, peer_factory,
                                                arg):
    peer = peer_factory(SmtpPeer)
    d = etrnd_factory(extra="etrn_rate = 1000\n",
                      domains=domains_for(peer.port))
    d.submit("canary@client.test", ["u@example.org", "v@example.net"], BODY)
    before = queue_rows(d)
    c = d.session()
    c.send(b"ETRN " + arg + b"\r\n")
    code, lines = c.reply()
    assert code == 501, lines
    assert "sql" not in lines[0].lower()
    # the session goes on, and so does etrnd
    assert c.cmd("NOOP")[0] == 250
    c.close()
    time.sleep(0.2)
    assert queue_rows(d) == before
    assert d.log_lines("event=run_start") == []
    assert peer.connections == 0
    assert not os.path.exists("/tmp/etrn-canary")
    assert d.etrn("example.org")[0] == 253       # still serving


def test_client_not_allowed_by_global_policy(etrnd_factory, peer_factory):
    """E5: etrn_clients = 127.0.0.1/32 for every domain that sets none; a
    refusal looks the same whether or not mail is waiting."""
    peer = peer_factory(SmtpPeer)
    d = etrnd_factory(etrn_clients="127.0.0.1/32",
                      domains=domains_for(peer.port))
    d.submit("s@client.test", ["u@example.org"], BODY)
    before = queue_rows(d)
    full = d.etrn("example.org", src="127.0.0.2")
    empty = d.etrn("empty.example", src="127.0.0.2")
    assert full == (459, "459 4.7.1 Node example.org not allowed: client not"
                         " allowed")
    assert empty == (459, "459 4.7.1 Node empty.example not allowed: client"
                          " not allowed")
    # the named queue and the subtree are refused the same way
    assert d.etrn("#dialup", src="127.0.0.2")[0] == 459
    assert d.etrn("@example.org", src="127.0.0.2")[0] == 459
    time.sleep(0.2)
    assert queue_rows(d) == before and peer.connections == 0
    # the allowed client gets the flush
    assert d.etrn("example.org", src="127.0.0.1")[0] == 253
    peer.wait_messages(1)


# --- selection in a queue of many domains (X7) ------------------------------

def test_node_subtree_and_queue_select_exactly(etrnd_factory, peer_factory):
    peer = peer_factory(SmtpPeer)
    plain = [f"d{i:02d}.test" for i in range(1, 21)]
    tree = ["example.org", "sub.example.org", "a.b.example.org"]
    lookalikes = ["badexample.org", "example.org.au", "xexample.org"]
    text = "".join(f"[domain {x}]\nroute = [127.0.0.1]:{peer.port}\n"
                   f"mode = hold\n\n" for x in plain + lookalikes)
    text += (f"[domain example.org]\nroute = [127.0.0.1]:{peer.port}\n"
             f"mode = hold\nsubdomains = yes\n\n"
             f"[queue dialup]\ndomains = d03.test d04.test\n")
    d = etrnd_factory(extra="etrn_rate = 1000\n", domains=text)
    everyone = []
    for x in plain + tree + lookalikes:
        for k in range(2):
            rc = [f"m{k}@{x}"]
            d.submit("s@client.test", rc, BODY)
            everyone += rc
    # messages spanning several domains, the look-alikes among them
    multi = [["x1@d01.test", "x1@d02.test", "x1@example.org",
              "x1@badexample.org"],
             ["x2@sub.example.org", "x2@example.org.au", "x2@d03.test"],
             ["x3@d05.test", "x3@a.b.example.org", "x3@xexample.org"]]
    for rc in multi:
        d.submit("s@client.test", rc, BODY)
        everyone += rc
    assert d.pending() == sorted(everyone)

    def delivered():
        return sorted(r for m in peer.messages for r in m.rcpt_tos)

    def step(node, count, expect):
        before = delivered()
        code, line = d.etrn(node)
        assert (code, line) == (
            253, f"253 2.0.0 OK, {count} pending messages for node {node}"
                 f" started"), line
        want = sorted(before + expect)
        assert wait_for(lambda: delivered() == want, 15), (node, delivered())
        rest = sorted(set(everyone) - set(want))
        assert wait_for(lambda: d.pending() == rest, 10), d.pending()
        time.sleep(0.3)
        assert delivered() == want      # and nothing more arrives
        # each transaction carried one domain's recipients only
        for m in peer.messages:
            assert len({r.split("@")[1] for r in m.rcpt_tos}) == 1, m

    step("d01.test", 3, ["m0@d01.test", "m1@d01.test", "x1@d01.test"])
    # a subdomain as a node: exactly that subdomain
    step("sub.example.org", 3,
         ["m0@sub.example.org", "m1@sub.example.org", "x2@sub.example.org"])
    # the subtree: the domain and every subdomain, never a look-alike
    step("@example.org", 6,
         ["m0@example.org", "m1@example.org", "x1@example.org",
          "m0@a.b.example.org", "m1@a.b.example.org", "x3@a.b.example.org"])
    step("#dialup", 5, ["m0@d03.test", "m1@d03.test", "x2@d03.test",
                        "m0@d04.test", "m1@d04.test"])
    # the look-alikes are all still there, untouched
    for x in lookalikes:
        assert f"m0@{x}" in d.pending()


# --- clients: fetchmail and etrn --------------------------------------------

def fetchmail(tmp_path, port, domain):
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    rc = home / ".fetchmailrc"
    rc.write_text(f"set no syslog\n"
                  f"poll 127.0.0.1 proto ETRN service {port}\n"
                  f"  fetchdomains {domain}\n")
    os.chmod(rc, 0o600)
    env = {"HOME": str(home), "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
           "LC_ALL": "C"}
    return subprocess.run(["fetchmail", "-v", "--nodetach", "--nosyslog",
                           "-f", str(rc)], capture_output=True, text=True,
                          env=env, timeout=60)


def test_fetchmail_etrn_mode(etrnd_factory, peer_factory, tmp_path):
    assert os.path.exists("/usr/bin/fetchmail"), \
        "fetchmail is not installed (scripts/install-deps.sh)"
    peer = peer_factory(SmtpPeer)
    d = etrnd_factory(domains=domains_for(peer.port))
    d.submit("s@client.test", ["u@example.org", "v@example.net"], BODY)
    d.submit("s@client.test", ["w@example.org"], BODY)
    r = fetchmail(tmp_path, d.port, "example.org")
    # fetchmail(1): 0 = accepted; it prints RFC 1985's meaning of 253
    assert r.returncode == 0, r.stdout + r.stderr
    assert "ETRN< 253 2.0.0 OK, 2 pending messages for node example.org" \
        in r.stdout, r.stdout
    assert "Pending messages for example.org started" in r.stdout
    peer.wait_messages(2)
    assert wait_for(lambda: d.pending() == ["v@example.net"], 10), d.pending()
    assert sorted(r for m in peer.messages for r in m.rcpt_tos) == [
        "u@example.org", "w@example.org"]
    # asked again: nothing waiting (fetchmail's exit 1 = "no mail" or 0)
    r = fetchmail(tmp_path, d.port, "example.org")
    assert "No messages waiting for example.org" in r.stdout, r.stdout
    assert r.returncode in (0, 1)


def run_etrn(d, *args, timeout=60):
    r = subprocess.run([d.etrn_bin, *args], capture_output=True, text=True,
                       timeout=timeout)
    assert "Sanitizer" not in r.stderr, r.stderr
    return r


def test_etrn_client_exit_codes(etrnd_factory, peer_factory):
    peer = peer_factory(SmtpPeer)
    d = etrnd_factory(domains=domains_for(peer.port))
    d.submit("s@client.test", ["u@example.org"], BODY)
    p = str(d.port)
    # 0: every node accepted
    r = run_etrn(d, "-p", p, "127.0.0.1", "example.org", "empty.example")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        "example.org: 253 2.0.0 OK, 1 pending messages for node example.org"
        " started",
        "empty.example: 251 2.0.0 OK, no messages waiting for node"
        " empty.example"]
    peer.wait_messages(1)
    # 1: a 4xx (459) among the replies
    r = run_etrn(d, "-p", p, "127.0.0.1", "empty.example", "unknown.example")
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "unknown.example: 459 4.7.1 Node unknown.example not allowed" \
        in r.stdout
    # 2: a 5xx (501, an address literal) wins over a 4xx
    r = run_etrn(d, "-p", p, "127.0.0.1", "unknown.example", "[1.2.3.4]")
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "[1.2.3.4]: 501 5.5.4 Syntax Error in Parameters" in r.stdout
    # 2: nobody listening
    closed = peer_factory(RawPeer)
    closed.stop()
    r = run_etrn(d, "-p", str(closed.port), "127.0.0.1", "example.org")
    assert r.returncode == 2 and "cannot connect" in r.stderr, r.stderr
    # 2: usage
    assert run_etrn(d, "127.0.0.1").returncode == 2


def test_etrn_client_wait(etrnd_factory, peer_factory):
    """--wait polls until the relay answers 251 (everything handed over),
    or gives up with 1 when mail stays queued."""
    peer = peer_factory(SmtpPeer)
    dead = peer_factory(RawPeer)
    dead.stop()                         # a site that does not answer
    d = etrnd_factory(domains=domains_for(peer.port, f"""
[domain down.example]
route = [127.0.0.1]:{dead.port}
mode = hold
"""))
    for i in range(3):
        d.submit("s@client.test", [f"u{i}@example.org"], BODY)
    d.submit("s@client.test", ["u@down.example"], BODY)
    t = time.monotonic()
    r = run_etrn(d, "--wait", "30", "--interval", "1", "-p", str(d.port),
                 "127.0.0.1", "example.org")
    took = time.monotonic() - t
    assert r.returncode == 0, (r.stdout, r.stderr)
    lines = r.stdout.splitlines()
    assert lines[0].startswith("example.org: 253 2.0.0 OK, 3 pending")
    assert lines[-1] == ("example.org: 251 2.0.0 OK, no messages waiting for"
                         " node example.org")
    assert took < 15
    assert len(peer.messages) == 3
    # mail that cannot be handed over: --wait times out with 1
    t = time.monotonic()
    r = run_etrn(d, "--wait", "3", "--interval", "1", "-p", str(d.port),
                 "127.0.0.1", "down.example")
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "still mail waiting" in r.stderr
    assert 2 <= time.monotonic() - t < 10
    assert d.pending() == ["u@down.example"]


def test_etrn_client_against_postfix(etrnd_factory, peer_factory,
                                     postfix_factory):
    """Our etrn against Postfix as the relay (fast_flush_domains): Postfix
    answers 250, etrn exits 0, and the held mail reaches the site."""
    site = peer_factory(SmtpPeer)
    pf = postfix_factory(["site.example"], relay=True,
                         nexthop=f"[127.0.0.1]:{site.port}")
    import smtplib
    with smtplib.SMTP("127.0.0.1", pf.port, timeout=30) as s:
        s.sendmail("s@client.test", ["u@site.example"], BODY)
    # Postfix holds it (defer_transports)
    assert wait_for(lambda: "deferred transport" in pf.log(), 20), pf.log()
    assert site.messages == []
    etrn_bin = os.path.join(os.path.abspath(BUILD), "etrn")
    r = subprocess.run([etrn_bin, "-p", str(pf.port), "127.0.0.1",
                        "site.example"], capture_output=True, text=True,
                       timeout=60)
    assert "Sanitizer" not in r.stderr, r.stderr
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert re.match(r"site\.example: 250 ", r.stdout), r.stdout
    msgs = site.wait_messages(1, timeout=30)
    assert msgs[0].rcpt_tos == ["u@site.example"]
    assert b"hello from the relay" in msgs[0].content
    # and Postfix refuses what it does not relay: etrn exits 1
    r = subprocess.run([etrn_bin, "-p", str(pf.port), "127.0.0.1",
                        "other.example"], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "other.example: 459 " in r.stdout


def test_etrn_right_after_250_counts_that_message(etrnd_factory, peer_factory):
    """etrnd answers 250 once a message's record (body and envelope) is
    durable, and commits its rows just after.  An ETRN sent the moment
    the 250 arrives must still count it: the count waits for every
    acknowledged message's rows.  slow_rows holds the first batch's rows
    back for a second, so without that wait the count would be 0 (251)."""
    peer = peer_factory(SmtpPeer)
    d = etrnd_factory(domains=domains_for(peer.port), start=False)
    d.start(env={"ETRND_FAULT": "slow_rows"})
    t0 = time.monotonic()
    d.submit("s@client.test", ["a@example.org"], BODY)
    assert d.etrn("example.org") == (
        253, "253 2.0.0 OK, 1 pending messages for node example.org started")
    assert "event=fault_point name=slow_rows action=delay" in d.read_log()
    assert time.monotonic() - t0 >= 0.9     # the count did wait
    (m,) = peer.wait_messages(1)
    assert m.rcpt_tos == ["a@example.org"]
    assert wait_for(lambda: d.pending() == [], 10)
