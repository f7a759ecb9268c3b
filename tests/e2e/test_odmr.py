"""ODMR (RFC 2645, ATRN) end to end: the clients a site really runs
(fetchmail in ODMR mode, our `etrn --odmr` over STARTTLS with PLAIN and
in clear with CRAM-MD5), SECURITY.md T4, E7-E14, R9 and D5 over real
sockets, and the users_file checks at start.

A raw-socket customer (odmr_util.Customer) plays the reversed session's
server so that each per-recipient reply, a drop mid-DATA, silence after
the dot and a kill -9 of etrnd at each step can be scripted."""

import os
import socket
import re
import subprocess
import threading
import time

import pytest

from conftest import BUILD
from etrnd_harness import Etrnd, free_port
from odmr_util import (DOVECOT_CRAM_CTX, DOVECOT_CRAM_PASSWORD, Customer,
                       cram_digest, plain_b64, sha512_crypt, tls_client,
                       write_users)
from peers import SmtpPeer, make_cert, wait_for
from peers import peer_factory  # noqa: F401 (fixture)

DOMAINS = """
[domain a.example]
route = odmr

[domain b.example]
route = odmr

[domain c.example]
route = odmr

[domain held.example]
route = [127.0.0.1]:1
mode = hold
"""

# site collects a.example and c.example, bob collects b.example
USERS = ["site:{PLAIN}secret-a:a.example,c.example",
         "bob:{PLAIN}secret-b:b.example"]


