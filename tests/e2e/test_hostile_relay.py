"""SECURITY.md 2.4, relay control (R1-R9), end to end: an unauthenticated
client tries every way of getting mail for a domain etrnd does not serve
(external.example) into the queue.

Pass means: a 5xx at RCPT, and nothing queued for anything but the
configured relay domains, even when the transaction goes on to DATA with
a legitimate recipient beside the refused one."""

import base64

from hostile_util import ehlo, expect, messages, rcpt_rows

# (RCPT argument, reply code, enhanced code)
RELAY_TABLE = {
    "R1 plain relay": [
        ("<user@external.example>", 550, "5.7.1"),
        ("<USER@EXTERNAL.EXAMPLE>", 550, "5.7.1"),
    ],
    "R2 percent hack": [
        ("<user%external.example@served.example>", 550, "5.7.1"),
        ("<user%external.example@[127.0.0.1]>", 550, "5.7.1"),
        ("<user%external.example@localhost>", 550, "5.7.1"),
        ("<user%external.example%served.example@served.example>", 550,
         "5.7.1"),
    ],
    "R3 bang paths": [
        ("<external.example!user@served.example>", 550, "5.7.1"),
        ("<external.example!user>", 501, "5.1.3"),
        ("<a!b!c@served.example>", 550, "5.7.1"),
    ],
    "R4 source routes": [
        ("<@served.example:user@external.example>", 550, "5.7.1"),
        ("<@a,@b:user@external.example>", 550, "5.7.1"),
        ("<@served.example,@example.org:user@external.example>", 550,
         "5.7.1"),
    ],
    "R5 quoted local parts and double @": [
        ('<"user@external.example"@served.example>', 550, "5.7.1"),
        ('<"user%external.example"@served.example>', 550, "5.7.1"),
        ('<"external.example!user"@served.example>', 550, "5.7.1"),
        ("<user@external.example@served.example>", 501, "5.1.3"),
        ('<"user@external.example">', 501, "5.1.3"),
        ('<"user\\@external.example"@served.example>', 550, "5.7.1"),
    ],
    "R6 address literals and bare IPs": [
        ("<u@[1.2.3.4]>", 550, "5.7.1"),
        ("<u@[IPv6:2001:db8::1]>", 550, "5.7.1"),
        ("<u@[127.0.0.1]>", 550, "5.7.1"),           # our own address
        ("<u@1.2.3.4>", 501, "5.1.3"),
        ("<u@127.0.0.1>", 501, "5.1.3"),
    ],
    "R7 domain-match tricks": [
        ("<u@SERVED.example.>", 501, "5.1.3"),        # trailing dot
        ("<u@served.example..>", 501, "5.1.3"),
        ("<u@evil-served.example>", 550, "5.7.1"),
        ("<u@served.example.evil.com>", 550, "5.7.1"),
        ("<u@xn--srved-6qa.example>", 550, "5.7.1"),  # a look-alike
        ("<u@served-example>", 550, "5.7.1"),
        ("<u@served.examples>", 550, "5.7.1"),
        ("<u@eserved.example>", 550, "5.7.1"),
        ("<u@example.org.external.example>", 550, "5.7.1"),
    ],
    "R8 domains not served": [
        ("<u@notserved.example>", 550, "5.7.1"),
        ("<u@example.com>", 550, "5.7.1"),
        ("<u@sub.served.example>", 550, "5.7.1"),     # subdomains = no
        ("<u@sub.example.net>", 550, "5.7.1"),        # subdomains = no
        ("<u@org>", 550, "5.7.1"),
        ("<postmaster@external.example>", 550, "5.7.1"),
    ],
}


def _try(d, rcpt):
    """RCPT the hostile address, then finish the transaction with a good
    recipient beside it: the reply to the hostile RCPT."""
    c = ehlo(d)
    expect(c, "MAIL FROM:<s@client.test>", 250)
    code, lines = c.cmd(f"RCPT TO:{rcpt}")
    expect(c, "RCPT TO:<ok@served.example>", 250)
    expect(c, "DATA", 354)
    c.send(b"Subject: relay test\r\n\r\nx\r\n.\r\n")
    assert c.reply()[0] == 250
    c.close()
    return code, lines


def test_r1_r8_relay_attempts_refused_at_rcpt(etrnd):
    problems, n = [], 0
    for row, cases in RELAY_TABLE.items():
        for rcpt, code, enh in cases:
            got, lines = _try(etrnd, rcpt)
            n += 1
            if got != code or not lines[0][4:].startswith(enh):
                problems.append(f"{row}: {rcpt}: {lines} (want {code} {enh})")
    # the NUL trick of R7 never gets past the command parser
    c = ehlo(etrnd)
    expect(c, "MAIL FROM:<s@client.test>", 250)
    c.send(b"RCPT TO:<u@served.example\x00.evil.com>\r\n")
    code, lines = c.reply()
    if code != 501:
        problems.append(f"R7 NUL: {lines}")
    c.close()
    assert not problems, "\n".join(problems)
    # nothing but the good recipient was ever queued
    rows = rcpt_rows(etrnd)
    assert rows == [("ok@served.example", "served.example")] * n
    assert etrnd.queued_json("external.example") == []
    for _mid, _sender, _envid, rcpts in messages(etrnd):
        assert rcpts == ["ok@served.example"]


def test_r7_case_insensitive_exact_match_still_serves(etrnd):
    """The control: the served domains are matched case-insensitively on
    whole labels; their mail is accepted and routed to them only."""
    c = ehlo(etrnd)
    expect(c, "MAIL FROM:<s@client.test>", 250)
    expect(c, "RCPT TO:<u@SERVED.EXAMPLE>", 250)
    expect(c, "RCPT TO:<v@Example.Org>", 250)
    expect(c, "RCPT TO:<w@deep.sub.example.org>", 250)   # subdomains = yes
    expect(c, "DATA", 354)
    c.send(b"Subject: ok\r\n\r\nx\r\n.\r\n")
    assert c.reply()[0] == 250
    c.close()
    assert sorted(rcpt_rows(etrnd)) == [
        ("u@served.example", "served.example"),
        ("v@example.org", "example.org"),
        ("w@deep.sub.example.org", "deep.sub.example.org")]


def test_r9_no_auth_and_no_relay_for_auth_attempts(etrnd):
    c = etrnd.connect()
    code, lines = c.cmd("EHLO client.test")
    assert code == 250
    assert not any(ln[4:].upper().startswith("AUTH") for ln in lines), lines
    creds = base64.b64encode(b"\0odmr-a\0secret-pass").decode()
    # no AUTH on port 25 yet: refused as not implemented, never 235
    expect(c, f"AUTH PLAIN {creds}", 502, "5.5.1")
    expect(c, "AUTH LOGIN", 502, "5.5.1")
    expect(c, "MAIL FROM:<odmr-a@example.org> AUTH=odmr-a@example.org", 250)
    expect(c, "RCPT TO:<x@external.example>", 550, "5.7.1")
    expect(c, "RCPT TO:<x@example.org>", 250)
    expect(c, "DATA", 354)
    c.send(b"Subject: r9\r\n\r\nx\r\n.\r\n")
    assert c.reply()[0] == 250
    c.close()
    assert rcpt_rows(etrnd) == [("x@example.org", "example.org")]
    log = etrnd.read_log()
    assert creds not in log and "secret-pass" not in log
