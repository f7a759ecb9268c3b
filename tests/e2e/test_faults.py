"""Faults etrnd must survive with nothing lost (SECURITY.md D1, D4, D7,
D8, D9): crashes at the named points of src/util/fault.h and at random
moments of a flush, a full file system while the queue records outcomes,
a damaged store at start-up, and clock steps."""

import os
import random
import re
import smtplib
import time

import pytest

from etrnd_harness import Etrnd, free_port
from peers import SmtpPeer, wait_for
from peers import peer_factory  # noqa: F401 (fixture)
from hostile_util import ehlo, fill_all, integrity_ok
from hostile_util import small_fs  # noqa: F401 (fixture)

SENDER = "sender@origin.test"


def static(name, port, mode="hold", extra=""):
    return (f"\n[domain {name}]\nroute = [127.0.0.1]:{port}\nmode = {mode}\n"
            f"{extra}\n")


def body(token):
    return (f"Subject: {token}\r\n\r\n{token}\r\n.dot line\r\n").encode()


def subjects(peer):
    """How many times each message (by its subject) reached the peer."""
    counts = {}
    for m in list(peer.messages):
        found = re.search(rb"^Subject: (\S+)\r$", m.content, re.M)
        assert found, m.content[:300]
        token = found.group(1).decode()
        counts[token] = counts.get(token, 0) + 1
    return counts


def flush_until_empty(d, domain, timeout=30):
    """ETRN, then wait for the queue to hold nothing for domain."""
    code, line = d.etrn(domain)
    assert code in (250, 251, 253), line
    assert wait_for(lambda: d.queued_json(domain) == [], timeout), \
        (d.queued_json(domain), d.read_log()[-3000:])


# --- D1: the accepting side's two windows -----------------------------------

@pytest.mark.parametrize("point,acked,replayed", [
    ("before_commit", False, True),
    ("after_ack", True, True),
    ("after_commit", None, False)])
def test_kill_around_the_accepting_commit(etrnd_factory, point, acked,
                                          replayed):
    """The accepting side's windows.  before_commit: the record (body
    and envelope) is synced, no 250 sent, the rows not committed.
    after_ack: the client has its 250, the rows are not committed.
    after_commit: the rows are committed (the 250 may or may not have
    gone out).  Every time the message is queued whole after the
    restart, the first two by the replay of the records past the
    watermark.  Without a 250 the client may send it again: a duplicate,
    never a loss."""
    d = etrnd_factory(start=False)
    d.start(env={"ETRND_FAULT": point})
    data = body("accept-window") + b"x" * 900 + b"\r\n" * 4
    got = None
    s = smtplib.SMTP("127.0.0.1", d.port, timeout=30)
    s.ehlo("client.test")
    s.mail(SENDER)
    s.rcpt("a@example.org")
    try:
        got = s.data(data)[0]
    except (smtplib.SMTPServerDisconnected, OSError):
        pass        # no reply: the process died first
    d.wait_killed()
    s.close()
    if acked is not None:
        assert (got == 250) == acked, got
    assert f"event=fault_point name={point}" in d.read_log()
    d.start()
    (b,) = d.stored_bodies().values()
    assert b.startswith(b"Received: ") and b.endswith(data), b[-200:]
    assert d.pending() == ["a@example.org"]
    log = d.read_log()
    assert ("event=queue_replay" in log) == replayed, log[-2000:]
    if replayed:
        assert re.search(r"event=queue_replay from=\S+ messages=1 bad=0",
                         log), log[-2000:]
    # the replayed rows are whole: the envelope came back with them
    (row,) = d.queued_json()
    assert row["sender"] == SENDER and row["recipient"] == "a@example.org"


# --- D4: the delivering side ------------------------------------------------

@pytest.mark.parametrize("point", ["after_remote_250", "during_mark",
                                   "after_mark"])
