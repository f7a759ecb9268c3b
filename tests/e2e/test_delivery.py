"""The delivery engine end to end: static routes and MX routes (NSD serving
the zone "test."), per-phase temporary failures, per-recipient outcomes
with their DSNs, peers that hang, drop or reply with garbage, STARTTLS
policy, 8BITMIME, outbound transparency, and Postfix as the site's MTA.

SECURITY.md: S4, Y1, Y3, Y5, Y6, Y7, Y9, Y11, Y12, X7."""

import email
import email.policy
import time

import pytest

from etrnd_harness import free_port
from peers import RawPeer, SmtpPeer, make_cert, wait_for
from peers import nsd, peer_factory, postfix_factory  # noqa: F401 (fixtures)

BODY = b"Subject: delivery test\r\n\r\nline one\r\nline two\r\n"
SENDER = "sender@origin.test"


def origin(port):
    """The senders' own domain, served in retry mode and routed to a
    second peer, so that DSNs are delivered and can be read."""
    return (f"\n[domain origin.test]\nroute = [127.0.0.1]:{port}\n"
            f"mode = retry\n")


def static(name, port, mode="retry", extra=""):
    return (f"\n[domain {name}]\nroute = [127.0.0.1]:{port}\nmode = {mode}\n"
            f"{extra}\n")


def rcpts_of(d, qid):
    """address -> recipient entry of etrnctl --json show (None: gone)."""
    shown = d.show_json(qid)
    if shown is None:
        return None
    return {v["address"]: v for k, v in shown.items()
            if k.startswith("rcpt_")}


def wait_state(d, qid, addr, state, timeout=15):
    def ok():
        r = rcpts_of(d, qid)
        return r is not None and r[addr]["state"] == state and \
            r[addr]["attempts"] >= 1
    assert wait_for(ok, timeout), (addr, rcpts_of(d, qid), d.read_log()[-3000:])
    return rcpts_of(d, qid)[addr]


def wait_gone(d, qid, timeout=15):
    assert wait_for(lambda: d.show_json(qid) is None, timeout), \
        rcpts_of(d, qid)


def dsn_parts(raw):
    """(the whole DSN, [per-recipient field dicts], per-message fields)."""
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    assert msg.get_content_type() == "multipart/report", raw[:600]
    assert msg.get_param("report-type") == "delivery-status"
    status = [p for p in msg.get_payload()
              if p.get_content_type() == "message/delivery-status"]
    assert len(status) == 1, raw
    text = status[0].get_payload()
    if isinstance(text, list):      # the email package parses the groups
        groups = [dict(g.items()) for g in text]
    else:
        groups = [dict(ln.split(": ", 1) for ln in g.splitlines() if ln)
                  for g in text.strip().split("\n\n")]
    return msg, groups[1:], groups[0]


def no_dsn(d, sender_peer, settle=1.0):
    time.sleep(settle)
    assert d.log_lines("event=dsn") == [], d.log_lines("event=dsn")
    assert sender_peer.messages == [] and sender_peer.connections == 0


# --- routes -----------------------------------------------------------------

def test_static_route_delivers_what_was_stored(etrnd_factory, peer_factory):
    peer = peer_factory(SmtpPeer)
    d = etrnd_factory(domains=static("site.test", peer.port, mode="hold"))
    qid = d.submit(SENDER, ["a@site.test", "b@site.test"], BODY)
    (stored,) = d.stored_bodies().values()
    assert d.etrn("site.test")[0] == 253
    (m,) = peer.wait_messages(1)
    assert m.mail_from == SENDER
    assert m.rcpt_tos == ["a@site.test", "b@site.test"]  # one transaction
    assert m.content == stored
    wait_gone(d, qid)
    assert len(d.log_lines("event=delivered", f"qid={qid}")) == 2


def test_mx_route_uses_the_preferred_mx(etrnd_factory, peer_factory, nsd):
    """node1.test: MX 10 -> 127.0.0.1, MX 20 -> 127.0.0.2; both answer,
    the mail goes to the preferred one only."""
    best = peer_factory(SmtpPeer, host="127.0.0.1")
    backup = peer_factory(SmtpPeer, host="127.0.0.2", port=best.port)
    d = etrnd_factory(extra=f"mx_port = {best.port}\n", dns_server=nsd.server,
                      domains="\n[domain node1.test]\nroute = mx\n"
                              "mode = retry\n")
    qid = d.submit(SENDER, ["u@node1.test"], BODY)
    (m,) = best.wait_messages(1)
    assert m.rcpt_tos == ["u@node1.test"]
    wait_gone(d, qid)
    assert backup.connections == 0


