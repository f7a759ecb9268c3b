"""Helpers of the ODMR end-to-end tests (test_odmr.py): users_file lines,
a raw-socket ODMR customer that authenticates, sends ATRN and then plays
the reversed session's server with programmable replies.

Everything is on 127.0.0.0/8 and bounded by socket timeouts."""

import base64
import hashlib
import hmac
import os
import socket
import ssl
import subprocess
import time

# "doveadm pw -s CRAM-MD5 -p password" (Dovecot's HMAC-MD5 contexts): a
# {CRAM-MD5} line made by the real tool, not by etrnd's own code
DOVECOT_CRAM_PASSWORD = "password"
DOVECOT_CRAM_CTX = ("9186d855e11eba527a7a52ca82b313e1"
                    "80d62234f0acc9051b527243d41e2740")


def sha512_crypt(password):
    """A {SHA512-CRYPT} hash ($6$...) made by openssl, not by etrnd."""
    r = subprocess.run(["openssl", "passwd", "-6", "-stdin"],
                       input=password, capture_output=True, text=True,
                       check=True, timeout=30)
    h = r.stdout.strip()
    assert h.startswith("$6$"), h
    return h


def tls_client(sock):
    """sock under TLS as a client (the test certificate is self-signed)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx.wrap_socket(sock, server_hostname="relay.test")


def write_users(path, lines, mode=0o600):
    path = str(path)
    with open(path, "w") as f:
        f.write("".join(ln + "\n" for ln in lines))
    os.chmod(path, mode)
    return path


def cram_digest(user, password, challenge_b64):
    """The base64 CRAM-MD5 response (RFC 2195) to a 334 challenge."""
    chal = base64.b64decode(challenge_b64)
    mac = hmac.new(password.encode(), chal, hashlib.md5).hexdigest()
    return base64.b64encode(f"{user} {mac}".encode()).decode()


def plain_b64(user, password, authzid=""):
    return base64.b64encode(
        f"{authzid}\0{user}\0{password}".encode()).decode()


class Msg:
    """One message of a reversed session as the customer saw it."""

    def __init__(self, mail_from):
        self.mail_from = mail_from
        self.rcpts = []         # (address, reply we gave)
        self.data = None        # the content, dot-unstuffed
        self.dot_reply = None   # what we answered to the final dot

    @property
    def accepted(self):
        """The recipients a 2xx to RCPT and to the dot handed over."""
        if not self.dot_reply or not self.dot_reply.startswith("2"):
            return []
        return [a for a, r in self.rcpts if r.startswith("2")]

    def __repr__(self):
        return (f"Msg(from={self.mail_from!r}, rcpts={self.rcpts!r}, "
                f"dot={self.dot_reply!r})")


class Customer:
    """An ODMR customer over a raw socket, then the server of the reversed
    session (RFC 2645 section 5)."""

    def __init__(self, port, src="127.0.0.1", timeout=15):
        self.sock = socket.socket()
        self.sock.settimeout(timeout)
        self.timeout = timeout
        self.sock.bind((src, 0))
        self.sock.connect(("127.0.0.1", port))
        self.buf = b""
        self.tls = False
        self.greeting = self.reply()
        # the reversed session
        self.commands = []      # every line etrnd sent after our 220
        self.messages = []      # Msg, in order
        self.ahead = []         # serve(probe=True): pipelined after MAIL
        self.closed_by_peer = False

    # --- the client side: before the reversal -----------------------------

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def line(self, timeout=None):
        self.sock.settimeout(timeout or self.timeout)
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed; buffered %r" % self.buf)
            self.buf += chunk
        ln, self.buf = self.buf.split(b"\r\n", 1)
        return ln.decode("latin-1")

    def reply(self, timeout=None):
        lines = []
        while True:
            ln = self.line(timeout)
            lines.append(ln)
            if len(ln) < 4 or ln[3] != "-":
                return int(ln[:3]), lines

    def cmd(self, text, timeout=None):
        self.send(text + "\r\n")
        return self.reply(timeout)

    def timed_cmd(self, text, timeout=None):
        """cmd() and the seconds its reply took."""
        t = time.monotonic()
        r = self.cmd(text, timeout)
        return r, time.monotonic() - t

    def ehlo(self, name="customer.test"):
        code, lines = self.cmd(f"EHLO {name}")
        assert code == 250, lines
        return lines

    def starttls(self):
        code, lines = self.cmd("STARTTLS")
        assert code == 220, lines
        assert self.buf == b"", self.buf
        self.sock = tls_client(self.sock)
        self.tls = True

    def auth_cram(self, user, password):
        code, lines = self.cmd("AUTH CRAM-MD5")
        assert code == 334, lines
        return self.cmd(cram_digest(user, password, lines[0][4:]))

    def auth_plain(self, user, password, authzid=""):
        return self.cmd("AUTH PLAIN " + plain_b64(user, password, authzid))

    def login(self, user, password):
        """EHLO and a successful CRAM-MD5 AUTH."""
        self.ehlo()
        code, lines = self.auth_cram(user, password)
        assert code == 235, lines

    def atrn(self, domains=None, extra=b""):
        """ATRN [domains]; extra bytes go in the same send (E10)."""
        line = b"ATRN" + (b" " + ",".join(domains).encode()
                          if domains else b"") + b"\r\n"
        self.send(line + extra)
        return self.reply()

    def silent(self, seconds):
        """True when etrnd sends nothing for that long."""
        self.sock.settimeout(seconds)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            return True
        self.buf += chunk
        return False

    def closed(self, timeout=5):
        """True when etrnd closes the connection within timeout."""
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except socket.timeout:
            return False
        except OSError:
            return True

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    # --- the server side: the reversed session -----------------------------

    def serve(self, greeting="220 customer.test ESMTP", ehlo=(),
              rcpt=None, dot=None, mid_data=None, hook=None,
              max_messages=50, deadline=60, probe=False):
        """Play the server until QUIT or until the connection ends.

        rcpt(address) -> reply (default "250 2.1.5 OK")
        dot(msg) -> reply, "close" (close without answering) or
                  ("hang", seconds): say nothing, then close
        mid_data: close after this many DATA bytes of the first message
        hook(point, msg): called at "mail", "data", "dot" (the whole
                  message read, before the answer), "replied" (after the
                  answer to the dot) and "quit"; returning "close" closes
        Returns "quit", "eof" (etrnd closed) or "closed" (we did).
        probe: before answering each MAIL, wait 0.5 s and record in
        self.ahead whether etrnd sent more commands without waiting for
        the answer (it pipelined).
        More than max_messages MAIL commands, or a session longer than
        deadline seconds, fail the test (an endless re-offer would
        otherwise never let a socket timeout fire)."""
        end = time.monotonic() + deadline
        rcpt = rcpt or (lambda a: "250 2.1.5 OK")
        dot = dot or (lambda m: "250 2.0.0 OK")
        hook = hook or (lambda point, m: None)
        self.send(greeting + "\r\n")
        cur = None
        try:
            while True:
                ln = self.line()
                self.commands.append(ln)
                verb = ln[:4].upper()
                if time.monotonic() > end:
                    raise AssertionError(
                        f"reversed session longer than {deadline} s: "
                        f"{len(self.messages)} messages, last {ln!r}")
                if verb == "EHLO":
                    ls = ["customer.test"] + list(ehlo)
                    self.send("".join(
                        f"250{'-' if i < len(ls) - 1 else ' '}{x}\r\n"
                        for i, x in enumerate(ls)))
                elif verb == "HELO":
                    self.send("250 customer.test\r\n")
                elif verb == "MAIL":
                    if len(self.messages) >= max_messages:
                        raise AssertionError(
                            f"more than {max_messages} messages offered in "
                            f"one session: {self.messages[-3:]!r}")
                    cur = Msg(ln.split(":", 1)[1].split(">")[0].lstrip(" <"))
                    self.messages.append(cur)
                    if probe:
                        self.ahead.append(b"\r\n" in self.buf or
                                          not self.silent(0.5))
                    if hook("mail", cur) == "close":
                        return self._close()
                    self.send("250 2.1.0 OK\r\n")
                elif verb == "RCPT":
                    addr = ln.split(":", 1)[1].split(">")[0].lstrip(" <")
                    r = rcpt(addr)
                    cur.rcpts.append((addr, r))
                    self.send(r + "\r\n")
                elif verb == "DATA":
                    if not any(r.startswith("2") for _, r in cur.rcpts):
                        self.send("554 5.5.1 no valid recipients\r\n")
                        continue
                    if hook("data", cur) == "close":
                        return self._close()
                    self.send("354 go ahead\r\n")
                    res = self._data(cur, mid_data)
                    if res:
                        return res
                    if hook("dot", cur) == "close":
                        return self._close()
                    r = dot(cur)
                    if r == "close":
                        return self._close()
                    if isinstance(r, tuple) and r[0] == "hang":
                        self.silent(r[1])
                        return self._close()
                    cur.dot_reply = r
                    self.send(r + "\r\n")
                    if hook("replied", cur) == "close":
                        return self._close()
                elif verb == "RSET":
                    cur = None
                    self.send("250 2.0.0 OK\r\n")
                elif verb == "NOOP":
                    self.send("250 2.0.0 OK\r\n")
                elif verb == "QUIT":
                    if hook("quit", cur) == "close":
                        return self._close()
                    self.send("221 2.0.0 bye\r\n")
                    self.close()
                    return "quit"
                else:
                    self.send("502 5.5.2 unknown\r\n")
        except (EOFError, ConnectionError):
            self.closed_by_peer = True
            self.close()
            return "eof"
        except BaseException:
            self.close()
            raise

    def _data(self, cur, mid_data):
        raw = bytearray()
        while True:
            if mid_data is not None and len(raw) >= mid_data:
                return self._close()
            self.sock.settimeout(self.timeout)
            while b"\r\n" not in self.buf:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise EOFError("closed in DATA")
                self.buf += chunk
            ln, self.buf = self.buf.split(b"\r\n", 1)
            if ln == b".":
                break
            raw += (ln[1:] if ln.startswith(b".") else ln) + b"\r\n"
        cur.data = bytes(raw)
        return None

    def _close(self):
        self.close()
        return "closed"

    def delivered(self):
        """Every (recipient, data) a 2xx to RCPT and to the dot took."""
        return [(a, m.data) for m in self.messages for a in m.accepted]
