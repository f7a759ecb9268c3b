"""Nothing accepted is lost (SECURITY.md D1): clients send mail while the
test kills etrnd with SIGKILL at random moments, 50 times, restarting it
each time.  Afterwards every message that got its 250 is in the queue with
its exact body bytes, and every stored record is whole (no partial
message is ever visible)."""

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
        hdr = f.read(24)
        assert hdr[:4] == b"ETQ1", "record header missing"
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
