"""SECURITY.md 2.3, SMTP smuggling and end-of-data (S1-S3, S5-S8), end to
end against a real etrnd.

The promise a user relies on: only CR LF "." CR LF ends DATA; nothing a
sender hides inside a message body is ever acted on as a command, so one
DATA never becomes two queued messages; what is stored is exactly what
was sent (dot-unstuffed), however the bytes were cut into segments."""

import random
import socket
import time

from hostile_util import (codes, ehlo, expect, messages, msg_count,
                          replies_until_closed, rss_kb, stored_contents)

# --- S1/S2: fake ends of data -----------------------------------------------

# SECURITY.md S2, hannob/smtpsmug --list-tests, The-Login/SMTP-Smuggling-Tools
# (inbound and outbound lists)
FAKE_ENDS = [
    b"\n.\n", b"\n.\r\n", b"\r\n.\n", b"\r.\r", b"\r\n.\r", b"\n.\r\r\n",
    b"\r\r\n.\r\r\n", b"\r.\n", b"\n.\r", b"\r.\r\n", b"\r\n.\r\r\n",
    b"\n\n.\r\n", b"\r\n\x00.\r\n", b"\r\n.\x00\r\n",
]
# "the same with NUL inserted": before and after the dot of each one
FAKE_ENDS += [e.replace(b".", b"\x00.", 1) for e in FAKE_ENDS[:12]]
FAKE_ENDS += [e.replace(b".", b".\x00", 1) for e in FAKE_ENDS[:12]]

SMUGGLED = (b"MAIL FROM:<ceo@bank.example>\r\n"
            b"RCPT TO:<victim@example.org>\r\n"
            b"DATA\r\n"
            b"From: ceo@bank.example\r\nSubject: smuggled\r\n\r\n"
            b"wire the money\r\n")


def _never_smuggled(d):
    for _mid, sender, _envid, rcpts in messages(d):
        assert sender != "ceo@bank.example"
        assert "victim@example.org" not in rcpts
    for content in stored_contents(d).values():
        # nothing a NUL-dropping or LF-tolerant next hop could read as a
        # line of its own "." ends up in the queue to be relayed onward
        assert b"\x00" not in content
        assert content.replace(b"\r\n", b"").count(b"\n") == 0
        assert content.replace(b"\r\n", b"").count(b"\r") == 0


def _smuggle_once(d, fake_end):
    """One DATA hiding a fake end and a whole pipelined transaction, in one
    segment; returns a problem description or None."""
    before = msg_count(d)
    c = ehlo(d)
    expect(c, "MAIL FROM:<alice@client.test>", 250)
    expect(c, "RCPT TO:<bob@example.org>", 250)
    expect(c, "DATA", 354)
    c.send(b"Subject: hello\r\n\r\nhello" + fake_end + SMUGGLED)
    # DATA did not end at the fake end: the server says nothing yet
    c.sock.settimeout(0.15)
    try:
        early = c.sock.recv(1024)
    except socket.timeout:
        early = b""
    if early:
        return f"answered before the real end: {early!r}"
    c.send(b"\r\n.\r\nQUIT\r\n")           # the real end, then QUIT
    replies = replies_until_closed(c, timeout=10)
    got = codes(replies)
    # one answer for the one DATA, then the QUIT: no 354 for a smuggled
    # DATA, no 250 for a smuggled MAIL or RCPT
    if len(got) != 2 or got[1] != 221 or got[0] not in (250, 550, 554):
        return f"replies {replies}"
    if msg_count(d) - before > 1:
        return "two messages queued"
    return None


def test_s1_s2_smuggling_never_two_messages(etrnd):
    problems = []
    for fake_end in FAKE_ENDS:
        p = _smuggle_once(etrnd, fake_end)
        if p:
            problems.append(f"{fake_end!r}: {p}")
    assert not problems, "\n".join(problems)
    _never_smuggled(etrnd)


def test_s1_smuggling_with_the_real_end_in_a_later_segment(etrnd):
    c = ehlo(etrnd)
    expect(c, "MAIL FROM:<alice@client.test>", 250)
    expect(c, "RCPT TO:<bob@example.org>", 250)
    expect(c, "DATA", 354)
    c.send(b"Subject: s1\r\n\r\nx\n.\n" + SMUGGLED)
    time.sleep(0.3)
    c.send(b"more text\r\n")
    time.sleep(0.1)
    c.send(b".\r\n")
    code, lines = c.reply()
    # the documented policy: refuse the bare LF at the end of the data
    assert lines[0].startswith("550 5.6.11"), lines
    # the session goes on; only the next, clean message is queued
    expect(c, "MAIL FROM:<alice@client.test>", 250)
    expect(c, "RCPT TO:<bob@example.org>", 250)
    expect(c, "DATA", 354)
    c.send(b"Subject: clean\r\n\r\nok\r\n.\r\n")
    assert c.reply()[0] == 250
    c.close()
    assert [(m[1], m[3]) for m in messages(etrnd)] == [
        ("alice@client.test", ["bob@example.org"])]
    _never_smuggled(etrnd)