def test_mx_falls_back_when_the_preferred_refuses(etrnd_factory,
                                                  peer_factory, nsd):
    """mx2.test: MX 10 mxa (127.0.0.2) refuses connections, MX 20 mxb
    (127.0.0.3) takes the mail."""
    second = peer_factory(SmtpPeer, host="127.0.0.3")
    d = etrnd_factory(extra=f"mx_port = {second.port}\n",
                      dns_server=nsd.server,
                      domains="\n[domain mx2.test]\nroute = mx\n"
                              "mode = retry\n")
    qid = d.submit(SENDER, ["u@mx2.test"], BODY)
    (m,) = second.wait_messages(1)
    assert m.rcpt_tos == ["u@mx2.test"]
    wait_gone(d, qid)
    tried = [ln.split("addr=")[1].split()[0]
             for ln in d.log_lines("event=connecting", "domain=mx2.test")]
    assert tried == ["127.0.0.2", "127.0.0.3"], tried


def test_a_only_domain_is_its_own_mx(etrnd_factory, peer_factory, nsd):
    peer = peer_factory(SmtpPeer, host="127.0.0.1")
    d = etrnd_factory(extra=f"mx_port = {peer.port}\n", dns_server=nsd.server,
                      domains="\n[domain aonly.test]\nroute = mx\n"
                              "mode = retry\n")
    qid = d.submit(SENDER, ["u@aonly.test"], BODY)
    (m,) = peer.wait_messages(1)
    assert m.rcpt_tos == ["u@aonly.test"]
    wait_gone(d, qid)


def test_null_mx_fails_with_a_dsn(etrnd_factory, peer_factory, nsd):
    home = peer_factory(SmtpPeer)
    d = etrnd_factory(extra=f"mx_port = {free_port()}\n",
                      dns_server=nsd.server,
                      domains="\n[domain nullmx.test]\nroute = mx\n"
                              "mode = retry\n" + origin(home.port))
    qid = d.submit(SENDER, ["u@nullmx.test"], BODY)
    (dsn,) = home.wait_messages(1)
    assert dsn.mail_from == "" and dsn.rcpt_tos == [SENDER]
    _, rcpts, per_msg = dsn_parts(dsn.content)
    assert per_msg["Reporting-MTA"] == "dns; relay.test"
    assert len(rcpts) == 1
    assert rcpts[0]["Final-Recipient"] == "rfc822;u@nullmx.test"
    assert rcpts[0]["Action"] == "failed"
    assert rcpts[0]["Status"] == "5.1.10"
    wait_gone(d, qid)
    assert d.log_lines("event=connecting", "domain=nullmx.test") == []


def test_mx_pointing_to_ourselves_is_deferred(etrnd_factory, peer_factory,
                                              nsd):
    """Y1: self.test's only MX is relay.test, our own name (and address,
    and mx_port is our own port): deferred, and no connection is made."""
    home = peer_factory(SmtpPeer)
    port = free_port()
    d = etrnd_factory(port=port, extra=f"mx_port = {port}\n",
                      dns_server=nsd.server,
                      domains="\n[domain self.test]\nroute = mx\n"
                              "mode = retry\n" + origin(home.port))
    qid = d.submit(SENDER, ["u@self.test"], BODY)
    r = wait_state(d, qid, "u@self.test", "deferred")
    assert r["attempts"] == 1
    assert r["last_reply"] == ("451 4.4.6 mail for self.test loops back to"
                               " myself"), r
    # every outbound connection is logged before it is made: none was
    assert d.log_lines("event=connecting") == []
    # and no session of ours ever reached MAIL but the submission
    assert len(d.log_lines("event=mail ")) == 1
    no_dsn(d, home, settle=0.5)


def test_dns_failures_defer_and_never_bounce(etrnd_factory, peer_factory,
                                             nsd):
    """Y3: SERVFAIL, a lame delegation, an MX host in a SERVFAIL zone, a
    CNAME loop: all deferred (4.4.3), no DSN."""
    home = peer_factory(SmtpPeer)
    doms = ["servfail.test", "lame.test", "mxservfail.test", "a.cname.test"]
    text = "".join(f"\n[domain {x}]\nroute = mx\nmode = retry\n"
                   for x in doms)
    d = etrnd_factory(extra=f"mx_port = {free_port()}\n",
                      dns_server=nsd.server, domains=text + origin(home.port))
    qid = d.submit(SENDER, [f"u@{x}" for x in doms], BODY)
    for x in doms:
        r = wait_state(d, qid, f"u@{x}", "deferred")
        assert r["attempts"] == 1
        assert r["last_reply"].startswith("451 4.4.3 DNS lookup failed"), \
            (x, r)
        assert r["next_try"] > time.time() + 200
    no_dsn(d, home)