def test_kill_between_remote_250_and_mark(etrnd_factory, peer_factory, point):
    """The next hop said 250 to the dot; etrnd dies before its outcome is
    committed (after_remote_250: not yet written; during_mark: written,
    not committed) or just after (after_mark).  Not yet marked: sent again
    after the restart (a duplicate).  Marked: never sent again.  Either
    way every message arrives."""
    peer = peer_factory(SmtpPeer)
    d = etrnd_factory(domains=static("site.test", peer.port), start=False)
    d.start(env={"ETRND_FAULT": point})
    tokens = [f"d4-{point}-{i}" for i in range(6)]
    for t in tokens:
        d.submit(SENDER, [f"{t}@site.test"], body(t))
    assert d.etrn("site.test")[0] == 253
    d.wait_killed()
    first = subjects(peer)
    assert first, "the peer got nothing before the crash point"
    assert all(n == 1 for n in first.values()), first

    d.start()
    if point == "after_mark":
        # committed outcomes are final: those messages are gone
        marked = set(first)
        left = {r["recipient"].split("@")[0] for r in d.queued_json()}
        assert not (left & marked), (left, marked)
    flush_until_empty(d, "site.test")
    counts = subjects(peer)
    assert set(counts) == set(tokens), counts          # nothing lost
    if point == "after_mark":
        assert all(counts[t] == 1 for t in first), counts
    else:
        # what the peer had accepted was not marked: delivered again
        assert all(counts[t] == 2 for t in first), counts
    assert d.log_lines("event=delivered") != []


def test_random_kills_during_flush(etrnd_factory, peer_factory):
    """SIGKILL at random moments while a flush delivers 200 messages,
    8 times over; afterwards every message has arrived at least once and
    the queue is empty."""
    peer = peer_factory(SmtpPeer)
    peer.dot_delay = 0.01       # about 400 messages a second on 4 conns
    d = etrnd_factory(domains=static("site.test", peer.port))
    tokens = [f"rk-{i}" for i in range(200)]
    with smtplib.SMTP("127.0.0.1", d.port, timeout=30) as s:
        s.ehlo("client.test")
        for t in tokens:
            s.sendmail(SENDER, [f"{t}@site.test"], body(t))
    rng = random.Random()
    seen = []
    for _ in range(8):
        before = len(peer.messages)
        assert d.etrn("site.test")[0] in (251, 253)
        # the flush is delivering (its first message comes some 100 ms
        # after the ETRN here): kill it at a random moment from then on
        assert wait_for(lambda: len(peer.messages) > before, 15), before
        time.sleep(rng.uniform(0, 0.06))
        d.kill9()
        seen.append(len(peer.messages))
        d.start()
    flush_until_empty(d, "site.test", timeout=60)
    counts = subjects(peer)
    assert set(counts) == set(tokens), sorted(set(tokens) - set(counts))
    print("peer counts at the kills:", seen, "deliveries:", len(peer.messages))
    assert len(set(seen)) >= 4 and seen[0] < len(tokens), seen  # mid-flush


# --- D9: clock steps ---------------------------------------------------------

FAKETIME = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"
PLAIN_BUILD = os.environ.get("ETRND_PLAIN_BUILD") or os.path.join(
    os.path.dirname(__file__), "..", "..", "build")


def step_seen(d, seconds):
    """etrnd logged a clock step of seconds (to a second)."""
    for ln in d.log_lines("event=clock_step"):
        m = re.search(r" seconds=([-+]\d+) ", ln)
        if m and abs(int(m.group(1)) - seconds) <= 1:
            return True
    return False