def test_s2_smtpsmug_pipelining(etrnd):
    """smtpsmug's "pipelining" test: a second transaction pipelined after a
    real end of data is legitimate with EHLO (RFC 2920) and is two mails."""
    c = ehlo(etrnd)
    expect(c, "MAIL FROM:<alice@client.test>", 250)
    expect(c, "RCPT TO:<bob@example.org>", 250)
    expect(c, "DATA", 354)
    c.send(b"Subject: 1\r\n\r\nThis is mail 1/2\r\n.\r\n"
           b"MAIL FROM:<alice@client.test>\r\nRCPT TO:<bob@example.org>\r\n"
           b"DATA\r\nSubject: 2\r\n\r\nThis is mail 2/2\r\n.\r\nQUIT\r\n")
    got = codes(replies_until_closed(c))
    assert got == [250, 250, 250, 354, 250, 221], got
    assert msg_count(etrnd) == 2


# --- S3: lone CR or LF -------------------------------------------------------

S3_BODIES = [
    b"Subject: a\r\n\r\nhello\nworld\r\n",          # LF in the body
    b"Subject: a\r\n\r\nhello\rworld\r\n",          # CR in the body
    b"Subject: a\nX-Evil: 1\r\n\r\nbody\r\n",       # LF in a header
    b"Subject: a\rX-Evil: 1\r\n\r\nbody\r\n",       # CR in a header
    b"Subject: a\r\n\r\nbody\r\r\n",                # CR before CR LF
    b"\nSubject: a\r\n\r\nbody\r\n",                # LF first of all
    b"Subject: a\r\n\r\nbody\n\r\n",                # LF before CR LF
    b"Subject: a\r\n\r\n\r",                        # CR right before the end
]


def test_s3_lone_cr_lf_refused_and_never_stored(etrnd):
    c = ehlo(etrnd)
    clean = 0
    for body in S3_BODIES:
        expect(c, "MAIL FROM:<s@client.test>", 250)
        expect(c, "RCPT TO:<u@example.org>", 250)
        expect(c, "DATA", 354)
        c.send(body + b"\r\n.\r\n" if body.endswith(b"\r") else
               body + b".\r\n")
        code, lines = c.reply()
        if code == 421:                      # allowed: 421 and close
            assert c.closed()
            c = ehlo(etrnd)
            continue
        # documented policy: refused after the end of data
        assert lines[0].startswith("550 5.6.11"), (body, lines)
        # the session continues with a clean message
        expect(c, "MAIL FROM:<s@client.test>", 250)
        expect(c, "RCPT TO:<u@example.org>", 250)
        expect(c, "DATA", 354)
        c.send(b"Subject: clean\r\n\r\nfine\r\n.\r\n")
        assert c.reply()[0] == 250
        clean += 1
    c.close()
    assert msg_count(etrnd) == clean
    assert set(stored_contents(etrnd).values()) == {
        b"Subject: clean\r\n\r\nfine\r\n"}


# --- S5: pipelining discipline -----------------------------------------------


def test_s5_input_before_the_greeting_is_dropped(etrnd_factory):
    """With greeting_delay, a client that sends before the 220 (here a
    whole pipelined transaction) gets 554 and is disconnected; nothing it
    sent is executed or queued.  A client that waits is greeted and
    served."""
    d = etrnd_factory(extra="greeting_delay = 1s\n")
    s = socket.create_connection(("127.0.0.1", d.port), 10)
    s.sendall(b"EHLO early.test\r\nMAIL FROM:<e@client.test>\r\n"
              b"RCPT TO:<e@example.org>\r\nDATA\r\nSubject: x\r\n\r\n"
              b"early\r\n.\r\n")
    data = b""
    s.settimeout(10)
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    s.close()
    assert data.startswith(b"554 5.5.0 "), data
    assert b"220" not in data and b"250" not in data, data
    assert d.log_lines("event=early_talker")
    t0 = time.time()
    c = d.connect()                       # waits, and is greeted
    assert c.greeting[0] == 220 and time.time() - t0 >= 0.9
    expect(c, "EHLO patient.test", 250)
    c.close()
    time.sleep(0.2)
    assert msg_count(d) == 0


