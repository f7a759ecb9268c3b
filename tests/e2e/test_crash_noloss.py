"""Nothing accepted is lost (SECURITY.md D1): clients send mail while the
test kills etrnd with SIGKILL at random moments, 50 times, restarting it
each time.  Afterwards every message that got its 250 is in the queue with
its exact body bytes, and every stored record is whole (no partial
message is ever visible)."""

import os
import random
import smtplib
import struct
import threading
import time

KILLS = 50
CLIENTS = 6


def sender(d, idx, stop, acked, lock):
    n = 0
    while not stop.is_set():
        try:
            with smtplib.SMTP("127.0.0.1", d.port, timeout=5) as s:
                s.ehlo("crash.test")
                while not stop.is_set():
                    n += 1
                    token = f"c{idx}-m{n}"
                    body = (f"Subject: {token}\r\n\r\n"
                            f"{token} " + "x" * random.randint(0, 20000)
                            + "\r\n.dot line\r\nend\r\n").encode()
                    dom = random.choice(["example.org", "example.net"])
                    s.mail(f"{token}@crash.test")
                    s.rcpt(f"{token}@{dom}")
                    code, msg = s.data(body)
                    if code == 250:
                        qid = msg.decode().rsplit(" ", 1)[-1]
                        with lock:
                            acked[qid] = (token, dom, body)
        except (OSError, smtplib.SMTPException):
            time.sleep(0.02)   # etrnd is down: try again


def read_record(d, seg, off):
    with open(f"{d.queue_dir}/seg/{seg:08X}.seg", "rb") as f:
        f.seek(off)
        hdr = f.read(40)
        assert hdr[:4] == b"ETQ2", "record header missing"
        (length,) = struct.unpack("<I", hdr[4:8])
        return f.read(length)


def test_sigkill_loses_nothing_acknowledged(etrnd_factory):
    d = etrnd_factory()
    stop = threading.Event()
    lock = threading.Lock()
    acked = {}
    threads = [threading.Thread(target=sender,
                                args=(d, i, stop, acked, lock), daemon=True)
               for i in range(CLIENTS)]
    for t in threads:
        t.start()
    rng = random.Random()
    counts = []
    try:
        for _ in range(KILLS):
            time.sleep(rng.uniform(0.05, 0.4))
            d.kill9()
            with lock:
                counts.append(len(acked))
            d.start()
        time.sleep(0.5)
    finally:
        stop.set()
        for t in threads:
            t.join(15)
    d.kill9()   # one last crash with clients just stopped
    d.start()

    assert len(acked) > 200, f"too little traffic to prove anything: {len(acked)}"
    assert len(set(counts)) > KILLS // 2, "kills did not interleave with traffic"
    with d.db() as db:
        rows = {"%016X" % mid: (seg, off, size)
                for mid, seg, off, size in
                db.execute("SELECT id, seg, off, size FROM msg")}
        rcpts = dict(((("%016X" % m), a) for m, a in
                      db.execute("SELECT msg, addr FROM rcpt")))
    missing = [q for q in acked if q not in rows]
    assert not missing, f"{len(missing)} acknowledged messages lost: {missing[:5]}"
    for qid, (token, dom, body) in acked.items():
        seg, off, size = rows[qid]
        stored = read_record(d, seg, off)
        assert len(stored) == size
        assert stored.endswith(b"\r\n" + body.split(b"\r\n", 1)[1]) or \
            stored.endswith(body), f"{qid}: body differs"
        assert f"Subject: {token}".encode() in stored
        assert rcpts[qid] == f"{token}@{dom}"
    # every row, acknowledged or not, points at a whole record
    for qid, (seg, off, size) in rows.items():
        assert len(read_record(d, seg, off)) == size


def send_some(d, prefix, n):
    """n messages over one session; qid -> (recipient, body)."""
    out = {}
    with smtplib.SMTP("127.0.0.1", d.port, timeout=10) as s:
        s.ehlo("crash.test")
        for i in range(n):
            token = f"{prefix}-{i}"
            body = (f"Subject: {token}\r\n\r\n{token}\r\n"
                    + ("y" * 70 + "\r\n") * (i * 37 % 100)).encode()
            rcpt = f"{token}@example.org" if i % 2 else f"{token}@example.net"
            s.mail(f"{token}@crash.test", ["BODY=8BITMIME"])
            s.rcpt(rcpt, ["NOTIFY=FAILURE,DELAY", f"ORCPT=rfc822;o-{token}@x.test"])
            code, msg = s.data(body)
            assert code == 250, msg
            out[msg.decode().rsplit(" ", 1)[-1]] = (rcpt, body)
    return out


def test_rows_lost_with_the_database_come_back_from_the_records(etrnd_factory):
    """The database loses its last transactions (a power failure after
    commits that were not synced, or an operator restoring a copy): every
    acknowledged message whose rows are gone is rebuilt from its record
    (body and envelope) past the database's watermark, once, with its
    envelope whole; nothing acknowledged is lost and nothing is doubled."""
    import shutil
    d = etrnd_factory()
    first = send_some(d, "old", 5)
    d.stop()
    qd = d.queue_dir
    shutil.copy(f"{qd}/queue.db", f"{d.dir}/queue.db.old")
    d.start()
    second = send_some(d, "new", 40)
    d.kill9()
    d.start()
    third = send_some(d, "late", 7)
    acked = {**first, **second, **third}
    # what etrnctl shows of each message, from the rows as first committed
    shown_before = {qid: d.show_json(qid) for qid in acked}
    d.stop()
    # back to the copy taken before the last 47 messages
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(f"{qd}/queue.db{suffix}"):
            os.unlink(f"{qd}/queue.db{suffix}")
    shutil.copy(f"{d.dir}/queue.db.old", f"{qd}/queue.db")
    with d.db() as db:
        assert db.execute("SELECT count(*) FROM msg").fetchone()[0] == 5
    d.start()
    assert "event=queue_replay" in d.read_log()
    stored = d.stored_bodies()
    assert sorted(stored) == sorted(acked)
    for qid, (rcpt, body) in acked.items():
        assert stored[qid].endswith(body)
        shown = d.show_json(qid)
        assert shown == shown_before[qid]
        assert shown["sender"] == f"{rcpt.split('@')[0]}@crash.test", shown
        assert shown["rcpt_0"]["address"] == rcpt, shown
        assert shown["rcpt_0"]["orcpt"].lower() == \
            f"rfc822;o-{rcpt.split('@')[0]}@x.test", shown
    with d.db() as db:
        assert db.execute("SELECT count(*) FROM rcpt").fetchone()[0] == \
            len(acked)
    # a second start replays nothing more
    d.stop()
    d.start()
    assert sorted(d.stored_bodies()) == sorted(acked)