def test_clock_steps(tmp_path, peer_factory):
    """The system clock jumps 2 days forward, then 3 days back, under
    libfaketime (only etrnd's clock moves; the monotonic clock does not).
    Mail deferred for a domain with a 1-day lifetime and a 12-hour delay
    warning is neither expired nor warned about after the forward jump
    (no DSN storm), and after the backward jump it is retried every 2 s
    as configured (no starvation): it arrives as soon as the site is up.

    Runs the release build: AddressSanitizer and libfaketime do not start
    together (the sanitizer's start-up hangs in the preloaded clock)."""
    etrnd_bin = os.path.join(PLAIN_BUILD, "etrnd")
    assert os.access(etrnd_bin, os.X_OK), f"{etrnd_bin} missing (make all)"
    assert os.path.exists(FAKETIME), "libfaketime missing (install-deps)"
    sender_peer = peer_factory(SmtpPeer)
    site_port = free_port()
    offset = tmp_path / "faketime"
    offset.write_text("+0\n")
    d = Etrnd(PLAIN_BUILD, tmp_path / "d",
              extra="retry_min = 2s\nretry_max = 2s\n"
                    "delay_warning_time = 12h\n",
              domains=static("origin.test", sender_peer.port, mode="retry")
              + static("site.test", site_port, mode="retry",
                       extra="lifetime = 1d"))
    env = {"LD_PRELOAD": FAKETIME, "FAKETIME_TIMESTAMP_FILE": str(offset),
           "FAKETIME_NO_CACHE": "1", "FAKETIME_DONT_FAKE_MONOTONIC": "1"}
    d.start(env=env)
    try:
        tokens = [f"clk-{i}" for i in range(5)]
        for t in tokens:
            d.submit(SENDER, [f"{t}@site.test"], body(t))

        def attempts():
            return [r["attempts"] for r in d.queued_json("site.test")]
        assert wait_for(lambda: min(attempts() or [0]) >= 1, 15), attempts()

        offset.write_text("+2d\n")
        assert wait_for(lambda: step_seen(d, 2 * 86400), 20), \
            d.read_log()[-2000:]
        before = sum(attempts())
        assert wait_for(lambda: sum(attempts()) >= before + 5, 20)
        rows = d.queued_json("site.test")
        assert len(rows) == 5 and {r["state"] for r in rows} == \
            {"deferred"}, rows
        assert d.log_lines("event=dsn") == []
        assert sender_peer.messages == []

        offset.write_text("-1d\n")
        assert wait_for(lambda: step_seen(d, -3 * 86400), 20), \
            d.read_log()[-2000:]
        site = peer_factory(SmtpPeer, port=site_port)
        site.wait_messages(5, timeout=20)
        assert wait_for(lambda: d.queued_json("site.test") == [], 10)
        assert sorted(subjects(site)) == sorted(tokens)
        assert d.log_lines("event=dsn") == []
        assert sender_peer.messages == []
    finally:
        problems = d.stop()
    assert not problems, problems


# --- D8: a damaged store at start-up -----------------------------------------

def fill(d, n, domain="site.test", size=300):
    """n messages for domain in one session; {token: body sent}."""
    sent = {}
    with smtplib.SMTP("127.0.0.1", d.port, timeout=30) as s:
        s.ehlo("client.test")
        for i in range(n):
            t = f"dmg-{i}"
            sent[t] = body(t) + b"z" * size + b"\r\n"
            s.sendmail(SENDER, [f"{t}@{domain}"], sent[t])
    return sent


def records(d):
    """qid -> (segment, offset, size), from the database."""
    with d.db() as db:
        return {"%016X" % m: (s, o, z) for m, s, o, z in
                db.execute("SELECT id, seg, off, size FROM msg ORDER BY id")}


def flip(path, offset):
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ 0x40]))


def checked(d, starts=2):
    """The line of the check after the latest of starts start-ups."""
    assert wait_for(lambda: len(d.log_lines("event=store_checked")) >=
                    starts, 10), d.read_log()[-2000:]
    return d.log_lines("event=store_checked")[-1]


def states(d):
    return {r["qid"]: r["state"] for r in d.queued_json()}