def test_s5_pipelining_after_helo_is_refused(etrnd):
    c = etrnd.connect()
    expect(c, "HELO client.test", 250)
    c.send(b"MAIL FROM:<a@client.test>\r\nRCPT TO:<u@example.org>\r\n"
           b"DATA\r\nSubject: x\r\n\r\nx\r\n.\r\n")
    replies = replies_until_closed(c)
    assert codes(replies) == [554], replies
    assert replies[0][1][0].startswith("554 5.5.0")
    # HELO and the commands after it in the same segment
    c = etrnd.connect()
    c.send(b"HELO client.test\r\nMAIL FROM:<a@client.test>\r\n")
    assert codes(replies_until_closed(c)) == [554]
    assert msg_count(etrnd) == 0
    # a HELO client that pipelines after its end of data: the message it
    # sent properly is kept, the pipelined commands end the session
    c = etrnd.connect()
    expect(c, "HELO client.test", 250)
    expect(c, "MAIL FROM:<a@client.test>", 250)
    expect(c, "RCPT TO:<u@example.org>", 250)
    expect(c, "DATA", 354)
    c.send(b"Subject: x\r\n\r\nx\r\n.\r\nMAIL FROM:<b@client.test>\r\n"
           b"RCPT TO:<v@example.org>\r\n")
    got = codes(replies_until_closed(c))
    assert got == [250, 554], got
    assert [(m[1], m[3]) for m in messages(etrnd)] == [
        ("a@client.test", ["u@example.org"])]


def test_s5_pipelining_after_ehlo_answers_in_order(etrnd):
    c = ehlo(etrnd)
    c.send(b"MAIL FROM:<a@client.test>\r\n"
           b"RCPT TO:<one@example.org>\r\n"
           b"RCPT TO:<nobody@elsewhere.test>\r\n"
           b"RCPT TO:<two@example.org>\r\n"
           b"DATA\r\n")
    assert codes(c.reply() for _ in range(5)) == [250, 250, 550, 250, 354]
    c.send(b"Subject: 1\r\n\r\none\r\n.\r\n"
           b"MAIL FROM:<b@client.test>\r\nRCPT TO:<three@example.org>\r\n"
           b"DATA\r\n")
    assert codes(c.reply() for _ in range(4)) == [250, 250, 250, 354]
    c.send(b"Subject: 2\r\n\r\ntwo\r\n.\r\nNOOP\r\nQUIT\r\n")
    assert codes(replies_until_closed(c)) == [250, 250, 221]
    assert [(m[1], m[3]) for m in messages(etrnd)] == [
        ("a@client.test", ["one@example.org", "two@example.org"]),
        ("b@client.test", ["three@example.org"])]


# --- S6: dot-stuffing --------------------------------------------------------

S6_CASES = [
    # (on the wire, before the final ".\r\n"; as it must be stored)
    (b"Subject: dots\r\n\r\n..foo\r\n. \r\n.. \r\nabc.\r\n...\r\n..\r\n"
     b".x.\r\nend\r\n",
     b"Subject: dots\r\n\r\n.foo\r\n \r\n. \r\nabc.\r\n..\r\n.\r\n"
     b"x.\r\nend\r\n"),
    (b"Subject: only headers\r\n", b"Subject: only headers\r\n"),
    (b"", b""),                                           # an empty message
    (b"\r\n", b"\r\n"),
    (b"Subject: x\r\n\r\n.\t\r\n. .\r\n", b"Subject: x\r\n\r\n\t\r\n .\r\n"),
]


def test_s6_dot_stuffing_stored_exactly(etrnd):
    c = ehlo(etrnd)
    want = []
    for wire, stored in S6_CASES:
        expect(c, "MAIL FROM:<dots@client.test>", 250)
        expect(c, "RCPT TO:<dots@example.org>", 250)
        expect(c, "DATA", 354)
        c.send(wire + b".\r\n")
        code, lines = c.reply()
        if not wire:                        # empty: accept or refuse
            assert code in (250, 550, 554), lines
            if code == 250:
                want.append(stored)
            continue
        assert code == 250, (wire, lines)
        want.append(stored)
    c.close()
    assert sorted(stored_contents(etrnd).values()) == sorted(want)


# --- S7: long lines, and buffer boundaries inside the terminator -------------

def test_s7_one_megabyte_line_refused_memory_bounded(etrnd):
    c = ehlo(etrnd, timeout=30)
    base = rss_kb(etrnd.pid)
    expect(c, "MAIL FROM:<long@client.test>", 250)
    expect(c, "RCPT TO:<long@example.org>", 250)
    expect(c, "DATA", 354)
    c.sock.sendall(b"Subject: long\r\n\r\n" + b"L" * (1 << 20) + b"\r\n.\r\n")
    code, lines = c.reply()
    assert lines[0].startswith("550 5.6.0"), lines
    assert rss_kb(etrnd.pid) - base < 200 * 1024
    # the fence post: 998 octets is a line, 999 is too long
    for n, want in ((998, 250), (999, 550)):
        expect(c, "MAIL FROM:<long@client.test>", 250)
        expect(c, "RCPT TO:<long@example.org>", 250)
        expect(c, "DATA", 354)
        c.send(b"Subject: fence\r\n\r\n" + b"F" * n + b"\r\n.\r\n")
        assert c.reply()[0] == want, n
    c.close()
    assert list(stored_contents(etrnd).values()) == [
        b"Subject: fence\r\n\r\n" + b"F" * 998 + b"\r\n"]


