"""Start, stop and talk to an etrnd on loopback for the tests."""

import os
import re
import signal
import socket
import subprocess
import time

DEFAULT_DOMAINS = """
[domain example.org]
route = [127.0.0.1]:1
mode = hold
subdomains = yes

[domain example.net]
route = mx
mode = hold

[domain served.example]
route = [127.0.0.1]:1
mode = hold
"""

SANITIZER = re.compile(r"ERROR: AddressSanitizer|ERROR: LeakSanitizer|"
                       r"runtime error:|SUMMARY: UndefinedBehaviorSanitizer")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Etrnd:
    def __init__(self, build, workdir, extra="", domains=None, **kw):
        self.build = os.path.abspath(str(build))
        self.dir = str(workdir)
        os.makedirs(self.dir, exist_ok=True)
        self.port = kw.get("port") or free_port()
        self.queue_dir = os.path.join(self.dir, "queue")
        self.control = os.path.join(self.dir, "control.sock")
        self.conf = os.path.join(self.dir, "etrnd.conf")
        self.log = os.path.join(self.dir, "etrnd.log")
        self.proc = None
        self.exits = []
        text = (f"hostname = relay.test\n"
                f"listen = 127.0.0.1:{self.port}\n"
                f"queue_dir = {self.queue_dir}\n"
                f"control = {self.control}\n"
                f"etrn_clients = {kw.get('etrn_clients', '127.0.0.0/8')}\n"
                # no DNS from tests unless a test starts its own server
                # (dns_server=, e.g. peers.NsdServer(...).server)
                f"dns_server = {kw.get('dns_server', '127.0.0.1:1')}\n"
                f"{extra}\n"
                f"{DEFAULT_DOMAINS if domains is None else domains}\n")
        with open(self.conf, "w") as f:
            f.write(text)

    @property
    def etrnd_bin(self):
        return os.path.join(self.build, "etrnd")

    @property
    def etrnctl_bin(self):
        return os.path.join(self.build, "etrnctl")

    def start(self, timeout=20, env=None, prefix=()):
        """Start etrnd; env: extra environment (e.g. ETRND_FAULT, a crash
        point of src/util/fault.h), for this start only; prefix: a command
        that runs etrnd (e.g. prlimit with its options and "--")."""
        # a socket left by a killed etrnd would look like a started one
        try:
            os.unlink(self.control)
        except FileNotFoundError:
            pass
        logf = open(self.log, "ab")
        extra_env, env = env or {}, dict(os.environ)
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1")
        env.update(extra_env)
        self.proc = subprocess.Popen([*prefix, self.etrnd_bin, "-c", self.conf],
                                     stdout=logf, stderr=logf, env=env)
        logf.close()
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("etrnd exited at start:\n" + self.read_log())
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                if os.path.exists(self.control):
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("etrnd did not start:\n" + self.read_log())

    def wait_killed(self, timeout=30):
        """Wait for etrnd to die by SIGKILL (a crash point it reached)."""
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("etrnd did not reach its crash point:\n"
                                 + self.read_log()[-3000:])
        assert rc == -signal.SIGKILL, (rc, self.read_log()[-3000:])
        self.exits.append(("fault point", rc))
        self.proc = None

    def kill9(self):
        """SIGKILL: the crash the durability tests inflict."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self.exits.append(("killed", self.proc.returncode))
        self.proc = None

    def stop(self):
        """SIGTERM and wait; returns a list of problems found."""
        problems = []
        if self.proc is not None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                rc = self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                rc = self.proc.wait()
                problems.append("etrnd did not stop within 30 s of SIGTERM")
            if rc != 0:
                problems.append(f"etrnd exited with status {rc}")
            self.proc = None
        text = self.read_log()
        if SANITIZER.search(text):
            problems.append("sanitizer report in etrnd's log:\n" + text[-6000:])
        if problems:
            problems.append(f"(log: {self.log})")
        return problems

    def read_log(self):
        try:
            with open(self.log, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def etrnctl(self, *args, check=True):
        r = subprocess.run([self.etrnctl_bin, "-c", self.conf, *args],
                           capture_output=True, text=True, timeout=30)
        if check and r.returncode != 0:
            raise AssertionError(f"etrnctl {args} failed ({r.returncode}): "
                                 f"{r.stderr}")
        return r

    def queued_json(self, domain=None):
        import json
        args = ["--json", "list"] + ([domain] if domain else [])
        return json.loads(self.etrnctl(*args).stdout)

    def db(self):
        """queue.db, read-only.  etrnd answers 250 once a message's record
        is durable and commits its rows just after; its own queries wait
        for those rows.  While it runs, one etrnctl query first, so the
        file shows every message that got its 250."""
        import sqlite3
        if self.proc is not None and self.proc.poll() is None:
            self.etrnctl("summary", check=False)
        return sqlite3.connect(f"file:{self.queue_dir}/queue.db?mode=ro",
                               uri=True)

    def stored_bodies(self):
        """qid -> body bytes as stored (read back from the segment files)."""
        import struct
        out = {}
        with self.db() as db:
            rows = db.execute("SELECT id, seg, off, size FROM msg").fetchall()
        for mid, seg, off, size in rows:
            with open(f"{self.queue_dir}/seg/{seg:08X}.seg", "rb") as f:
                f.seek(off)
                hdr = f.read(40)
                assert hdr[:4] == b"ETQ2"
                (length,) = struct.unpack("<I", hdr[4:8])
                assert length == size
                out["%016X" % mid] = f.read(length)
        return out

    # helpers of the delivery and ETRN tests (test_delivery, test_etrn)

    @property
    def etrn_bin(self):
        return os.path.join(self.build, "etrn")

    def show_json(self, qid):
        """etrnctl --json show QID as a dict (rcpt_N entries: address,
        state, attempts, next_try, notify, orcpt, last_reply), or None
        when the message is gone."""
        import json
        r = self.etrnctl("--json", "show", qid, check=False)
        if r.returncode != 0:
            return None
        return json.loads(r.stdout)

    def submit(self, sender, rcpts, body=b"Subject: test\r\n\r\nhello\r\n",
               mail_params=(), rcpt_params=None, ehlo="client.test"):
        """One message over SMTP (smtplib: it dot-stuffs); every recipient
        must be accepted.  rcpt_params: {address: [params]}.  Returns the
        queue id from the 250 to the dot."""
        import smtplib
        rcpt_params = rcpt_params or {}
        with smtplib.SMTP("127.0.0.1", self.port, timeout=30) as s:
            s.ehlo(ehlo)
            code, msg = s.mail(sender, list(mail_params))
            assert code == 250, (code, msg)
            for r in rcpts:
                code, msg = s.rcpt(r, list(rcpt_params.get(r, ())))
                assert code == 250, (r, code, msg)
            code, msg = s.data(body)
            assert code == 250, (code, msg)
        m = re.search(rb"queued as ([0-9A-F]{16})", msg)
        assert m, msg
        return m.group(1).decode()

    def connect_from(self, src="127.0.0.1", port=None, timeout=10):
        """A RawSMTP from the loopback address src (127.0.0.x), to our
        port or to another of our listeners."""
        s = socket.socket()
        s.settimeout(timeout)
        s.bind((src, 0))
        s.connect(("127.0.0.1", port or self.port))
        c = RawSMTP.__new__(RawSMTP)
        c.sock = s
        c.buf = b""
        c.greeting = c.reply()
        return c

    def session(self, src="127.0.0.1", port=None, ehlo="site.test"):
        """connect_from() and a successful EHLO."""
        c = self.connect_from(src, port)
        assert c.greeting[0] == 220, c.greeting
        code, lines = c.cmd(f"EHLO {ehlo}")
        assert code == 250, lines
        return c

    def etrn(self, node, src="127.0.0.1", port=None):
        """One ETRN in a new session: (code, first reply line)."""
        if isinstance(node, str):
            node = node.encode()
        c = self.session(src, port)
        try:
            c.send(b"ETRN " + node + b"\r\n")
            code, lines = c.reply()
            return code, lines[0]
        finally:
            c.close()

    def pending(self):
        """The sorted addresses of every recipient still queued."""
        return sorted(r["recipient"] for r in self.queued_json())

    def log_lines(self, *needles):
        """The lines of etrnd's log that contain every one of needles."""
        return [ln for ln in self.read_log().splitlines()
                if all(n in ln for n in needles)]

    @property
    def pid(self):
        return self.proc.pid if self.proc is not None else None

    def connect(self, timeout=10):
        return RawSMTP("127.0.0.1", self.port, timeout)


class RawSMTP:
    """A byte-exact SMTP client for hostile inputs smtplib will not send."""

    def __init__(self, host, port, timeout=10):
        self.sock = socket.create_connection((host, port), timeout)
        self.buf = b""
        self.greeting = self.reply()

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed; buffered: %r" % self.buf)
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode("latin-1")

    def reply(self):
        """One whole (possibly multi-line) reply: (code, [lines])."""
        lines = []
        while True:
            ln = self.line()
            lines.append(ln)
            if len(ln) < 4 or ln[3] != "-":
                return int(ln[:3]), lines

    def cmd(self, text):
        self.send(text + "\r\n")
        return self.reply()

    def closed(self, timeout=5):
        """True when the server closes the connection (reads to EOF)."""
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True

    def close(self):
        self.sock.close()