def body(tag, size=0):
    pad = b"".join(b"line %06d of the padding\r\n" % i
                   for i in range(size // 26))
    return (b"Subject: " + tag.encode() + b"\r\n\r\nhello " + tag.encode()
            + b"\r\n.leading dot\r\n" + pad)


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    return make_cert(tmp_path_factory.mktemp("cert"), "relay.test")


@pytest.fixture
def odmr(etrnd_factory, tmp_path, cert):
    """make(users=USERS, tls=False, extra=""): a started etrnd with an
    ODMR listener; .odmr_port is its port."""
    def make(users=USERS, tls=False, extra=""):
        port = free_port()
        path = write_users(tmp_path / f"users.{port}", users)
        conf = f"odmr_listen = 127.0.0.1:{port}\nusers_file = {path}\n"
        if tls:
            conf += f"tls_cert = {cert[0]}\ntls_key = {cert[1]}\n"
        d = etrnd_factory(extra=conf + extra, domains=DOMAINS)
        d.odmr_port = port
        d.users_path = path
        assert wait_for(lambda: _can_connect(port), 10)
        return d
    return make


def _can_connect(port):
    try:
        socket.create_connection(("127.0.0.1", port), 0.2).close()
        return True
    except OSError:
        return False


def customer(d, user=None, password=None, src="127.0.0.1"):
    c = Customer(d.odmr_port, src)
    assert c.greeting[0] == 220, c.greeting
    if user:
        c.login(user, password)
    return c


def rows(d, domain=None):
    """The queued recipients (etrnctl --json list), as comparable tuples."""
    return sorted((r["qid"], r["recipient"], r["state"], r["attempts"])
                  for r in d.queued_json(domain))


def pending(d, domain):
    return sorted(r["recipient"] for r in d.queued_json(domain))


def rcpt_state(d, qid, address):
    m = d.show_json(qid)
    if m is None:
        return None
    for k, v in m.items():
        if k.startswith("rcpt_") and v["address"] == address:
            return v
    return None


# --- 1. fetchmail in ODMR mode ----------------------------------------------

def test_fetchmail_odmr_collects_one_domain(odmr, peer_factory, tmp_path):
    assert os.path.exists("/usr/bin/fetchmail"), \
        "fetchmail is not installed (scripts/install-deps.sh)"
    peer = peer_factory(SmtpPeer)
    d = odmr()
    b1, b2, b3 = body("one"), body("two", 20000), body("three")
    q1 = d.submit("alice@sender.example", ["u1@a.example", "u2@a.example"],
                  b1)
    q2 = d.submit("bob@sender.example", ["u3@a.example", "v@c.example",
                                         "w@held.example"], b2)
    d.submit("carol@sender.example", ["v2@c.example"], b3)
    stored = d.stored_bodies()
    others = rows(d, "c.example") + rows(d, "held.example")
    assert len(others) == 3

    home = tmp_path / "home"
    home.mkdir()
    rc = home / ".fetchmailrc"
    rc.write_text(f"set no syslog\n"
                  f"poll 127.0.0.1 proto ODMR port {d.odmr_port}\n"
                  f"  user \"site\" password \"secret-a\"\n"
                  f"  fetchdomains a.example\n"
                  f"  smtphost 127.0.0.1/{peer.port}\n")
    os.chmod(rc, 0o600)
    env = {"HOME": str(home), "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
           "LC_ALL": "C"}
    r = subprocess.run(["fetchmail", "-v", "--nodetach", "-f", str(rc)],
                       capture_output=True, text=True, env=env, timeout=60)
    out = r.stdout + r.stderr
    assert "ATRN a.example" in out, out
    assert "250 2.0.0 OK now reversing the connection" in out, out

    msgs = peer.wait_messages(2)
    assert len(msgs) == 2, msgs
    got = sorted((m.mail_from, tuple(sorted(m.rcpt_tos)), m.content)
                 for m in msgs)
    assert got == sorted([
        ("alice@sender.example", ("u1@a.example", "u2@a.example"), stored[q1]),
        ("bob@sender.example", ("u3@a.example",), stored[q2])])
    assert stored[q1].endswith(b1) and stored[q2].endswith(b2)
    # the relay greeted the site's MTA itself, through fetchmail
    assert ("EHLO", "relay.test") in peer.commands, peer.commands
    assert wait_for(lambda: pending(d, "a.example") == [], 10), \
        d.queued_json()
    assert rows(d, "c.example") + rows(d, "held.example") == others
    assert r.returncode == 0, out
    # fetchmail authenticated with CRAM-MD5 (no TLS was offered)
    assert d.log_lines("event=auth", "user=site", "result=ok")


# --- 2. etrn --odmr ---------------------------------------------------------

def run_etrn(d, *args, timeout=60):
    r = subprocess.run([d.etrn_bin, *args], capture_output=True, text=True,
                       timeout=timeout)
    assert "Sanitizer" not in r.stderr and "runtime error" not in r.stderr, \
        r.stderr
    return r


def secret_file(tmp_path, name, password):
    p = tmp_path / f"{name}.secret"
    p.write_text(password + "\n")
    os.chmod(p, 0o600)
    return str(p)


def test_etrn_odmr_starttls_plain_sha512(odmr, peer_factory, tmp_path):
    peer = peer_factory(SmtpPeer)
    # a crypt-only account: CRAM-MD5 cannot succeed, so 235 means PLAIN
    d = odmr(users=[f"tlsuser:{{SHA512-CRYPT}}{sha512_crypt('s3cret pw')}"
                    f":a.example,c.example"], tls=True)
    b1 = body("tls", 5000)
    q1 = d.submit("alice@sender.example", ["u1@a.example", "u2@a.example",
                                           "w@held.example"], b1)
    q2 = d.submit("bob@sender.example", ["v@c.example"], body("c"))
    stored = d.stored_bodies()
    held = rows(d, "held.example")
    sf = secret_file(tmp_path, "tlsuser", "s3cret pw")

    r = run_etrn(d, "--odmr", "--user", "tlsuser", "--secret-file", sf,
                 "--starttls", "--deliver-to", f"127.0.0.1:{peer.port}",
                 "-p", str(d.odmr_port), "127.0.0.1", "a.example")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "ATRN: 250" in r.stdout, r.stdout
    (m,) = peer.wait_messages(1)
    assert m.mail_from == "alice@sender.example"
    assert sorted(m.rcpt_tos) == ["u1@a.example", "u2@a.example"]
    assert m.content == stored[q1] and stored[q1].endswith(b1)
    assert pending(d, "a.example") == []
    assert pending(d, "c.example") == ["v@c.example"]
    assert rows(d, "held.example") == held
    assert d.log_lines("event=starttls", "service=odmr")
    assert d.log_lines("event=auth", "user=tlsuser", "result=ok")

    # no domain given: every domain of the account (c.example is left)
    r = run_etrn(d, "--odmr", "--user", "tlsuser", "--secret-file", sf,
                 "--starttls", "--deliver-to", f"127.0.0.1:{peer.port}",
                 "-p", str(d.odmr_port), "127.0.0.1")
    assert r.returncode == 0, r.stdout + r.stderr
    m2 = peer.wait_messages(2)[1]
    assert (m2.mail_from, m2.rcpt_tos) == ("bob@sender.example",
                                           ["v@c.example"])
    assert m2.content == stored[q2]
    assert pending(d, "c.example") == []

    # nothing left: 453, exit 0
    r = run_etrn(d, "--odmr", "--user", "tlsuser", "--secret-file", sf,
                 "--starttls", "--deliver-to", f"127.0.0.1:{peer.port}",
                 "-p", str(d.odmr_port), "127.0.0.1", "a.example")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "ATRN: 453" in r.stdout, r.stdout
    # without --starttls the crypt-only account cannot authenticate
    r = run_etrn(d, "--odmr", "--user", "tlsuser", "--secret-file", sf,
                 "--deliver-to", f"127.0.0.1:{peer.port}",
                 "-p", str(d.odmr_port), "127.0.0.1", "a.example")
    assert r.returncode == 2 and "535" in r.stderr, r.stdout + r.stderr
    assert len(peer.messages) == 2


@pytest.mark.parametrize("scheme", ["CRAM-MD5", "PLAIN"])
def test_etrn_odmr_cram_md5_in_clear(odmr, peer_factory, tmp_path, scheme):
    peer = peer_factory(SmtpPeer)
    secret = (f"{{CRAM-MD5}}{DOVECOT_CRAM_CTX}" if scheme == "CRAM-MD5"
              else f"{{PLAIN}}{DOVECOT_CRAM_PASSWORD}")
    d = odmr(users=[f"cust:{secret}:a.example", "bob:{PLAIN}x:b.example"],
             tls=True)
    b1 = body("cram", 3000)
    q1 = d.submit("alice@sender.example", ["u1@a.example", "x@b.example"], b1)
    q2 = d.submit("carol@sender.example", ["u2@a.example"], body("c2"))
    stored = d.stored_bodies()
    sf = secret_file(tmp_path, "cust", DOVECOT_CRAM_PASSWORD)

    r = run_etrn(d, "--odmr", "--user", "cust", "--secret-file", sf,
                 "--deliver-to", f"127.0.0.1:{peer.port}",
                 "-p", str(d.odmr_port), "127.0.0.1", "a.example")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "ATRN: 250" in r.stdout, r.stdout
    msgs = peer.wait_messages(2)
    got = sorted((m.mail_from, tuple(m.rcpt_tos), m.content) for m in msgs)
    assert got == [("alice@sender.example", ("u1@a.example",), stored[q1]),
                   ("carol@sender.example", ("u2@a.example",), stored[q2])]
    assert pending(d, "a.example") == []
    assert pending(d, "b.example") == ["x@b.example"]
    assert not d.log_lines("event=starttls")
    assert d.log_lines("event=auth", "user=cust", "result=ok")
    # the site's MTA refuses the message at the dot: etrnd is told exactly
    # that, so the mail stays queued with the site's own reply
    q3 = d.submit("alice@sender.example", ["u3@a.example"], b1)
    peer.after_dot = "451 4.3.0 local disk full"
    r = run_etrn(d, "--odmr", "--user", "cust", "--secret-file", sf,
                 "--deliver-to", f"127.0.0.1:{peer.port}",
                 "-p", str(d.odmr_port), "127.0.0.1", "a.example")
    assert "ATRN: 250" in r.stdout, r.stdout + r.stderr
    assert len(peer.dots) == 3 and len(peer.messages) == 2
    assert pending(d, "a.example") == ["u3@a.example"]
    u3 = rcpt_state(d, q3, "u3@a.example")
    assert "451 4.3.0 local disk full" in u3["last_reply"], u3
    # the site's MTA is down: 421 to the provider, exit 1, still queued
    peer.after_dot = "250 2.0.0 OK queued"
    r = run_etrn(d, "--odmr", "--user", "cust", "--secret-file", sf,
                 "--deliver-to", f"127.0.0.1:{free_port()}",
                 "-p", str(d.odmr_port), "127.0.0.1", "a.example")
    assert r.returncode == 1, r.stdout + r.stderr
    assert pending(d, "a.example") == ["u3@a.example"]
    # a wrong secret: refused, exit 2 (5xx), nothing more delivered
    bad = secret_file(tmp_path, "bad", "not the password")
    r = run_etrn(d, "--odmr", "--user", "cust", "--secret-file", bad,
                 "--deliver-to", f"127.0.0.1:{peer.port}",
                 "-p", str(d.odmr_port), "127.0.0.1", "a.example")
    assert r.returncode == 2 and "535" in r.stderr, r.stdout + r.stderr
    assert pending(d, "a.example") == ["u3@a.example"]
    assert len(peer.messages) == 2


# --- 3. SECURITY.md ---------------------------------------------------------

def test_tls_sessions_that_quit_give_their_slot_back(odmr):
    """ODMR sessions that end with QUIT under TLS are freed at once: with
    a cap of 2 per client address, 6 in a row are all served, and the
    daemon stops promptly (a session left allocated would hold its slot
    until the idle timeout)."""
    d = odmr(tls=True, extra="max_connections_per_client = 2\n")
    for _ in range(6):
        c = customer(d, src="127.0.0.8")
        c.ehlo()
        c.starttls()
        c.ehlo()
        code, lines = c.cmd("QUIT")
        assert code == 221, lines
        c.sock.close()
        time.sleep(0.2)       # a moment to end it (idle_timeout is 300 s)
    t0 = time.time()
    assert d.stop() == []
    assert time.time() - t0 < 10


def test_e7_atrn_before_auth_530(odmr):
    d = odmr()
    d.submit("s@sender.example", ["u@a.example"])
    before = rows(d)
    c = customer(d)
    code, lines = c.cmd("ATRN a.example")
    assert code == 530 and lines[0].startswith("530 5.7.0"), lines
    c.ehlo()
    for atrn in ("ATRN a.example", "ATRN"):
        code, lines = c.cmd(atrn)
        assert code == 530 and lines[0].startswith("530 5.7.0"), lines
    # what is served before AUTH, and what is not
    for cmd in ("NOOP", "RSET", "HELO customer.test"):
        assert c.cmd(cmd)[0] == 250, cmd
    for cmd in ("MAIL FROM:<s@sender.example>", "RCPT TO:<u@a.example>",
                "DATA", "ETRN a.example", "TURN"):
        code, lines = c.cmd(cmd)
        assert code == 502, (cmd, lines)
    c.ehlo()
    # a failed AUTH does not open it either
    code, lines = c.auth_cram("site", "wrong")
    assert code == 535, lines
    code, lines = c.cmd("ATRN a.example")
    assert code == 530, lines
    assert c.cmd("QUIT")[0] == 221
    c.close()
    assert rows(d) == before


def test_e8_cross_domain_atrn_450(odmr):
    d = odmr()
    qa = d.submit("s@sender.example", ["u@a.example"], body("for a"))
    qb = d.submit("s@sender.example", ["x@b.example", "y@b.example"],
                  body("for b"))
    stored = d.stored_bodies()
    before = rows(d)
    c = customer(d, "site", "secret-a")
    for arg in ("b.example", "a.example,b.example", "b.example,a.example",
                "B.EXAMPLE", "sub.a.example"):
        code, lines = c.cmd(f"ATRN {arg}")
        assert code == 450 and lines[0].startswith("450"), (arg, lines)
        assert rows(d) == before, arg
    # the session goes on: the account's own domains (no list) are served,
    # and nothing of b.example comes with them
    code, lines = c.atrn()
    assert code == 250, lines
    assert c.serve() == "quit"
    assert [m.mail_from for m in c.messages] == ["s@sender.example"]
    assert c.delivered() == [("u@a.example", stored[qa])]
    assert all(a.endswith("@a.example") for m in c.messages
               for a, _ in m.rcpts)
    assert pending(d, "a.example") == []
    assert pending(d, "b.example") == ["x@b.example", "y@b.example"]
    assert d.show_json(qa) is None and d.show_json(qb) is not None


def test_e9_nothing_queued_453_and_concurrent_451(odmr):
    d = odmr()
    # nothing for bob's b.example: 453, and the session stays usable
    c = customer(d, "bob", "secret-b")
    code, lines = c.atrn(["b.example"])
    assert code == 453 and "no mail" in lines[0].lower(), lines
    code, lines = c.atrn()
    assert code == 453, lines
    assert c.cmd("QUIT")[0] == 221
    c.close()

    q1 = d.submit("s@sender.example", ["u1@a.example", "u2@a.example"])
    q2 = d.submit("s@sender.example", ["u3@a.example"])
    d.submit("s@sender.example", ["v@c.example"])
    stored = d.stored_bodies()
    first = customer(d, "site", "secret-a")
    code, lines = first.atrn(["a.example"])
    assert code == 250, lines
    # the first customer has not greeted yet: the reversed session holds
    # a.example, so a second session is told 451 and gets nothing
    second = customer(d, "site", "secret-a", src="127.0.0.2")
    for doms in (["a.example"], ["c.example", "a.example"], None):
        code, lines = second.atrn(doms)
        assert code == 451 and lines[0].startswith("451"), (doms, lines)
    assert first.silent(0.3)    # etrnd waits for the first one's 220
    during = []

    def hook(where, msg):
        # in the middle of the first reversed session's first message
        if where == "dot" and not during:
            during.append(second.atrn(["a.example"]))

    assert first.serve(hook=hook) == "quit"
    assert during and during[0][0] == 451, during
    got = sorted(first.delivered())
    assert got == [("u1@a.example", stored[q1]), ("u2@a.example", stored[q1]),
                   ("u3@a.example", stored[q2])]
    assert pending(d, "a.example") == []
    # released: the second session may ATRN again; a.example is empty now
    code, lines = second.atrn(["a.example"])
    assert code == 453, lines
    code, lines = second.atrn(["c.example"])
    assert code == 250, lines
    assert second.serve() == "quit"
    assert [a for a, _ in second.delivered()] == ["v@c.example"]
    assert d.queued_json() == []


def test_e10_bytes_pipelined_after_atrn_are_discarded(odmr):
    d = odmr()
    q = d.submit("s@sender.example", ["u1@a.example", "u2@a.example"])
    stored = d.stored_bodies()[q]
    c = customer(d, "site", "secret-a")
    # fake "replies" in the same segment as ATRN: if kept, they would be
    # taken for our greeting and for the answer to etrnd's EHLO
    fake = (b"220 fake greeting\r\n250 fake ehlo\r\n250 2.1.0 fake\r\n"
            b"250 2.1.5 fake\r\n354 fake\r\n250 2.0.0 fake\r\n")
    code, lines = c.atrn(["a.example"], extra=fake)
    assert code == 250, lines
    assert c.buf == b"", c.buf
    # etrnd waits for the real greeting: nothing is said before it
    assert c.silent(1.5), c.buf
    assert rows(d, "a.example")[0][2] == "held"
    result = c.serve(greeting="220 real.customer ESMTP")
    # exactly one dialogue, driven by our real replies only
    assert (result, c.commands) == ("quit", [
        "EHLO relay.test", "MAIL FROM:<s@sender.example>",
        "RCPT TO:<u1@a.example>", "RCPT TO:<u2@a.example>", "DATA",
        "QUIT"]), (result, c.commands)
    assert len(c.messages) == 1 and sorted(c.delivered()) == [
        ("u1@a.example", stored), ("u2@a.example", stored)]
    assert pending(d, "a.example") == []


@pytest.mark.parametrize("pipelining", [False, True])
def test_e11_mixed_rcpt_replies(odmr, pipelining):
    d = odmr()
    q = d.submit("s@sender.example", ["r1@a.example", "r2@a.example"])
    stored = d.stored_bodies()[q]
    c = customer(d, "site", "secret-a")
    assert c.atrn(["a.example"])[0] == 250
    res = c.serve(ehlo=["PIPELINING"] if pipelining else [], probe=True,
                  rcpt=lambda a: ("450 4.2.1 r2 is busy, later" if
                                  a == "r2@a.example" else "250 2.1.5 OK"))
    assert res == "quit", c.commands
    assert len(c.messages) == 1, c.messages     # offered once, not again
    # RCPT and DATA sent ahead of the MAIL reply only when offered
    assert c.ahead == [pipelining], c.commands
    assert c.delivered() == [("r1@a.example", stored)]
    assert pending(d, "a.example") == ["r2@a.example"]
    r2 = rcpt_state(d, q, "r2@a.example")
    assert r2["state"] == "held", r2
    assert "450 4.2.1 r2 is busy, later" in r2["last_reply"], r2
    r1 = rcpt_state(d, q, "r1@a.example")
    assert r1["state"] == "delivered" and "250" in r1["last_reply"], r1
    # the next ATRN brings r2 alone, and the message is done
    c = customer(d, "site", "secret-a")
    assert c.atrn(["a.example"])[0] == 250
    assert c.serve() == "quit"
    assert c.delivered() == [("r2@a.example", stored)]
    assert d.show_json(q) is None and d.queued_json() == []


def test_e11_550_fails_with_dsn_unless_notify_never(odmr):
    d = odmr()
    q1 = d.submit("s1@held.example", ["r1@a.example"], body("dsn"))
    q2 = d.submit("s2@held.example", ["r2@a.example"], body("never"),
                  rcpt_params={"r2@a.example": ["NOTIFY=NEVER"]})
    q3 = d.submit("s3@held.example", ["ok@a.example", "r3@a.example"],
                  body("mixed"))
    c = customer(d, "site", "secret-a")
    assert c.atrn(["a.example"])[0] == 250
    assert c.serve(rcpt=lambda a: "250 2.1.5 OK" if a.startswith("ok@")
                   else "550 5.1.1 no such user here") == "quit"
    assert [a for a, _ in c.delivered()] == ["ok@a.example"]
    assert pending(d, "a.example") == []
    assert d.show_json(q1) is None and d.show_json(q2) is None
    assert d.show_json(q3) is None
    # DSNs from the null sender to s1 and s3, none to s2 (NOTIFY=NEVER)
    dsns = [r for r in d.queued_json() if r["sender"] == ""]
    assert sorted(r["recipient"] for r in dsns) == ["s1@held.example",
                                                    "s3@held.example"], \
        d.queued_json()
    assert all(r["domain"] == "held.example" for r in dsns)
    bodies = d.stored_bodies()
    for r in dsns:
        text = bodies[r["qid"]]
        assert b"550 5.1.1 no such user here" in text, text[:2000]
    assert b"r3@a.example" in bodies[[r["qid"] for r in dsns
                                      if r["recipient"] == "s3@held.example"][0]]


def test_e11_drop_mid_data_keeps_everything(odmr):
    d = odmr()
    q1 = d.submit("s@sender.example", ["r1@a.example", "r2@a.example"],
                  body("big", 1_000_000))
    q2 = d.submit("s@sender.example", ["r3@a.example"], body("small"))
    stored = d.stored_bodies()
    before = rows(d)
    c = customer(d, "site", "secret-a")
    assert c.atrn(["a.example"])[0] == 250
    assert c.serve(mid_data=4096) == "closed"
    assert len(c.messages) == 1 and c.messages[0].data is None
    assert wait_for(lambda: d.log_lines("event=atrn_end"), 10), d.read_log()
    # nothing delivered, nothing failed: everything is still queued
    after = rows(d)
    assert [(q, r, s) for q, r, s, _ in after] == \
        [(q, r, s) for q, r, s, _ in before], (before, after)
    # and the domain is free again: the next ATRN gets it all
    c = customer(d, "site", "secret-a")
    assert c.atrn(["a.example"])[0] == 250
    assert c.serve() == "quit"
    assert sorted(c.delivered()) == [("r1@a.example", stored[q1]),
                                     ("r2@a.example", stored[q1]),
                                     ("r3@a.example", stored[q2])]
    assert d.queued_json() == []


def test_e11_customer_refusing_to_greet_keeps_everything(odmr):
    d = odmr()
    d.submit("s@sender.example", ["r1@a.example", "r2@a.example"])
    before = rows(d)
    c = customer(d, "site", "secret-a")
    assert c.atrn(["a.example"])[0] == 250
    res = c.serve(greeting="554 5.3.2 not accepting mail now")
    assert res in ("quit", "eof"), res
    assert not any(x.upper().startswith(("MAIL", "RCPT", "DATA"))
                   for x in c.commands), c.commands
    assert wait_for(lambda: d.log_lines("event=atrn_end"), 10), d.read_log()
    assert [x[:3] for x in rows(d)] == [x[:3] for x in before]
    c = customer(d, "site", "secret-a")
    assert c.atrn(["a.example"])[0] == 250
    assert c.serve() == "quit"
    assert sorted(a for a, _ in c.delivered()) == ["r1@a.example",
                                                    "r2@a.example"]


def test_e11_no_reply_after_dot_keeps_everything(odmr):
    d = odmr()
    q1 = d.submit("s@sender.example", ["r1@a.example", "r2@a.example"])
    q2 = d.submit("s@sender.example", ["r3@a.example"])
    stored = d.stored_bodies()
    before = rows(d)
    c = customer(d, "site", "secret-a")
    assert c.atrn(["a.example"])[0] == 250
    t = time.monotonic()
    assert c.serve(dot=lambda m: ("hang", 2.0)) == "closed"
    assert time.monotonic() - t < 10
    assert len(c.messages) == 1 and c.messages[0].data is not None
    assert wait_for(lambda: d.log_lines("event=atrn_end"), 10), d.read_log()
    after = rows(d)
    assert [(q, r, s) for q, r, s, _ in after] == \
        [(q, r, s) for q, r, s, _ in before], (before, after)
    c = customer(d, "site", "secret-a")
    assert c.atrn(["a.example"])[0] == 250
    assert c.serve() == "quit"
    assert sorted(c.delivered()) == [("r1@a.example", stored[q1]),
                                     ("r2@a.example", stored[q1]),
                                     ("r3@a.example", stored[q2])]
    assert d.queued_json() == []


def _fail_until_closed(d, src, user, out, limit=5):
    """AUTH CRAM-MD5 with a wrong secret until 421 or 454: every reply."""
    c = customer(d, src=src)
    c.ehlo()
    try:
        for _ in range(limit):
            code, lines = c.cmd("AUTH CRAM-MD5")
            if code != 334:
                out.append((code, lines[0], c.closed()))
                return
            (code, lines), dt = c.timed_cmd(
                "Zm9vIGJhcg==" if user is None else
                _wrong(user, lines[0][4:]), timeout=20)
            out.append((code, lines[0], dt))
            if code != 535:
                return
    finally:
        c.close()


def _wrong(user, chal):
    return cram_digest(user, "wrong password", chal)


def test_e12_auth_failures_slow_down_and_lock(odmr):
    d = odmr()
    # per connection: 535 5.7.8 after 1 s, then 2 s; the third is 421
    c = customer(d, src="127.0.0.2")
    c.ehlo()
    times = []
    for user in ("site", "nosuchuser"):
        code, lines = c.cmd("AUTH CRAM-MD5")
        assert code == 334, lines
        (code, lines), dt = c.timed_cmd(_wrong(user, lines[0][4:]))
        assert code == 535 and lines[0].startswith("535 5.7.8"), lines
        times.append(dt)
    assert 0.9 <= times[0] < 3 and 1.9 <= times[1] < 5, times
    assert times[1] - times[0] >= 0.7, times      # growing
    code, lines = c.cmd("AUTH CRAM-MD5")
    code, lines = c.cmd(_wrong("site", lines[0][4:]))
    assert code == 421 and lines[0].startswith("421 4.7.0"), lines
    assert c.closed()
    c.close()

    # per address: past 10 failures in the window, AUTH itself gets 454
    # and the connection is closed (parallel sessions keep this short)
    out = []
    ts = [threading.Thread(target=_fail_until_closed,
                           args=(d, "127.0.0.2", None, out))
          for _ in range(3)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    fails = sum(1 for code, _, _ in out if code in (535, 421)) + 3
    assert fails >= 10, out
    # past three failures from the address, each refusal waits 4 s
    slow = [dt for code, _, dt in out if code == 535]
    assert slow and all(3.5 <= dt < 8 for dt in slow), out
    c = customer(d, src="127.0.0.2")
    c.ehlo()
    code, lines = c.cmd("AUTH CRAM-MD5")
    assert code == 454 and lines[0].startswith("454 4.7.0"), lines
    assert c.closed()
    c.close()
    # ...for that address only
    c = customer(d, "site", "secret-a", src="127.0.0.3")
    c.close()

    # per account: 20 failures from addresses below their own limit lock
    # bob out; his right password then gets 454, another account's works
    out = []
    ts = [threading.Thread(target=_fail_until_closed,
                           args=(d, f"127.0.0.{10 + i}", "bob", out))
          for i in range(7)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    assert sum(1 for code, _, _ in out if code in (535, 421)) >= 20, out
    c = customer(d, src="127.0.0.30")
    c.ehlo()
    code, lines = c.auth_cram("bob", "secret-b")
    assert code == 454 and lines[0].startswith("454 4.7.0"), lines
    assert c.cmd("ATRN")[0] == 530
    c.close()
    c = customer(d, "site", "secret-a", src="127.0.0.30")
    c.close()
    assert not any("secret-b" in ln or "wrong password" in ln
                   for ln in d.read_log().splitlines())


def test_e13_plain_without_tls_538_not_checked_not_logged(odmr):
    d = odmr(tls=True)
    c = customer(d)
    c.ehlo()
    good = plain_b64("site", "secret-a")
    for i in range(4):     # never counted: no 421 after three
        t = time.monotonic()
        code, lines = c.cmd("AUTH PLAIN " + good)
        assert code == 538 and lines[0].startswith("538 5.7.11"), lines
        assert time.monotonic() - t < 0.9
    for cmd in ("AUTH PLAIN", "AUTH LOGIN",
                "AUTH LOGIN " + "c2l0ZQ==", "AUTH plain " + good):
        code, lines = c.cmd(cmd)
        assert code == 538 and lines[0].startswith("538 5.7.11"), (cmd, lines)
    # not authenticated by it
    assert c.cmd("ATRN a.example")[0] == 530
    assert c.cmd("QUIT")[0] == 221
    c.close()
    log = d.read_log()
    assert "secret-a" not in log and good not in log
    assert "event=auth" not in log, log


def test_e14_auth_edge_cases(odmr):
    d = odmr(tls=True)
    c = customer(d)
    c.ehlo()
    code, lines = c.cmd("AUTH FOO")
    assert code == 504 and lines[0].startswith("504 5.5.4"), lines
    code, lines = c.cmd("AUTH EXTERNAL =")
    assert code == 504, lines
    # CRAM-MD5 in clear: a cancel and a bad response are 501
    code, lines = c.cmd("AUTH CRAM-MD5")
    assert code == 334
    code, lines = c.cmd("*")
    assert code == 501, lines
    code, lines = c.cmd("AUTH CRAM-MD5")
    assert code == 334
    code, lines = c.cmd("not*base64!")
    assert code == 501, lines
    code, lines = c.cmd("AUTH CRAM-MD5 c2l0ZQ==")
    assert code == 501, lines
    c.starttls()
    lines = c.ehlo()
    assert "250-AUTH PLAIN LOGIN CRAM-MD5" in lines, lines
    assert not any("EXTERNAL" in ln for ln in lines)
    for cmd in ("AUTH PLAIN", "AUTH LOGIN"):
        code, lines = c.cmd(cmd)
        assert code == 334, lines
        code, lines = c.cmd("*")
        assert code == 501 and lines[0].startswith("501"), lines
    code, lines = c.cmd("AUTH PLAIN")
    assert code == 334
    code, lines = c.cmd("%%%")
    assert code == 501 and lines[0].startswith("501 5.5.2"), lines
    # bob acting as site: site's valid password does not let him
    code, lines = c.auth_plain("site", "secret-a", authzid="bob")
    assert code == 535 and lines[0].startswith("535 5.7.8"), lines
    code, lines = c.cmd("AUTH PLAIN =")
    assert code == 535, lines
    # then the real thing, and no second AUTH
    code, lines = c.auth_plain("site", "secret-a", authzid="site")
    assert code == 235, lines
    for cmd in ("AUTH PLAIN " + plain_b64("bob", "secret-b"),
                "AUTH CRAM-MD5", "AUTH FOO"):
        code, lines = c.cmd(cmd)
        assert code == 503 and lines[0].startswith("503 5.5.1"), (cmd, lines)
    # still site's session: bob's domain is not collectable
    assert c.cmd("ATRN b.example")[0] == 450
    assert c.cmd("QUIT")[0] == 221
    c.close()
    log = d.read_log()
    assert "secret-a" not in log and "secret-b" not in log


def test_t4_ehlo_advertises_no_password_mechanism_in_clear(odmr):
    d = odmr(tls=True)
    c = customer(d)
    lines = c.ehlo()
    auth = [ln for ln in lines if ln[4:].upper().startswith("AUTH")]
    assert [ln[4:] for ln in auth] == ["AUTH CRAM-MD5"], lines
    assert any(ln[4:] == "ATRN" for ln in lines), lines
    assert any(ln[4:] == "STARTTLS" for ln in lines), lines
    c.starttls()
    lines = c.ehlo()
    auth = [ln[4:] for ln in lines if ln[4:].upper().startswith("AUTH")]
    assert auth == ["AUTH PLAIN LOGIN CRAM-MD5"], lines
    assert not any(ln[4:] == "STARTTLS" for ln in lines), lines
    c.close()
    # commands pipelined after STARTTLS in clear are not run under TLS
    c = customer(d)
    c.ehlo()
    c.send("STARTTLS\r\nEHLO injected.test\r\n")
    code, lines = c.reply()
    assert code == 220, lines
    c.buf = b""
    c.sock = tls_client(c.sock)
    code, lines = c.cmd("NOOP")
    assert (code, lines) == (250, ["250 2.0.0 Ok"]), lines
    # and the session is fresh: AUTH needs EHLO again
    assert c.cmd("AUTH CRAM-MD5")[0] == 503
    c.close()
    # port 25: no AUTH at all, in clear or under TLS
    s = d.session()
    code, lines = s.cmd("EHLO site.test")
    assert not any("AUTH" in ln.upper() for ln in lines), lines
    s.close()


def test_r9_odmr_credentials_confer_no_relay_rights(odmr):
    d = odmr(tls=True)
    c = customer(d, "site", "secret-a")
    for cmd in ("MAIL FROM:<site@a.example>", "RCPT TO:<x@outside.example>",
                "DATA", "ETRN a.example", "VRFY site"):
        code, lines = c.cmd(cmd)
        assert code == 502, (cmd, lines)
    c.close()
    # port 25, with and without TLS: AUTH is not a command there, and the
    # outside domain is refused as relaying
    for tls in (False, True):
        s = d.session()
        if tls:
            code, _ = s.cmd("STARTTLS")
            assert code == 220
            s.sock = tls_client(s.sock)
            code, lines = s.cmd("EHLO site.test")
            assert code == 250, lines
            # T4: no AUTH on port 25 under TLS either
            assert not any("AUTH" in ln.upper() for ln in lines), lines
        code, lines = s.cmd("AUTH PLAIN " + plain_b64("site", "secret-a"))
        assert code == 502, lines
        assert s.cmd("MAIL FROM:<site@a.example>")[0] == 250
        code, lines = s.cmd("RCPT TO:<x@outside.example>")
        assert code == 550 and lines[0].startswith("550 5.7.1"), lines
        s.close()
    assert d.queued_json() == []


# --- 4. D5: kill -9 during the reversed session -----------------------------

def restart(d):
    """Start etrnd again after kill9().  The dead daemon's control socket
    is still on disk (etrnd replaces it at start): removed first, so that
    start() waits for the new one."""
    try:
        os.unlink(d.control)
    except FileNotFoundError:
        pass
    d.start()
    assert wait_for(lambda: _can_connect(d.odmr_port), 10)


@pytest.mark.parametrize("point", ["data1", "dot1", "replied1", "replied2",
                                   "after"])
def test_d5_kill9_during_reversed_session(odmr, point):
    d = odmr()
    q1 = d.submit("s@sender.example", ["r1@a.example", "r2@a.example"],
                  body("m1", 3000))
    q2 = d.submit("s@sender.example", ["r3@a.example"], body("m2"))
    stored = d.stored_bodies()
    everyone = ["r1@a.example", "r2@a.example", "r3@a.example"]
    want = {"r1@a.example": stored[q1], "r2@a.example": stored[q1],
            "r3@a.example": stored[q2]}

    def hook(where, msg):
        n = len(c.messages)
        if (point == "data1" and where == "data" and n == 1) or \
           (point == "dot1" and where == "dot" and n == 1) or \
           (point == "replied1" and where == "replied" and n == 1) or \
           (point == "replied2" and where == "replied" and n == 2):
            d.kill9()
            return "close"
        return None

    c = customer(d, "site", "secret-a")
    assert c.atrn(["a.example"])[0] == 250
    res = c.serve(hook=hook, rcpt=lambda a: "450 4.2.1 later"
                  if a == "r2@a.example" else "250 2.1.5 OK")
    if point == "after":
        assert res == "quit", c.commands
        # recorded: r1 and r3 are gone for good, then the crash
        assert wait_for(lambda: pending(d, "a.example") == ["r2@a.example"],
                        10), d.queued_json()
        d.kill9()
    else:
        assert res == "closed", (res, c.commands)
    first = c.delivered()
    assert all(data == want[a] for a, data in first)
    assert "r2@a.example" not in [a for a, _ in first]
    restart(d)

    left = pending(d, "a.example")
    assert "r2@a.example" in left, left            # never marked delivered
    got1 = {a for a, _ in first}
    assert set(everyone) <= got1 | set(left), (first, left)   # nothing lost
    if point in ("data1", "dot1"):
        # no 250 to the dot yet: r1 cannot have been marked
        assert left == everyone, left
    if point == "after":
        assert left == ["r2@a.example"], left

    c = customer(d, "site", "secret-a")
    assert c.atrn(["a.example"])[0] == 250
    assert c.serve() == "quit"
    second = c.delivered()
    assert all(data == want[a] for a, data in second)
    assert sorted(a for a, _ in second) == left
    assert pending(d, "a.example") == []
    assert {a for a, _ in first + second} == set(everyone)
    assert d.queued_json() == []
    if point == "after":
        assert sorted(a for a, _ in first + second) == everyone  # no dup


def submit_many(d, n):
    """n messages in one SMTP session: u<i>@a.example gets body n<i>."""
    import smtplib
    with smtplib.SMTP("127.0.0.1", d.port, timeout=30) as s:
        s.ehlo("client.test")
        for i in range(n):
            s.sendmail("s@sender.example", [f"u{i}@a.example"],
                       body(f"n{i}"))
    return [f"u{i}@a.example" for i in range(n)]


def test_d5_kill9_in_the_second_batch_of_100(odmr):
    """Outcomes are recorded per batch of up to 100 messages: a crash in
    the second batch keeps what the first recorded, redelivers at most one
    batch, and offers no message twice in one session."""
    d = odmr()
    n = 205
    everyone = submit_many(d, n)
    held = {f"u{i}@a.example" for i in range(0, n, 10)}

    def check(msgs):
        for m in msgs:
            (a, _), = m.rcpts
            if m.data is not None:
                i = int(a[1:].split("@")[0])
                assert m.data.endswith(body(f"n{i}")), (a, m.data[-200:])
        addrs = [m.rcpts[0][0] for m in msgs]
        assert len(addrs) == len(set(addrs)), "a message offered twice"

    def hook(where, msg):
        if where == "replied" and len(c.messages) == 150:
            d.kill9()
            return "close"
        return None

    c = customer(d, "site", "secret-a")
    assert c.atrn(["a.example"])[0] == 250
    res = c.serve(hook=hook, max_messages=n,
                  rcpt=lambda a: "450 4.2.1 later" if a in held
                  else "250 2.1.5 OK")
    assert res == "closed", (res, c.commands[-5:])
    check(c.messages)
    got1 = {a for a, _ in c.delivered()}
    assert len(got1) == 150 - 15 and not got1 & held
    restart(d)
    left = set(pending(d, "a.example"))
    assert held <= left
    assert set(everyone) <= got1 | left                      # nothing lost
    assert len(got1 & left) <= 100, len(got1 & left)         # one batch
    # the first batch was recorded before the second was fetched
    first_batch = {f"u{i}@a.example" for i in range(100)}
    assert not (first_batch - held) & left, sorted(left)[:10]

    c = customer(d, "site", "secret-a")
    assert c.atrn(["a.example"])[0] == 250
    assert c.serve(max_messages=n) == "quit"
    check(c.messages)
    got2 = [a for a, _ in c.delivered()]
    assert sorted(got2) == sorted(left)
    assert d.queued_json() == []


# --- 5. users_file checks at start ------------------------------------------

def refused(tmp_path, users_text, mode):
    port = free_port()
    path = str(tmp_path / "users")
    with open(path, "w") as f:
        f.write(users_text)
    os.chmod(path, mode)
    d = Etrnd(BUILD, tmp_path / "d", extra=f"odmr_listen = 127.0.0.1:{port}\n"
              f"users_file = {path}\n", domains=DOMAINS)
    p = subprocess.Popen([d.etrnd_bin, "-c", d.conf], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        out, err = p.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        pytest.fail(f"etrnd started with a bad users_file ({oct(mode)}): "
                    + err)
    assert p.returncode != 0, err
    assert "Sanitizer" not in err and "runtime error" not in err, err
    assert not _can_connect(port)
    return path, err


def test_users_file_readable_by_others_refused(tmp_path):
    path, err = refused(tmp_path, "site:{PLAIN}secret-a:a.example\n", 0o644)
    assert path in err, err
    assert "0644" in err and re.search(r"group or others", err), err
    assert "secret-a" not in err


def test_users_file_syntax_error_refused_with_line(tmp_path):
    path, err = refused(tmp_path, "# accounts\n"
                        "site:{PLAIN}secret-a:a.example\n"
                        "bob:{NOSUCH}secret-b:b.example\n", 0o600)
    assert f"{path}:3:" in err and "NOSUCH" in err, err
    assert "secret-b" not in err and "secret-a" not in err, err


@pytest.mark.parametrize("request_bytes", [
    b"GET / HTTP/1.1\r\nHost: relay.test\r\n\r\n",
    b"POST /x HTTP/1.1\r\nContent-Length: 20\r\n\r\nAUTH PLAIN AGFhAHB3\r\n",
    b"CONNECT relay.test:443 HTTP/1.1\r\n\r\n",
])
def test_p12_cross_protocol_on_the_odmr_port(odmr, request_bytes):
    """SECURITY.md P12 on port 366: an HTTP request line gets 554 5.5.0
    and the connection is closed; nothing after it (here an AUTH inside a
    POST body) is run, and the listener goes on serving customers."""
    d = odmr()
    c = customer(d)
    c.send(request_bytes)
    code, lines = c.reply()
    assert code == 554 and lines[0].startswith("554 5.5.0"), (code, lines)
    c.sock.settimeout(5)
    rest = c.buf
    while True:
        chunk = c.sock.recv(4096)
        if not chunk:
            break
        rest += chunk
    assert rest == b"", rest          # closed, nothing else answered
    assert "event=auth" not in d.read_log()
    c2 = customer(d)
    assert c2.cmd("EHLO customer.test")[0] == 250