def _big_body(total):
    lines, n, i = [], 0, 0
    while n < total:
        if i % 7 == 0:
            line = b"." + b"d" * 70 + b"%d" % i          # stuffed on the wire
        elif i % 11 == 0:
            line = b""
        else:
            line = b"line %d " % i + b"x" * 60
        lines.append(line)
        n += len(line) + 2
        i += 1
    content = b"Subject: big\r\n\r\n" + b"\r\n".join(lines) + b"\r\n"
    wire = b"\r\n".join(b"." + ln if ln.startswith(b".") else ln
                        for ln in content.split(b"\r\n"))
    return content, wire


def test_s7_five_megabytes_split_inside_line_ends(etrnd):
    content, wire = _big_body(5 << 20)
    wire += b".\r\n"
    # cut points: between CR and LF, between CR LF and a dot, and inside
    # the terminator itself
    rng = random.Random(7)
    pos, cuts = 0, []
    while len(cuts) < 30:
        pos = wire.find(b"\r\n", rng.randrange(pos, pos + 400000))
        if pos < 0 or pos > len(wire) - 10:
            break
        cuts.append(pos + 1)                         # CR | LF
        dot = wire.find(b"\r\n.", pos)
        if 0 <= dot < len(wire) - 10:
            cuts.append(dot + 2)                     # CR LF | "."
        pos += 2
    end = len(wire) - 5                              # at "\r\n.\r\n"
    cuts += [end + 1, end + 2, end + 3, end + 4]
    cuts = sorted(set(c for c in cuts if 0 < c < len(wire)))
    assert len(cuts) >= 20
    c = ehlo(etrnd, timeout=60)
    c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    base = rss_kb(etrnd.pid)
    expect(c, "MAIL FROM:<big@client.test>", 250)
    expect(c, "RCPT TO:<big@example.org>", 250)
    expect(c, "DATA", 354)
    prev = 0
    for cut in cuts + [len(wire)]:
        c.sock.sendall(wire[prev:cut])
        prev = cut
        time.sleep(0.005)               # let the server read each piece
    code, lines = c.reply()
    assert code == 250, lines
    assert rss_kb(etrnd.pid) - base < 200 * 1024
    c.close()
    assert list(stored_contents(etrnd).values()) == [content]


# --- S8: segmentation does not change the result -----------------------------

S8_CONTENT = (b"From: seg@client.test\r\nSubject: segments\r\n\r\n"
              b"first line\r\n.starts with a dot\r\n..two dots\r\n. \r\n"
              b"\r\n\r\nmiddle.\r\n.\t.\r\nlast line\r\n")


def _s8_stream():
    wire = b"\r\n".join(b"." + ln if ln.startswith(b".") else ln
                        for ln in S8_CONTENT.split(b"\r\n"))
    return (b"EHLO seg.test\r\nMAIL FROM:<seg@client.test>\r\n"
            b"RCPT TO:<seg@example.org>\r\nRCPT TO:<seg2@example.org>\r\n"
            b"DATA\r\n" + wire + b".\r\nQUIT\r\n")


def _run_segmented(d, stream, cuts, pause):
    c = d.connect()
    c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    prev = 0
    for cut in list(cuts) + [len(stream)]:
        if cut > prev:
            c.sock.sendall(stream[prev:cut])
            prev = cut
            if pause:
                time.sleep(pause)
    got = codes(replies_until_closed(c))
    return got


def test_s8_segmentation_does_not_change_what_is_stored(etrnd):
    stream = _s8_stream()
    runs = [
        ("whole", [], 0),
        ("bytes", range(1, len(stream)), 0.0005),
        ("cr|lf", [i + 1 for i in range(len(stream)) if stream[i] == 13],
         0.002),
    ]
    rng = random.Random(8)
    for k in range(5):
        runs.append((f"random{k}", sorted(rng.sample(range(1, len(stream)),
                                                     rng.randint(2, 40))),
                     0.001))
    for name, cuts, pause in runs:
        got = _run_segmented(etrnd, stream, cuts, pause)
        assert got == [250, 250, 250, 250, 354, 250, 221], (name, got)
    msgs = messages(etrnd)
    assert len(msgs) == len(runs)
    assert {(m[1], tuple(m[3])) for m in msgs} == {
        ("seg@client.test", ("seg@example.org", "seg2@example.org"))}
    contents = list(stored_contents(etrnd).values())
    assert contents == [S8_CONTENT] * len(runs)
