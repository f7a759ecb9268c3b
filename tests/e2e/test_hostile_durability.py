"""SECURITY.md 2.7 D3: kill -9 in the middle of DATA.

What a user relies on: a message whose end-of-data was never answered
with 250 does not exist after a restart (not listed, not counted, not
deliverable), every message that did get 250 is still there byte for
byte, and no temporary body file is left behind in the queue.  (D1, kill
-9 at random moments under load, is the lead's crash test.)"""

import re
import time

from hostile_util import (ehlo, expect, integrity_ok, messages,
                          queue_files, stored_contents, wait_for)

GOOD = b"Subject: acknowledged\r\n\r\nthis one got its 250\r\n"


def _ctl_ready(d):
    """etrnctl answers (the control socket is back after a restart)."""
    def ok():
        return d.etrnctl("--json", "list", check=False).returncode == 0
    assert wait_for(ok, timeout=15, step=0.1), d.read_log()[-2000:]


def _open_data(d, tag):
    c = ehlo(d, timeout=30)
    expect(c, f"MAIL FROM:<{tag}@client.test>", 250)
    expect(c, f"RCPT TO:<{tag}@example.org>", 250)
    expect(c, "DATA", 354)
    return c


def test_d3_kill_mid_data_leaves_no_trace(etrnd):
    # one message acknowledged before the crash
    c = _open_data(etrnd, "good")
    c.send(GOOD + b".\r\n")
    code, lines = c.reply()
    assert code == 250, lines
    good_qid = re.search(r"queued as ([0-9A-F]{16})", lines[0]).group(1)
    c.close()

    # partial messages in flight: one small (held in memory), one large
    # (already spilled to a temporary file), one with its final CR LF but
    # without the dot
    small = _open_data(etrnd, "small")
    small.send(b"Subject: partial\r\n\r\nhalf of a mess")
    large = _open_data(etrnd, "large")
    large.sock.sendall(b"Subject: large\r\n\r\n" +
                       (b"p" * 998 + b"\r\n") * 3000)
    nodot = _open_data(etrnd, "nodot")
    nodot.send(b"Subject: nodot\r\n\r\nall but the dot\r\n")
    time.sleep(0.5)                       # let the daemon take it all in
    assert etrnd.read_log().count("event=queued ") == 1

    etrnd.kill9()
    for c in (small, large, nodot):
        c.close()
    etrnd.start()
    _ctl_ready(etrnd)

    # only the acknowledged message, whole
    rows = etrnd.queued_json()
    assert [(r["qid"], r["recipient"]) for r in rows] == [
        (good_qid, "good@example.org")]
    assert [(m[1], m[3]) for m in messages(etrnd)] == [
        ("good@client.test", ["good@example.org"])]
    assert list(stored_contents(etrnd).values()) == [GOOD]
    assert integrity_ok(etrnd)
    summary = etrnd.etrnctl("--json", "summary").stdout
    assert '"recipients":1' in summary.replace(" ", "")
    # no stray temporary files: the store's own files and segments only
    files = queue_files(etrnd)
    stray = [f for f in files
             if f not in ("queue.db", "queue.db-wal", "queue.db-shm")
             and not re.fullmatch(r"seg/([0-9A-F]{8}\.seg|spare)", f)]
    assert stray == [], files

    # and the restarted daemon takes mail again
    c = _open_data(etrnd, "after")
    c.send(b"Subject: after\r\n\r\nafter the crash\r\n.\r\n")
    assert c.reply()[0] == 250
    c.close()
    assert sorted(m[1] for m in messages(etrnd)) == [
        "after@client.test", "good@client.test"]