# --- temporary failures at each phase (Y6) ----------------------------------

PHASES = {
    "greeting-421": dict(greeting="421 4.3.2 raw.test busy, go away"),
    "mail-451": dict(mail_reply="451 4.3.0 mail from later"),
    "rcpt-450": dict(rcpt_replies={"u@site.test": "450 4.2.0 mailbox busy"}),
    "data-451": dict(data_reply="451 4.3.0 no data now"),
    "dot-451": dict(after_dot="451 4.3.0 queue file write error"),
}


@pytest.mark.parametrize("phase", sorted(PHASES))
def test_temporary_failure_at_each_phase(etrnd_factory, peer_factory, phase):
    kw = PHASES[phase]
    peer = peer_factory(RawPeer, **kw)
    home = peer_factory(SmtpPeer)
    d = etrnd_factory(domains=static("site.test", peer.port)
                      + origin(home.port))
    t = time.time()
    qid = d.submit(SENDER, ["u@site.test"], BODY)
    r = wait_state(d, qid, "u@site.test", "deferred")
    assert r["attempts"] == 1
    expect = (list(kw.values())[0] if phase != "rcpt-450"
              else kw["rcpt_replies"]["u@site.test"])
    assert r["last_reply"] == expect, r
    # first retry after 5 minutes
    assert t + 290 <= r["next_try"] <= time.time() + 310, r
    assert peer.messages == []
    if phase == "greeting-421":
        assert "EHLO" not in peer.verbs()
    if phase == "rcpt-450":
        assert peer.dots == []          # nobody to send the body to
    no_dsn(d, home)


# --- permanent failures, per recipient (Y7) ---------------------------------

def test_partial_delivery_and_dsn_for_the_failed_only(etrnd_factory,
                                                      peer_factory):
    peer = peer_factory(SmtpPeer, pipelining=True, rcpt_replies={
        "bad@site.test": "550 5.1.1 no such user here",
        "quiet@site.test": "550 5.1.1 no such user either"})
    home = peer_factory(SmtpPeer)
    d = etrnd_factory(domains=static("site.test", peer.port)
                      + origin(home.port))
    qid = d.submit(SENDER, ["ok@site.test", "bad@site.test",
                            "quiet@site.test"], BODY,
                   mail_params=["ENVID=env+2Dforty+2Dtwo", "RET=HDRS"],
                   rcpt_params={
                       "bad@site.test": ["NOTIFY=FAILURE",
                                         "ORCPT=rfc822;Orig+2BBad@site.test"],
                       "quiet@site.test": ["NOTIFY=NEVER"]})
    (m,) = peer.wait_messages(1)
    assert m.rcpt_tos == ["ok@site.test"]
    (dsn,) = home.wait_messages(1)
    wait_gone(d, qid)
    assert dsn.mail_from == "" and dsn.rcpt_tos == [SENDER]
    msg, rcpts, per_msg = dsn_parts(dsn.content)
    assert per_msg["Original-Envelope-Id"] == "env-forty-two"
    assert [r["Final-Recipient"] for r in rcpts] == ["rfc822;bad@site.test"]
    assert rcpts[0]["Original-Recipient"] == "rfc822;Orig+Bad@site.test"
    assert rcpts[0]["Action"] == "failed"
    assert rcpts[0]["Status"] == "5.1.1"
    assert "550 5.1.1 no such user here" in rcpts[0]["Diagnostic-Code"]
    assert b"quiet@site.test" not in dsn.content    # NOTIFY=NEVER
    assert b"ok@site.test" not in dsn.content
    # RET=HDRS: the headers come back, not the body
    assert b"Subject: delivery test" in dsn.content
    assert b"line two" not in dsn.content
    verdicts = {ln.split("to=")[1].split()[0]: ln.split("event=")[1].split()[0]
                for ln in d.log_lines(f"qid={qid}", "to=")
                if "event=dsn" not in ln}
    assert verdicts == {"ok@site.test": "delivered",
                        "bad@site.test": "bounced",
                        "quiet@site.test": "bounced"}
    assert len(home.messages) == 1


