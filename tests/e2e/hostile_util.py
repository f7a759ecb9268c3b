"""Helpers shared by the hostile-input end-to-end tests (test_hostile_*.py).

Everything here talks to a real etrnd over loopback sockets, or reads its
queue read-only; nothing changes the daemon's state behind its back."""

import os
import socket
import ssl
import subprocess
import threading
import time

import pytest

from etrnd_harness import RawSMTP

CLIENT = "client.test"


# --- sessions -------------------------------------------------------------

def ehlo(d, name=CLIENT, timeout=10):
    """A connected RawSMTP that has been greeted and said EHLO."""
    c = d.connect(timeout)
    assert c.greeting[0] == 220, c.greeting
    code, lines = c.cmd(f"EHLO {name}")
    assert code == 250, lines
    return c


def try_reply(c):
    """The next reply, or None when the server closed the connection."""
    try:
        return c.reply()
    except (EOFError, ConnectionResetError, BrokenPipeError):
        return None


def replies_until_closed(c, timeout=10, limit=100000):
    """Every reply up to the server's close: a list of (code, lines).
    Fails the test if the server neither closes nor answers in time."""
    c.sock.settimeout(timeout)
    out = []
    while len(out) < limit:
        r = try_reply(c)
        if r is None:
            return out
        out.append(r)
    return out


def codes(replies):
    return [r[0] for r in replies]


def expect(c, command, code, enhanced=None):
    """Send one command; assert the reply code (and enhanced code)."""
    got, lines = c.cmd(command) if isinstance(command, str) else \
        _cmd_bytes(c, command)
    assert got == code, (command, lines)
    if enhanced is not None:
        assert lines[-1][4:].startswith(enhanced), (command, lines)
    return lines


def _cmd_bytes(c, command):
    c.send(command + b"\r\n")
    return c.reply()


def send_in_thread(sock, data):
    """sendall in the background (so the caller can read replies while a
    large pipelined burst is still going out); returns the thread."""
    def run():
        try:
            sock.sendall(data)
        except OSError:
            pass            # the server may hang up mid-burst: that is fine
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def connect_from(port, src, timeout=10):
    """A RawSMTP whose socket is bound to the loopback source address src
    (127.0.0.x), so one host can look like several clients."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.bind((src, 0))
    s.connect(("127.0.0.1", port))
    c = RawSMTP.__new__(RawSMTP)
    c.sock = s
    c.buf = b""
    c.greeting = try_reply(c)
    return c


# --- what the daemon did ----------------------------------------------------

def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for pid %s" % pid)


def messages(d):
    """[(id, sender, envid, [rcpt addr...])] from the queue, read-only."""
    with d.db() as db:
        msgs = db.execute(
            "SELECT id, sender, envid FROM msg ORDER BY id").fetchall()
        out = []
        for mid, sender, envid in msgs:
            rc = [r[0] for r in db.execute(
                "SELECT addr FROM rcpt WHERE msg = ? ORDER BY id", (mid,))]
            out.append((mid, sender, envid, rc))
    return out


def msg_count(d):
    with d.db() as db:
        return db.execute("SELECT count(*) FROM msg").fetchone()[0]


def rcpt_rows(d):
    """[(addr, domain)] of every recipient row."""
    with d.db() as db:
        return db.execute(
            "SELECT addr, domain FROM rcpt ORDER BY id").fetchall()


def integrity_ok(d):
    with d.db() as db:
        return db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def strip_received(body):
    """The content as the client sent it (unstuffed): the stored body
    without the Received: field etrnd put in front of it."""
    assert body.startswith(b"Received: from "), body[:80]
    # the field ends with its date: "; Mon, 10 Jun 2024 12:00:00 +0000"
    end = body.index(b" +0000\r\n") + len(b" +0000\r\n")
    return body[end:]


def stored_contents(d):
    """qid -> content without our Received: field."""
    return {k: strip_received(v) for k, v in d.stored_bodies().items()}


def queue_files(d):
    """Every file under queue_dir, relative, sorted."""
    out = []
    for root, _dirs, files in os.walk(d.queue_dir):
        for f in files:
            out.append(os.path.relpath(os.path.join(root, f), d.queue_dir))
    return sorted(out)


def wait_for(pred, timeout=10, step=0.05):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


def dot_stuff(content):
    """RFC 5321 4.5.2: a line starting with '.' gets one more."""
    out = []
    for line in content.split(b"\r\n"):
        out.append(b"." + line if line.startswith(b".") else line)
    return b"\r\n".join(out)


# --- TLS ---------------------------------------------------------------------

def make_cert(directory):
    """A throw-away self-signed certificate for relay.test: (cert, key)."""
    cert = os.path.join(str(directory), "cert.pem")
    key = os.path.join(str(directory), "key.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
         "-subj", "/CN=relay.test", "-days", "2", "-keyout", key,
         "-out", cert],
        check=True, capture_output=True, timeout=60)
    return cert, key


def tls_extra(cert, key):
    return f"tls_cert = {cert}\ntls_key = {key}\n"


def client_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def wrap_tls(c, timeout=10):
    """Do the TLS handshake on c's socket (after the 220 to STARTTLS).
    Any bytes the client had buffered in clear are an error here."""
    assert c.buf == b"", "plaintext after the 220 to STARTTLS: %r" % c.buf
    c.sock.settimeout(timeout)
    c.sock = client_context().wrap_socket(c.sock, server_hostname="relay.test")
    return c


# --- a small file system for the queue ----------------------------------------

@pytest.fixture
def small_fs(tmp_path):
    """A 40 MB tmpfs as the first etrnd's queue_dir (d0/queue)."""
    mnt = tmp_path / "d0" / "queue"
    mnt.mkdir(parents=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=40m,mode=0700",
                        "tmpfs", str(mnt)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.fail("cannot mount a tmpfs here (the test needs root): " +
                    r.stderr.strip())
    yield str(mnt)
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def free_bytes(path):
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def fill_to(path, free_left):
    """A filler file that leaves about free_left bytes free."""
    filler = os.path.join(path, "filler")
    try:
        os.unlink(filler)
    except FileNotFoundError:
        pass
    n = free_bytes(path) - free_left
    assert n > 0
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        os.posix_fallocate(fd, 0, n)
    finally:
        os.close(fd)
    assert abs(free_bytes(path) - free_left) < (1 << 20)
    return filler


def fill_all(path):
    """Leave no byte free: fill_to() a little, then write until ENOSPC.
    Returns the filler files."""
    files = [fill_to(path, 256 << 10)]
    last = os.path.join(path, "filler-last")
    fd = os.open(last, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(fd, b"f" * 4096)
    except OSError:
        pass
    finally:
        os.close(fd)
    files.append(last)
    assert free_bytes(path) < 4096
    return files