def test_damaged_segment_record_quarantined(etrnd_factory, peer_factory):
    """A flipped byte in one record's header is found by the check after
    start-up, one in another record's body when it is read for delivery:
    both messages are quarantined (state corrupt, logged as errors, kept
    for the operator, never sent); the others are delivered, and new mail
    flows."""
    peer = peer_factory(SmtpPeer)
    d = etrnd_factory(domains=static("site.test", peer.port))
    fill(d, 6)
    assert not d.stop()
    recs = records(d)
    qids = sorted(recs)
    head, tail = qids[1], qids[4]
    seg, off, _ = recs[head]
    flip(f"{d.queue_dir}/seg/{seg:08X}.seg", off + 9)       # the id field
    seg, off, size = recs[tail]
    flip(f"{d.queue_dir}/seg/{seg:08X}.seg", off + 24 + size // 2)

    d.start()
    line = checked(d)
    assert "messages=6 quarantined=1" in line, line
    assert d.log_lines("level=error", "event=quarantined", f"qid={head}")
    assert wait_for(lambda: states(d).get(head) == "corrupt", 10), states(d)

    assert d.etrn("site.test")[0] == 253
    assert wait_for(lambda: len(peer.messages) == 4, 15), len(peer.messages)
    assert wait_for(lambda: set(states(d)) == {head, tail}, 10), states(d)
    assert states(d) == {head: "corrupt", tail: "corrupt"}
    assert d.log_lines("level=error", "event=quarantined", f"qid={tail}")
    got = subjects(peer)
    assert len(got) == 4 and all(n == 1 for n in got.values()), got
    # a second ETRN finds nothing to send: quarantined mail is not pending
    assert d.etrn("site.test")[0] == 251
    # new mail still flows; the operator can delete what was set aside
    d.submit(SENDER, ["fresh@site.test"], body("fresh"))
    assert d.etrn("site.test")[0] == 253
    assert wait_for(lambda: "fresh" in subjects(peer), 15)
    d.etrnctl("delete", head)
    assert set(states(d)) == {tail}
    # the operator restores the damaged record (here: flips the byte back)
    # and requeues the message: it is delivered
    flip(f"{d.queue_dir}/seg/{seg:08X}.seg", off + 24 + size // 2)
    r = d.etrnctl("requeue", tail)
    assert "1" in r.stdout, r.stdout          # one recipient made due
    assert wait_for(lambda: states(d) == {}, 15), states(d)
    assert wait_for(lambda: len(subjects(peer)) == 6, 15), subjects(peer)


def test_missing_segment_file_quarantined(etrnd_factory, peer_factory):
    """The segment file behind queued messages is gone: the check after
    start-up quarantines them all (nothing is silently dropped), and new
    mail is accepted and delivered."""
    peer = peer_factory(SmtpPeer)
    d = etrnd_factory(domains=static("site.test", peer.port))
    fill(d, 4)
    assert not d.stop()
    segs = {s for s, _, _ in records(d).values()}
    for s in segs:
        os.unlink(f"{d.queue_dir}/seg/{s:08X}.seg")
    d.start()
    assert "quarantined=4" in checked(d)
    assert wait_for(lambda: set(states(d).values()) == {"corrupt"}, 10)
    assert len(states(d)) == 4
    d.submit(SENDER, ["fresh@site.test"], body("fresh"))
    assert d.etrn("site.test")[0] == 253
    assert wait_for(lambda: subjects(peer) == {"fresh": 1}, 15), \
        subjects(peer)


def test_truncated_database_detected(etrnd_factory, peer_factory):
    """queue.db cut to 60 % of its size: etrnd starts anyway, says so at
    error level, moves the damaged files into quarantine/ untouched, and
    salvages every row the cut file still holds; salvaged mail and new
    mail are delivered."""
    peer = peer_factory(SmtpPeer)
    d = etrnd_factory(domains=static("site.test", peer.port))
    sent = fill(d, 400)
    assert not d.stop()
    db = f"{d.queue_dir}/queue.db"
    assert not os.path.exists(db + "-wal") or os.path.getsize(db + "-wal") == 0
    size = os.path.getsize(db)
    os.truncate(db, size * 6 // 10 // 4096 * 4096)

    d.start()
    (dmg,) = d.log_lines("level=error", "event=store_damaged")
    assert "cut short" in dmg and "action=quarantine" in dmg, dmg
    (salv,) = d.log_lines("level=error", "event=store_salvaged")
    kept = int(re.search(r" messages=(\d+)", salv).group(1))
    assert 0 < kept < 400, salv
    qdir = re.search(r" quarantine=(\S+)", salv).group(1)
    assert os.path.getsize(f"{qdir}/queue.db") == size * 6 // 10 // 4096 * 4096
    pending = states(d)
    assert len(pending) == kept
    # every salvaged row still points at its exact body
    stored = d.stored_bodies()
    assert len(stored) == kept
    for qid, b in stored.items():
        token = re.search(rb"^Subject: (\S+)\r$", b, re.M).group(1).decode()
        assert b.endswith(sent[token]), qid

    d.submit(SENDER, ["fresh@site.test"], body("fresh"))
    assert d.etrn("site.test")[0] == 253
    assert wait_for(lambda: len(peer.messages) == kept + 1, 30), \
        (len(peer.messages), kept)
    assert wait_for(lambda: d.queued_json() == [], 15)
    # the segment files are kept while the quarantined database needs them
    assert os.listdir(f"{d.queue_dir}/seg") or os.listdir(qdir)


def test_flipped_byte_in_a_database_page(etrnd_factory):
    """A flipped byte in an index page's cell pointers (structural damage,
    what PRAGMA quick_check finds): the check after start-up reports it
    at error level and marks the store; the next start salvages it, and
    every message is still there."""
    d = etrnd_factory()
    fill(d, 300, domain="example.org")
    assert not d.stop()
    with d.db() as db:
        pages = [p for (p,) in db.execute(
            "SELECT pageno FROM dbstat WHERE name = 'rcpt_rkey'"
            " AND pagetype = 'leaf'")]
        psize = db.execute("PRAGMA page_size").fetchone()[0]
    assert pages, "no leaf page of the index found"
    # a leaf page's header is 8 bytes; the first cell pointer follows
    flip(f"{d.queue_dir}/queue.db", (pages[0] - 1) * psize + 8)

    d.start()
    assert wait_for(lambda: d.log_lines("event=store_damaged",
                                        "action=salvage_at_next_start"), 15)
    assert os.path.exists(f"{d.queue_dir}/salvage-at-start")
    assert not d.stop()
    d.start()
    (salv,) = d.log_lines("event=store_salvaged")
    assert " messages=300 recipients=300 " in salv, salv
    assert not os.path.exists(f"{d.queue_dir}/salvage-at-start")
    assert len(d.queued_json()) == 300
    with d.db() as db:
        assert db.execute("PRAGMA quick_check").fetchone()[0] == "ok"


# --- D7: the file system fills up while outcomes are recorded -----------------

def test_full_disk_during_state_updates(small_fs, etrnd_factory,
                                        peer_factory):
    """The queue's file system is full when a flush records its outcomes
    (delivered for most, a 550 and so a DSN for one): the transaction
    rolls back as a whole, every recipient keeps its previous state (held),
    no half-written row, no DSN without its failure, and etrnd keeps
    running and refuses new mail with 452.  With space back, the next
    ETRN delivers again (duplicates, never loss) and the DSN goes out."""
    sender_peer = peer_factory(SmtpPeer)
    peer = peer_factory(SmtpPeer,
                        rcpt_replies={"nobody@site.test":
                                      "550 5.1.1 no such user"})
    d = etrnd_factory(extra="queue_min_free = 1M\n",
                      domains=static("origin.test", sender_peer.port,
                                     mode="retry")
                      + static("site.test", peer.port))
    assert d.queue_dir == small_fs
    tokens = [f"full-{i}" for i in range(10)]
    for t in tokens:
        d.submit(SENDER, [f"{t}@site.test"], body(t))
    d.submit(SENDER, ["nobody@site.test"], body("to-nobody"))
    before = {r["qid"]: (r["state"], r["attempts"]) for r in d.queued_json()}
    assert len(before) == 11

    fillers = fill_all(small_fs)
    assert d.etrn("site.test")[0] == 253
    assert wait_for(lambda: len(peer.messages) == 10, 15), len(peer.messages)
    assert wait_for(lambda: d.log_lines("event=store_error",
                                        "op=record_outcomes"), 15), \
        d.read_log()[-3000:]
    time.sleep(0.5)
    after = {r["qid"]: (r["state"], r["attempts"]) for r in d.queued_json()}
    assert after == before                     # nothing half-recorded
    assert integrity_ok(d)
    assert sender_peer.messages == []          # no DSN without its failure
    code, lines = RawLine.mail(d)
    assert code == 452, lines                  # and no 250 for new mail
    assert d.proc.poll() is None

    for f in fillers:
        os.unlink(f)
    assert wait_for(lambda: RawLine.mail(d)[0] == 250, 15, step=0.25)
    assert d.etrn("site.test")[0] == 253
    assert wait_for(lambda: d.queued_json() == [], 20), d.queued_json()
    assert set(subjects(peer)) == set(tokens)
    (dsn,) = sender_peer.wait_messages(1)
    assert b"nobody@site.test" in dsn.content
    assert integrity_ok(d)


class RawLine:
    @staticmethod
    def mail(d):
        c = ehlo(d)
        try:
            return c.cmd("MAIL FROM:<disk@client.test>")
        finally:
            c.close()


# --- D6: a failing sync of the bodies; the spare segment file ---------------

def seg_files(d):
    return sorted(os.listdir(f"{d.queue_dir}/seg"))


def msg_segs(d):
    with d.db() as db:
        return dict(db.execute("SELECT id, seg FROM msg").fetchall())


def send_refused_451(d, rcpt, token):
    """One message whose dot must get 451 4.3.0 (a failed store)."""
    with smtplib.SMTP("127.0.0.1", d.port, timeout=30) as s:
        s.ehlo("client.test")
        s.mail(SENDER)
        s.rcpt(rcpt)
        code, msg = s.data(body(token))
    assert (code, msg[:5]) == (451, b"4.3.0"), (code, msg)


def test_failed_body_sync_gets_451_and_the_file_is_abandoned(
        etrnd_factory, peer_factory):
    """The second batch's sync fails (error point sync_error, as EIO from
    fdatasync or sync_file_range): that client gets 451 4.3.0 and nothing
    of its message is queued; the file is never written again (the next
    message goes to a new file, the old one does not grow), and once its
    messages are delivered it is removed, not kept as the spare for reuse
    (its blocks are not trusted)."""
    peer = peer_factory(SmtpPeer)
    d = etrnd_factory(domains=static("site.test", peer.port), start=False)
    d.start(env={"ETRND_FAULT": "sync_error:2"})
    d.submit(SENDER, ["one@site.test"], body("sync-one"))
    (first_seg,) = set(msg_segs(d).values())
    path = f"{d.queue_dir}/seg/{first_seg:08X}.seg"
    send_refused_451(d, "two@site.test", "sync-two")
    assert "event=fault_point name=sync_error action=error" in d.read_log()
    assert d.log_lines("event=store_error op=fdatasync") != []
    size = os.path.getsize(path)
    d.submit(SENDER, ["three@site.test"], body("sync-three"))
    segs = msg_segs(d)
    assert len(segs) == 2 and len(set(segs.values())) == 2, segs
    assert os.path.getsize(path) == size
    assert sorted(r["recipient"] for r in d.queued_json()) == [
        "one@site.test", "three@site.test"]
    # the watermark moved past the failed file (see the next test)
    with d.db() as db:
        (mark_seg,) = db.execute("SELECT seg FROM mark").fetchone()
    assert mark_seg > first_seg
    flush_until_empty(d, "site.test")
    assert set(subjects(peer)) == {"sync-one", "sync-three"}
    assert wait_for(lambda: not os.path.exists(path), 10), seg_files(d)
    assert "spare" not in seg_files(d)


def test_message_that_got_451_is_never_replayed(etrnd_factory):
    """A failed sync answers 451, but the record may be whole on disk.
    The watermark moves past it at once, so a restart after a crash does
    not bring back a message whose client was told to send it again."""
    d = etrnd_factory(start=False)
    d.start(env={"ETRND_FAULT": "sync_error:1"})
    send_refused_451(d, "gone@example.org", "sync-451")
    (seg,) = seg_files(d)
    assert os.path.getsize(f"{d.queue_dir}/seg/{seg}") > len(body("sync-451"))
    d.kill9()
    d.start()
    assert "event=queue_replay" not in d.read_log()
    assert d.pending() == [] and d.stored_bodies() == {}


def test_rows_that_fail_to_commit_after_the_250_are_retried(etrnd_factory):
    """The 250 goes out once the record is durable; the rows follow.  When
    their commit fails (error point rows_error), the message is not lost:
    the writer keeps the rows and commits them on its next pass (before
    the next batch, or within 5 s with no other traffic).  While they
    cannot be stored, new messages get 451 (not tested: the error point
    fails once)."""
    d = etrnd_factory(start=False)
    d.start(env={"ETRND_FAULT": "rows_error"})
    qid = d.submit(SENDER, ["a@example.org"], body("rows-late"))
    # the rows' commit comes after the 250
    assert wait_for(lambda: d.log_lines("event=store_error op=commit"), 10)
    assert "event=fault_point name=rows_error action=error" in d.read_log()
    assert wait_for(lambda: d.log_lines("event=store_recovered messages=1"),
                    15), d.read_log()[-2000:]
    assert d.pending() == ["a@example.org"]
    assert list(d.stored_bodies()) == [qid]
    d.submit(SENDER, ["b@example.org"], body("rows-next"))
    assert d.pending() == ["a@example.org", "b@example.org"]


def test_retired_segment_file_is_reused(etrnd_factory, peer_factory):
    """A segment file whose messages are all delivered becomes seg/spare
    (on ext4 or XFS, where /tmp is here), and the next new segment file is
    that file renamed: its blocks are reused, not freed and allocated
    again.  Every message arrives whole, through both files."""
    peer = peer_factory(SmtpPeer)
    d = etrnd_factory(domains=static("site.test", peer.port))
    for i in range(5):
        d.submit(SENDER, [f"a{i}@site.test"], body(f"spare-a{i}"))
    (old,) = set(msg_segs(d).values())
    assert d.stop() == []
    d.start()                       # a new start: a new current file
    d.submit(SENDER, ["b0@site.test"], body("spare-b0"))
    flush_until_empty(d, "site.test")
    assert wait_for(lambda: "spare" in seg_files(d), 10), seg_files(d)
    assert f"{old:08X}.seg" not in seg_files(d)
    spare_size = os.path.getsize(f"{d.queue_dir}/seg/spare")
    assert d.stop() == []
    d.start()
    qid = d.submit(SENDER, ["c0@site.test"], body("spare-c0"))
    (new,) = set(msg_segs(d).values())
    assert "spare" not in seg_files(d), seg_files(d)
    assert os.path.getsize(f"{d.queue_dir}/seg/{new:08X}.seg") >= spare_size
    assert d.stored_bodies()[qid].endswith(body("spare-c0"))
    flush_until_empty(d, "site.test")
    counts = subjects(peer)
    assert sorted(counts) == sorted(
        [f"spare-a{i}" for i in range(5)] + ["spare-b0", "spare-c0"])
    assert all(n == 1 for n in counts.values()), counts