def test_554_after_the_dot_fails_every_accepted_recipient(etrnd_factory,
                                                          peer_factory):
    peer = peer_factory(SmtpPeer, after_dot="554 5.6.0 content rejected")
    home = peer_factory(SmtpPeer)
    d = etrnd_factory(domains=static("site.test", peer.port)
                      + origin(home.port))
    qid = d.submit(SENDER, ["a@site.test", "b@site.test"], BODY)
    (dsn,) = home.wait_messages(1)
    _, rcpts, _ = dsn_parts(dsn.content)
    assert sorted(r["Final-Recipient"] for r in rcpts) == [
        "rfc822;a@site.test", "rfc822;b@site.test"]
    assert {r["Status"] for r in rcpts} == {"5.6.0"}
    wait_gone(d, qid)
    assert peer.messages == []


def test_no_dsn_for_a_null_sender(etrnd_factory, peer_factory):
    peer = peer_factory(SmtpPeer, rcpt_replies={
        "bad@site.test": "550 5.1.1 no such user"})
    home = peer_factory(SmtpPeer)
    d = etrnd_factory(domains=static("site.test", peer.port)
                      + origin(home.port))
    qid = d.submit("", ["bad@site.test"], BODY)
    wait_gone(d, qid)
    assert d.log_lines("event=bounced", f"qid={qid}", "to=bad@site.test")
    no_dsn(d, home)
    assert d.queued_json() == []


# --- peers that hang, drop, or talk garbage (Y5, Y9) ------------------------

def test_peer_hanging_after_the_dot(etrnd_factory, peer_factory):
    """The client waits for the reply to the dot (RFC 5321: 10 minutes);
    we do not wait that long: the peer is closed mid-wait.  Deferred,
    nothing lost, delivered on the next try."""
    peer = peer_factory(SmtpPeer, after_dot="hang")
    d = etrnd_factory(domains=static("site.test", peer.port))
    qid = d.submit(SENDER, ["u@site.test"], BODY)
    (stored,) = d.stored_bodies().values()
    assert wait_for(lambda: peer.dots, 10)
    time.sleep(2)       # no premature timeout: still waiting, still queued
    r = rcpts_of(d, qid)["u@site.test"]
    assert r["state"] == "queued" and r["attempts"] == 0, r
    peer.release()      # the peer dies without a reply
    r = wait_state(d, qid, "u@site.test", "deferred")
    assert r["attempts"] == 1 and r["last_reply"].startswith("451 4.4.2"), r
    assert peer.messages == []
    # the next try (ETRN: a flush takes deferred mail at once) delivers it
    peer.after_dot = "250 2.0.0 OK now"
    assert d.etrn("site.test")[0] == 253
    (m,) = peer.wait_messages(1)
    assert m.content == stored and m.rcpt_tos == ["u@site.test"]
    wait_gone(d, qid)


def test_peer_closing_after_the_dot(etrnd_factory, peer_factory):
    peer = peer_factory(RawPeer, after_dot="close")
    d = etrnd_factory(domains=static("site.test", peer.port))
    qid = d.submit(SENDER, ["u@site.test", "v@site.test"], BODY)
    (stored,) = d.stored_bodies().values()
    for a in ("u@site.test", "v@site.test"):
        r = wait_state(d, qid, a, "deferred")
        assert r["last_reply"].startswith("451 4.4.2"), r
    assert len(peer.dots) == 1
    peer.after_dot = "250 2.0.0 OK"
    assert d.etrn("site.test")[0] == 253
    msgs = peer.wait_messages(1)
    # a duplicate is acceptable, a loss is not
    assert msgs[0].content == stored
    assert msgs[0].rcpt_tos == ["u@site.test", "v@site.test"]
    wait_gone(d, qid)


@pytest.mark.parametrize("kind", ["endless", "longline", "mixed"])
def test_hostile_multiline_reply(etrnd_factory, peer_factory, kind):
    """Y5 (CVE-2020-8794): endless continuation lines, a 1 MB line, or
    mixed codes in one reply: deferred, connection closed, etrnd fine."""
    peer = peer_factory(RawPeer, hostile=kind, lifetime=20)
    d = etrnd_factory(domains=static("site.test", peer.port))
    qid = d.submit(SENDER, ["u@site.test"], BODY)
    r = wait_state(d, qid, "u@site.test", "deferred")
    assert r["last_reply"] == "451 4.4.2 malformed reply from the server", r
    assert "MAIL" not in peer.verbs()
    # etrnd closed the connection (did not wait for the peer to stop)
    assert wait_for(lambda: peer.client_closed == [True], 10), \
        peer.client_closed
    assert peer.hostile_sent < 20 * 1024 * 1024
    assert d.proc.poll() is None
    c = d.session()          # still serving
    assert c.cmd("QUIT")[0] == 221


