"""SECURITY.md 2.2, STARTTLS (T1-T4), end to end against an etrnd with a
throw-away self-signed certificate.

What a user relies on: nothing sent in clear after STARTTLS is ever acted
on; the session after the handshake starts from scratch; a broken
handshake closes that one connection and nothing else; no password is
asked for or logged where there is no AUTH."""

import base64
import re
import smtplib
import socket
import ssl
import subprocess
import time

import pytest

from hostile_util import (client_context, ehlo, expect, make_cert,
                          messages, msg_count, stored_contents,
                          strip_received, tls_extra, wrap_tls)


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    return make_cert(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def tls_etrnd(etrnd_factory, cert):
    return etrnd_factory(extra=tls_extra(*cert))


def _quiet(c, timeout=0.3):
    """Nothing more arrives on the socket in clear for a moment."""
    c.sock.settimeout(timeout)
    try:
        data = c.sock.recv(4096, socket.MSG_PEEK)
    except socket.timeout:
        return True
    return data == b""


def _starttls(c):
    lines = expect(c, "STARTTLS", 220, "2.0.0")
    wrap_tls(c)
    return lines


def _closed_without_plaintext(c, timeout=5):
    """The server hangs up; whatever it sent before is not an SMTP reply
    in clear (a TLS alert record is fine)."""
    c.sock.settimeout(timeout)
    data = b""
    try:
        while True:
            chunk = c.sock.recv(4096)
            if not chunk:
                break
            data += chunk
    except (ConnectionResetError, BrokenPipeError):
        pass
    except socket.timeout:
        raise AssertionError("server did not close; got %r" % data)
    assert not re.match(rb"\d{3}[ -]", data), data
    return data


def _served(d):
    """Another client is served normally, over TLS."""
    with smtplib.SMTP("127.0.0.1", d.port, timeout=10) as s:
        s.ehlo("other.test")
        s.starttls(context=client_context())
        s.ehlo("other.test")
        assert s.sendmail("o@client.test", ["other@example.org"],
                          b"Subject: other\r\n\r\nfine\r\n") == {}


# --- T1: plaintext injection -------------------------------------------------

@pytest.mark.parametrize("injected", [b"RSET\r\n",
                                      b"MAIL FROM:<x@client.test>\r\n",
                                      b"NOOP\r\nNOOP\r\nQUIT\r\n"])
def test_t1_plaintext_after_starttls_is_discarded(tls_etrnd, injected):
    c = ehlo(tls_etrnd)
    c.send(b"STARTTLS\r\n" + injected)          # one segment
    code, lines = c.reply()
    assert lines == ["220 2.0.0 Ready to start TLS"], lines
    assert _quiet(c), "a plaintext reply to the injected command"
    wrap_tls(c)
    # the first encrypted command's reply is the only reply
    code, lines = c.cmd("EHLO client.test")
    assert code == 250 and lines[0] == "250-relay.test", lines
    # the injected MAIL was never run
    expect(c, "RCPT TO:<u@example.org>", 503, "5.5.1")
    expect(c, "MAIL FROM:<real@client.test>", 250)
    expect(c, "RCPT TO:<u@example.org>", 250)
    expect(c, "DATA", 354)
    c.send(b"Subject: t1\r\n\r\nx\r\n.\r\n")
    assert c.reply()[0] == 250
    expect(c, "QUIT", 221)
    assert [(m[1], m[3]) for m in messages(tls_etrnd)] == [
        ("real@client.test", ["u@example.org"])]


def test_t1_plaintext_in_a_later_segment_breaks_the_handshake(tls_etrnd):
    c = ehlo(tls_etrnd)
    c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    expect(c, "STARTTLS", 220, "2.0.0")
    # after the 220 the server reads TLS records only: clear text now is
    # a broken ClientHello
    c.send(b"MAIL FROM:<x@client.test>\r\n")
    with pytest.raises((ssl.SSLError, OSError)):
        wrap_tls(c)
    c.close()
    # the same, racing the 220: sent right behind STARTTLS, in its own
    # segment; either it is discarded or it breaks the handshake, never run
    c = ehlo(tls_etrnd)
    c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    c.send(b"STARTTLS\r\n")
    c.send(b"RSET\r\n")
    assert c.reply()[1] == ["220 2.0.0 Ready to start TLS"]
    try:
        wrap_tls(c)
    except (ssl.SSLError, OSError):
        pass
    else:
        code, lines = c.cmd("EHLO client.test")
        assert lines[0] == "250-relay.test", lines
    c.close()
    assert msg_count(tls_etrnd) == 0
    _served(tls_etrnd)


# --- T2: state after TLS -----------------------------------------------------

def test_t2_state_is_reset_by_tls(tls_etrnd):
    c = tls_etrnd.connect()
    code, lines = c.cmd("EHLO before.test")
    assert "250-STARTTLS" in lines
    # STARTTLS inside a transaction is refused, the transaction goes on
    expect(c, "MAIL FROM:<pre@client.test>", 250)
    expect(c, "STARTTLS", 503, "5.5.1")
    expect(c, "RCPT TO:<pre@example.org>", 250)
    expect(c, "RSET", 250)
    _starttls(c)
    # the pre-TLS EHLO is forgotten
    expect(c, "MAIL FROM:<x@client.test>", 503, "5.5.1")
    code, lines = c.cmd("EHLO after.test")
    assert code == 250
    assert not any("STARTTLS" in ln for ln in lines), lines
    assert not any(ln[4:].startswith("AUTH") for ln in lines), lines
    expect(c, "STARTTLS", 503, "5.5.1")            # a second STARTTLS
    expect(c, "MAIL FROM:<post@client.test>", 250)
    expect(c, "RCPT TO:<post@example.org>", 250)
    expect(c, "DATA", 354)
    c.send(b"Subject: t2\r\n\r\nx\r\n.\r\n")
    assert c.reply()[0] == 250
    expect(c, "QUIT", 221)
    (body,) = tls_etrnd.stored_bodies().values()
    assert body.startswith(b"Received: from after.test ([127.0.0.1])")
    assert b"with ESMTPS" in body and b"(using TLSv1." in body
    assert b"before.test" not in body
    assert strip_received(body) == b"Subject: t2\r\n\r\nx\r\n"
    assert [(m[1], m[3]) for m in messages(tls_etrnd)] == [
        ("post@client.test", ["post@example.org"])]


def test_t2_starttls_without_certificate_is_not_offered(etrnd):
    c = ehlo(etrnd)
    expect(c, "STARTTLS", 502, "5.5.1")
    _quiet(c)
    expect(c, "NOOP", 250)


# --- T3: broken handshakes ---------------------------------------------------

def _client_hello():
    """The bytes of a real TLS ClientHello."""
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = client_context().wrap_bio(inc, out, server_hostname="relay.test")
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    return out.read()


def test_t3_broken_handshakes_close_only_that_connection(tls_etrnd):
    # a session that stays open through all of it
    other = ehlo(tls_etrnd)
    expect(other, "MAIL FROM:<other@client.test>", 250)

    c = ehlo(tls_etrnd)
    expect(c, "STARTTLS foo", 501, "5.5.4")
    expect(c, "NOOP", 250)                        # nothing changed
    c.close()

    # garbage instead of a ClientHello
    c = ehlo(tls_etrnd)
    expect(c, "STARTTLS", 220)
    c.send(b"EHLO not-tls\r\nMAIL FROM:<g@client.test>\r\n" + b"\x00" * 64)
    _closed_without_plaintext(c)

    # a record header that promises more than ever comes, then garbage
    c = ehlo(tls_etrnd)
    expect(c, "STARTTLS", 220)
    c.send(b"\x16\x03\x01\xff\xff" + b"\xee" * 300)
    c.sock.shutdown(socket.SHUT_WR)
    _closed_without_plaintext(c)

    # a truncated ClientHello, then the client goes away
    hello = _client_hello()
    c = ehlo(tls_etrnd)
    expect(c, "STARTTLS", 220)
    c.send(hello[:len(hello) // 2])
    time.sleep(0.1)
    c.close()

    # a truncated ClientHello, then a half-close
    c = ehlo(tls_etrnd)
    expect(c, "STARTTLS", 220)
    c.send(hello[:40])
    c.sock.shutdown(socket.SHUT_WR)
    _closed_without_plaintext(c)

    # a fatal alert in the middle of the handshake
    c = ehlo(tls_etrnd)
    expect(c, "STARTTLS", 220)
    c.send(_client_hello())
    time.sleep(0.2)
    c.send(b"\x15\x03\x03\x00\x02\x02\x28")       # handshake_failure
    _closed_without_plaintext(c)

    # the client closes right after 220
    c = ehlo(tls_etrnd)
    expect(c, "STARTTLS", 220)
    c.close()

    # many at once, interleaved
    conns = []
    for _ in range(10):
        c = ehlo(tls_etrnd)
        c.send(b"STARTTLS\r\n")
        conns.append(c)
    for i, c in enumerate(conns):
        assert c.reply()[0] == 220
        c.send(hello[:i * 10 + 5])
    for c in conns:
        c.close()

    # everything else is unaffected
    expect(other, "RCPT TO:<other@example.org>", 250)
    expect(other, "DATA", 354)
    other.send(b"Subject: other\r\n\r\nstill here\r\n.\r\n")
    assert other.reply()[0] == 250
    other.close()
    _served(tls_etrnd)
    assert msg_count(tls_etrnd) == 2


# --- T4: no AUTH in clear, no credentials in the log -------------------------

def test_t6_a_trickled_handshake_is_cut_at_the_deadline(etrnd_factory,
                                                        cert):
    """A ClientHello sent one byte every 0.4 s never leaves the socket
    quiet for idle_timeout (2 s), yet the handshake must end 2 s after
    STARTTLS: the connection is closed, and another client is served
    meanwhile."""
    d = etrnd_factory(extra=tls_extra(*cert) + "idle_timeout = 2s\n")
    c = ehlo(d)
    expect(c, "STARTTLS", 220)
    hello = _client_hello()
    t0 = time.time()
    closed = False
    for i in range(len(hello)):
        try:
            c.sock.sendall(hello[i:i + 1])
        except OSError:
            closed = True
            break
        if time.time() - t0 > 8:
            break
        c.sock.settimeout(0.4)
        try:
            got = c.sock.recv(4096)
        except socket.timeout:
            continue
        except OSError:
            got = b""
        if got == b"" or got[:1] == b"\x15":   # EOF, or a TLS alert
            closed = True
            break
    took = time.time() - t0
    assert closed, f"still open after {took:.1f} s"
    assert 1.5 < took < 4, took
    _served(d)
    assert d.log_lines("reason=tls_handshake_timeout")


def test_t4_auth_not_offered_and_never_succeeds(tls_etrnd):
    secret = "Tr0ub4dor&3-secret"
    creds = base64.b64encode(f"\0alice\0{secret}".encode()).decode()
    c = tls_etrnd.connect()
    code, lines = c.cmd("EHLO client.test")
    assert not any(ln[4:].upper().startswith("AUTH") for ln in lines)
    code, lines = c.cmd(f"AUTH PLAIN {creds}")
    assert code != 235 and code >= 500, lines
    assert code in (502, 530, 538), lines
    code, lines = c.cmd("AUTH LOGIN")
    assert code != 334 and code >= 500, lines
    # the same after TLS: there is no AUTH yet at all
    _starttls(c)
    code, lines = c.cmd("EHLO client.test")
    assert not any(ln[4:].upper().startswith("AUTH") for ln in lines)
    code, lines = c.cmd(f"AUTH PLAIN {creds}")
    assert code != 235 and code >= 500, lines
    # and it grants nothing
    expect(c, "MAIL FROM:<alice@example.org>", 250)
    expect(c, "RCPT TO:<x@external.example>", 550, "5.7.1")
    expect(c, "QUIT", 221)
    log = tls_etrnd.read_log()
    assert creds not in log and secret not in log


def test_tls_sessions_that_quit_give_their_connection_slot_back(
        etrnd_factory, cert):
    """Each TLS session that ends with QUIT is freed: with a cap of 3 per
    client address, 8 sessions in a row are all served, and the daemon
    stops at once (a leaked session would hold its slot, lock the client
    out and hold up SIGTERM until the shutdown grace is over)."""
    d = etrnd_factory(extra=tls_extra(*cert) +
                      "max_connections_per_client = 3\n")
    for i in range(8):
        with smtplib.SMTP("127.0.0.1", d.port, timeout=10,
                          source_address=("127.0.0.7", 0)) as s:
            s.ehlo("client.test")
            s.starttls(context=client_context())
            s.ehlo("client.test")
            if i % 2:
                s.mail("s@client.test")
                s.rcpt("q%d@example.org" % i)
                assert s.data(b"Subject: q\r\n\r\nx\r\n")[0] == 250
    assert msg_count(d) == 4
    t0 = time.time()
    assert d.stop() == []
    assert time.time() - t0 < 10


# --- the positive case -------------------------------------------------------

def test_starttls_session_with_smtplib_queues_mail(tls_etrnd):
    with smtplib.SMTP("127.0.0.1", tls_etrnd.port, timeout=10) as s:
        s.ehlo("client.test")
        assert s.has_extn("starttls")
        code, _ = s.starttls(context=client_context())
        assert code == 220
        s.ehlo("client.test")
        assert not s.has_extn("starttls")
        assert s.sendmail("s@client.test", ["tls@example.org"],
                          b"Subject: tls\r\n\r\nover TLS\r\n") == {}
    (body,) = tls_etrnd.stored_bodies().values()
    assert b"with ESMTPS" in body
    assert strip_received(body) == b"Subject: tls\r\n\r\nover TLS\r\n"
    assert [r["recipient"] for r in tls_etrnd.queued_json()] == [
        "tls@example.org"]


def test_starttls_session_with_swaks(tls_etrnd):
    r = subprocess.run(
        ["swaks", "--server", f"127.0.0.1:{tls_etrnd.port}", "--tls",
         "--ehlo", "client.test", "--from", "s@client.test", "--to",
         "swaks@example.net", "--body", "from swaks over TLS"],
        capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "250 2.0.0 Ok: queued as" in r.stdout
    assert "TLS started" in r.stdout
    rows = tls_etrnd.queued_json("example.net")
    assert [(x["recipient"], x["state"]) for x in rows] == [
        ("swaks@example.net", "held")]
    assert b"from swaks over TLS" in list(
        stored_contents(tls_etrnd).values())[0]