# --- STARTTLS policy (Y11) --------------------------------------------------

def test_tls_must_to_a_peer_offering_starttls(etrnd_factory, peer_factory,
                                              tmp_path):
    peer = peer_factory(SmtpPeer, tls=make_cert(tmp_path))
    d = etrnd_factory(domains=static("site.test", peer.port,
                                     extra="tls = must"))
    qid = d.submit(SENDER, ["u@site.test"], BODY)
    (m,) = peer.wait_messages(1)
    assert m.tls is True
    assert peer.verbs()[:2] == ["EHLO", "EHLO"]     # again after STARTTLS
    wait_gone(d, qid)


@pytest.mark.parametrize("pipelining", [False, True])
def test_t5_replies_injected_before_tls_are_discarded(etrnd_factory,
                                                      peer_factory, tmp_path,
                                                      pipelining):
    """SECURITY.md T5: the next hop answers STARTTLS with "220" and, in
    the same segment, a forged "250" (CVE-2011-0411, the client side).
    etrnd drops what came in clear after the 220: the handshake succeeds,
    EHLO is sent again over TLS and every later reply is read from the TLS
    stream, so the message arrives once and intact."""
    peer = peer_factory(RawPeer, starttls=make_cert(tmp_path),
                        starttls_reply="220 2.0.0 Go ahead\r\n"
                                       "250 2.0.0 injected in clear\r\n",
                        ehlo=(["PIPELINING"] if pipelining else []) +
                        ["8BITMIME"])
    d = etrnd_factory(domains=static("site.test", peer.port,
                                     extra="tls = must"))
    qid = d.submit(SENDER, ["u@site.test"], BODY)
    (m,) = peer.wait_messages(1)
    assert m.tls is True
    assert m.content.endswith(BODY)
    verbs = peer.verbs()
    tls_at = verbs.index("TLS")
    assert verbs[:tls_at] == ["EHLO", "STAR"], verbs
    assert verbs[tls_at + 1:tls_at + 5] == ["EHLO", "MAIL", "RCPT", "DATA"]
    wait_gone(d, qid)
    assert len(peer.dots) == 1


def test_tls_must_to_a_peer_without_starttls(etrnd_factory, peer_factory):
    peer = peer_factory(SmtpPeer)
    d = etrnd_factory(domains=static("site.test", peer.port,
                                     extra="tls = must"))
    qid = d.submit(SENDER, ["u@site.test"], BODY)
    r = wait_state(d, qid, "u@site.test", "deferred")
    assert r["last_reply"].startswith("451 4.7.4 TLS is required"), r
    assert "MAIL" not in peer.verbs() and peer.dots == []


def test_tls_may_to_a_peer_without_starttls(etrnd_factory, peer_factory):
    peer = peer_factory(SmtpPeer)
    d = etrnd_factory(domains=static("site.test", peer.port,
                                     extra="tls = may"))
    qid = d.submit(SENDER, ["u@site.test"], BODY)
    (m,) = peer.wait_messages(1)
    assert m.tls is False
    wait_gone(d, qid)


# --- 8BITMIME (Y12) and transparency (S4) -----------------------------------

def test_8bit_message_to_a_peer_without_8bitmime(etrnd_factory,
                                                 peer_factory):
    """No conversion to 7 bit here: the message fails with 5.6.3 and a DSN
    (RFC 6152), and not a byte of it goes to that peer.  The same message
    to a peer that offers 8BITMIME goes with BODY=8BITMIME."""
    seven = peer_factory(SmtpPeer, eightbitmime=False)
    eight = peer_factory(SmtpPeer)
    home = peer_factory(SmtpPeer)
    d = etrnd_factory(domains=static("seven.test", seven.port)
                      + static("eight.test", eight.port) + origin(home.port))
    body = "Subject: caf\u00e9\r\n\r\nna\u00efve \u00fcber\r\n".encode()
    qid = d.submit(SENDER, ["u@seven.test", "u@eight.test"], body,
                   mail_params=["BODY=8BITMIME"])
    (m,) = eight.wait_messages(1)
    assert "BODY=8BITMIME" in m.mail_options
    assert body in m.content
    (dsn,) = home.wait_messages(1)
    _, rcpts, _ = dsn_parts(dsn.content)
    assert [(r["Final-Recipient"], r["Status"]) for r in rcpts] == [
        ("rfc822;u@seven.test", "5.6.3")]
    wait_gone(d, qid)
    assert "MAIL" not in seven.verbs() and seven.dots == []
    assert "EHLO" in seven.verbs()


def test_outbound_dot_stuffing_is_byte_exact(etrnd_factory, peer_factory):
    """S4: lines starting with '.', a line that is only '.', '..', '. x'
    leave dot-stuffed, CRLF only, one message per transaction, and arrive
    byte-exact."""
    raw = peer_factory(RawPeer)
    d = etrnd_factory(domains=static("site.test", raw.port, mode="hold"))
    content = (b"Subject: dots\r\n\r\n.leading dot\r\n.\r\n..\r\n. x\r\n"
               b"...three\r\nend.\r\n.\r\n")
    c = d.session()
    assert c.cmd("MAIL FROM:<s@origin.test>")[0] == 250
    assert c.cmd("RCPT TO:<u@site.test>")[0] == 250
    assert c.cmd("DATA")[0] == 354
    stuffed = b"".join((b"." + ln if ln.startswith(b".") else ln) + b"\r\n"
                       for ln in content.split(b"\r\n")[:-1])
    c.send(stuffed + b".\r\n")
    assert c.reply()[0] == 250
    c.close()
    (stored,) = d.stored_bodies().values()
    assert stored.endswith(content)
    assert d.etrn("site.test")[0] == 253
    (m,) = raw.wait_messages(1)
    wire_expected = b"".join(
        (b"." + ln if ln.startswith(b".") else ln) + b"\r\n"
        for ln in stored.split(b"\r\n")[:-1]) + b".\r\n"
    assert m.wire == wire_expected
    assert m.content == stored
    assert m.wire.count(b"\n") == m.wire.count(b"\r\n")
    assert raw.verbs().count("DOT") == 1 and raw.verbs().count("MAIL") == 1


# --- per-recipient domains (X7) and Postfix as the site ---------------------

def test_multi_domain_message_delivers_one_domain_at_a_time(etrnd_factory,
                                                            peer_factory):
    a = peer_factory(SmtpPeer)
    b = peer_factory(SmtpPeer)
    d = etrnd_factory(domains=static("a.test", a.port, mode="hold")
                      + static("b.test", b.port, mode="hold"))
    qid = d.submit(SENDER, ["x@a.test", "y@b.test", "z@a.test"], BODY)
    assert d.etrn("a.test") == (
        253, "253 2.0.0 OK, 1 pending messages for node a.test started")
    (m,) = a.wait_messages(1)
    assert m.rcpt_tos == ["x@a.test", "z@a.test"]
    assert wait_for(lambda: d.pending() == ["y@b.test"], 10), d.pending()
    (row,) = d.queued_json()
    assert (row["qid"], row["state"], row["domain"]) == (qid, "held",
                                                          "b.test")
    assert b.connections == 0
    assert d.etrn("b.test")[0] == 253
    (m2,) = b.wait_messages(1)
    assert m2.rcpt_tos == ["y@b.test"] and m2.content == m.content
    wait_gone(d, qid)
    assert len(a.messages) == 1


def test_postfix_site_receives_the_flushed_domain(etrnd_factory,
                                                  postfix_factory):
    pf = postfix_factory(["example.org"])
    d = etrnd_factory(domains=static("example.org", pf.port, mode="hold"))
    for i in range(3):
        d.submit(SENDER, [f"user{i}@example.org"],
                 b"Subject: held %d\r\n\r\nfor the site\r\n" % i)
    assert pf.maildir_messages() == []
    assert d.etrn("example.org") == (
        253, "253 2.0.0 OK, 3 pending messages for node example.org started")
    got = wait_for(lambda: len(pf.maildir_messages()) == 3 and
                   pf.maildir_messages(), 30)
    assert got, pf.log()
    for i in range(3):
        (one,) = [m for m in got if b"Subject: held %d" % i in m]
        assert b"Delivered-To: user%d@example.org" % i in one
        assert b"for the site" in one
        assert b"by relay.test (etrnd)" in one       # our Received field
    assert wait_for(lambda: d.pending() == [], 10)
