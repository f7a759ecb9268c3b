"""The other side of etrnd's deliveries in the end-to-end tests.

SmtpPeer   an aiosmtpd server (python3-aiosmtpd 1.4.3) on 127.0.0.x that
           records every message and whose replies a test programs: per
           RCPT address, to the final dot, hang or close after the dot,
           STARTTLS offered or not, 8BITMIME and PIPELINING advertised or
           not.
RawPeer    a small threaded raw-socket SMTP server for what aiosmtpd cannot
           be made to do: a 421 greeting, a 451 to DATA itself, closing the
           connection right after the dot, hostile multi-line replies.  It
           also records the DATA bytes exactly as they came over the wire.
PostfixSite a private Postfix instance: the site's own MTA, delivering
           into a Maildir, or a relay that answers ETRN.
NsdServer  tests/dns/testdns.sh (NSD serving the zone "test.") on a free
           port of 127.0.0.1.

Everything listens on 127.0.0.0/8 only and is bounded in time and memory.
"""

import asyncio
import os
import pwd
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP

HERE = os.path.dirname(os.path.abspath(__file__))
TESTDNS = os.path.join(HERE, "..", "dns", "testdns.sh")


def free_port(host="127.0.0.1"):
    s = socket.socket()
    s.bind((host, 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_for(pred, timeout=10.0, step=0.05):
    """pred()'s first true value within timeout, else its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


def make_cert(directory, cn="peer.test"):
    """A throw-away self-signed certificate: (cert path, key path)."""
    cert = os.path.join(str(directory), f"{cn}.crt")
    key = os.path.join(str(directory), f"{cn}.key")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
         "-subj", f"/CN={cn}", "-days", "2", "-keyout", key, "-out", cert],
        check=True, capture_output=True, timeout=60)
    return cert, key


class Received:
    """One message as a peer received it."""

    def __init__(self, mail_from, rcpt_tos, content, tls, mail_options=(),
                 wire=None):
        self.mail_from = mail_from
        self.rcpt_tos = list(rcpt_tos)
        self.content = content          # bytes, dot-unstuffed
        self.tls = tls
        self.mail_options = list(mail_options)
        self.wire = wire                # RawPeer: the DATA bytes as sent

    def __repr__(self):
        return (f"Received(from={self.mail_from!r}, to={self.rcpt_tos!r}, "
                f"{len(self.content)} bytes, tls={self.tls})")


# --- aiosmtpd ---------------------------------------------------------------

class _CountingSMTP(SMTP):
    """aiosmtpd's SMTP that tells its peer about each connection."""

    def __init__(self, peer, *args, **kw):
        super().__init__(*args, **kw)
        self._peer = peer

    def connection_made(self, transport):
        with self._peer.lock:
            self._peer.connections += 1
            self._peer._transports.append(transport)
        super().connection_made(transport)


class _PeerController(Controller):
    def __init__(self, peer, *args, **kw):
        self._peer = peer
        super().__init__(*args, **kw)

    def factory(self):
        return _CountingSMTP(self._peer, self.handler, **self.SMTP_kwargs)


class _Handler:
    def __init__(self, peer):
        self.peer = peer

    async def handle_EHLO(self, server, session, envelope, hostname,
                          responses):
        p = self.peer
        session.host_name = hostname
        with p.lock:
            p.commands.append(("EHLO", hostname))
        out = [r for r in responses
               if p.eightbitmime or r != "250-8BITMIME"]
        if p.pipelining:
            out.insert(1, "250-PIPELINING")
        return out

    async def handle_MAIL(self, server, session, envelope, address,
                          mail_options):
        p = self.peer
        with p.lock:
            p.commands.append(("MAIL", address, tuple(mail_options)))
        if p.mail_reply:
            return p.mail_reply
        envelope.mail_from = address        # "<>" for the null sender
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    async def handle_RCPT(self, server, session, envelope, address,
                          rcpt_options):
        p = self.peer
        with p.lock:
            p.commands.append(("RCPT", address, tuple(rcpt_options)))
        reply = p.rcpt_replies.get(address)
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        p = self.peer
        # aiosmtpd gives the null sender as "<>": recorded as ""
        sender = "" if envelope.mail_from == "<>" else envelope.mail_from
        rec = Received(sender, envelope.rcpt_tos,
                       bytes(envelope.original_content),
                       session.ssl is not None, envelope.mail_options)
        with p.lock:
            p.commands.append(("DOT",))
            p.dots.append(rec)
        after = p.after_dot
        if after == "hang":
            # never answer; stop() or release() ends the wait by closing
            while not p._released.is_set():
                await asyncio.sleep(0.05)
            server.transport.abort()
            return "451 4.3.0 never sent"
        if after == "close":
            # Close without a reply.  abort() marks the transport lost at
            # once, so the reply aiosmtpd pushes after this hook is dropped.
            server.transport.abort()
            return "451 4.3.0 never sent"
        if p.dot_delay:
            await asyncio.sleep(p.dot_delay)
        if after.startswith("2"):
            with p.lock:
                p.messages.append(rec)
        return after


class SmtpPeer:
    """An aiosmtpd server on host:port recording what it receives.

    Programmable (also while running, by setting the attributes):
      rcpt_replies  {address: "450 4.2.0 busy"}; others get 250
      mail_reply    a reply to every MAIL instead of 250
      after_dot     "250 ..." (default), any reply, "hang" or "close"
      dot_delay     seconds to wait before that reply (a slow next hop)
      tls           (cert, key): offer STARTTLS
      eightbitmime  advertise 8BITMIME (aiosmtpd always does unless its
                    decode_data is on; the EHLO hook takes it out)
      pipelining    advertise PIPELINING (aiosmtpd reads commands one by
                    one, so pipelined input works)
    """

    def __init__(self, host="127.0.0.1", port=None, *, rcpt_replies=None,
                 mail_reply=None, after_dot="250 2.0.0 OK queued",
                 tls=None, eightbitmime=True, pipelining=False,
                 hostname="peer.test"):
        self.host = host
        self.port = port or free_port(host)
        self.rcpt_replies = dict(rcpt_replies or {})
        self.mail_reply = mail_reply
        self.after_dot = after_dot
        self.dot_delay = 0
        self.eightbitmime = eightbitmime
        self.pipelining = pipelining
        self.lock = threading.Lock()
        self.connections = 0
        self.commands = []
        self.dots = []          # every message whose final dot arrived
        self.messages = []      # those answered 2xx
        self._transports = []
        self._released = threading.Event()
        kw = {}
        if tls:
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(*tls)
            kw["tls_context"] = ctx
        self._ctl = _PeerController(self, _Handler(self), hostname=host,
                                    port=self.port, server_hostname=hostname,
                                    enable_SMTPUTF8=False, **kw)

    def start(self):
        self._ctl.start()
        # the controller's own readiness probe is not a client
        wait_for(lambda: self.connections >= 1, 5)
        with self.lock:
            self.connections = 0
            self.commands.clear()
        return self

    def release(self):
        """End every "hang": the waiting connections are closed."""
        self._released.set()

    def stop(self):
        self._released.set()
        try:
            self._ctl.stop()
        except (AssertionError, RuntimeError):
            pass

    def verbs(self):
        with self.lock:
            return [c[0] for c in self.commands]

    def wait_messages(self, n, timeout=15):
        ok = wait_for(lambda: len(self.messages) >= n, timeout)
        assert ok, (f"{self.host}:{self.port} got {len(self.messages)} "
                    f"messages, expected {n}; commands {self.commands}")
        return list(self.messages)


# --- a raw-socket server for what aiosmtpd cannot do ------------------------

class RawPeer:
    """A deliberately small SMTP server on a thread per connection.

      greeting     the first line(s), bytes or str, CRLF added ("421 ...")
      ehlo         extension lines after the host name, e.g. ["PIPELINING"]
      hostile      None, or "endless" (continuation lines without end),
                   "longline" (a 1 MB reply line), "mixed" (250- then 550)
                   sent as the reply to EHLO
      mail_reply, data_reply  replies to MAIL and DATA (default 250/354)
      rcpt_replies {address: reply}
      after_dot    a reply, "close" (close without replying) or "hang"
      dot_delay    seconds to wait before answering the dot
      greeting "hang": accept and never greet (until stop/release)
      starttls     (cert, key): offer STARTTLS and do it
      starttls_reply  what is sent to STARTTLS before the handshake, as
                   is (default one 220 line; more lines test injection)

    Everything is bounded: a connection lives at most `lifetime` seconds,
    a line is at most 64 kB, the hostile writers stop after 20 MB.
    """

    def __init__(self, host="127.0.0.1", port=0, *, greeting=None,
                 ehlo=("PIPELINING", "8BITMIME", "SIZE 10240000"),
                 hostile=None, mail_reply=None, rcpt_replies=None,
                 data_reply=None, after_dot="250 2.0.0 OK", dot_delay=0,
                 lifetime=60, starttls=None,
                 starttls_reply="220 2.0.0 Ready to start TLS\r\n"):
        self.host = host
        self.greeting = greeting or "220 raw.test ESMTP"
        self.ehlo = list(ehlo)
        self.hostile = hostile
        self.mail_reply = mail_reply
        self.rcpt_replies = dict(rcpt_replies or {})
        self.data_reply = data_reply
        self.after_dot = after_dot
        self.dot_delay = dot_delay
        self.lifetime = lifetime
        self.starttls = starttls
        self.starttls_reply = starttls_reply
        self.lock = threading.Lock()
        self.connections = 0
        self.commands = []
        self.messages = []
        self.dots = []
        self.hostile_sent = 0           # bytes of the hostile reply written
        self.client_closed = []         # per connection: client closed first
        self._released = threading.Event()
        self._socks = []
        self._stop = False
        self._lsock = socket.socket()
        self._lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._lsock.bind((host, port))
        self._lsock.listen(16)
        self.port = self._lsock.getsockname()[1]
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def start(self):
        self._thread.start()
        return self

    def release(self):
        self._released.set()

    def stop(self):
        self._stop = True
        self._released.set()
        try:
            self._lsock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._lsock.close()
        with self.lock:
            socks = list(self._socks)
        for s in socks:
            try:
                s.close()
            except OSError:
                pass
        self._thread.join(5)

    def verbs(self):
        with self.lock:
            return [c[0] for c in self.commands]

    def wait_messages(self, n, timeout=15):
        ok = wait_for(lambda: len(self.messages) >= n, timeout)
        assert ok, (f"raw {self.host}:{self.port} got {len(self.messages)} "
                    f"messages, expected {n}; commands {self.commands}")
        return list(self.messages)

    def _accept(self):
        while not self._stop:
            try:
                s, _ = self._lsock.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
                self._socks.append(s)
            threading.Thread(target=self._serve, args=(s,),
                             daemon=True).start()

    # one connection
    def _serve(self, s):
        deadline = time.monotonic() + self.lifetime
        buf = bytearray()
        closed_by_client = False

        def send(data):
            if isinstance(data, str):
                data = data.encode()
            s.sendall(data)

        def line():
            nonlocal closed_by_client
            while b"\r\n" not in buf:
                if time.monotonic() > deadline or len(buf) > 65536:
                    raise TimeoutError
                s.settimeout(max(0.1, deadline - time.monotonic()))
                chunk = s.recv(65536)
                if not chunk:
                    closed_by_client = True
                    raise EOFError
                buf.extend(chunk)
            i = buf.index(b"\r\n")
            ln = bytes(buf[:i])
            del buf[:i + 2]
            return ln

        try:
            g = self.greeting
            if g == "hang":
                self._released.wait(self.lifetime)
                return
            send(g if isinstance(g, bytes) else g + "\r\n")
            if g[:1] not in ("2", b"2"):
                # RFC 5321 3.1: after a 554/421 greeting, wait for QUIT
                try:
                    while line().upper() != b"QUIT":
                        send("503 5.5.1 bad sequence\r\n")
                    send("221 2.0.0 bye\r\n")
                except (EOFError, TimeoutError, OSError):
                    pass
                return
            envelope = None
            while True:
                ln = line()
                verb = ln[:4].upper().decode("latin-1")
                arg = ln[5:].decode("latin-1")
                with self.lock:
                    self.commands.append((verb, arg))
                if verb == "EHLO":
                    if self.hostile:
                        if self._hostile(s):
                            closed_by_client = True     # write failed
                            return
                        # then wait for the client to go away
                        try:
                            while True:
                                line()
                        except ConnectionError:
                            closed_by_client = True
                        except (EOFError, TimeoutError, OSError):
                            pass
                        return
                    lines = ["raw.test"] + self.ehlo
                    if self.starttls and not isinstance(s, ssl.SSLSocket):
                        lines.append("STARTTLS")
                    out = "".join(
                        f"250{'-' if i < len(lines) - 1 else ' '}{x}\r\n"
                        for i, x in enumerate(lines))
                    send(out)
                elif verb == "HELO":
                    send("250 raw.test\r\n")
                elif verb == "STAR" and self.starttls and \
                        not isinstance(s, ssl.SSLSocket):
                    send(self.starttls_reply)
                    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
                    ctx.load_cert_chain(*self.starttls)
                    with self.lock:
                        self._socks.remove(s)
                    s.settimeout(10)
                    s = ctx.wrap_socket(s, server_side=True)
                    with self.lock:
                        self._socks.append(s)
                        self.commands.append(("TLS", ""))
                    buf.clear()     # nothing sent in clear counts
                    envelope = None
                elif verb == "MAIL":
                    if self.mail_reply:
                        send(self.mail_reply + "\r\n")
                        continue
                    addr = arg.split(":", 1)[1].split(">")[0].lstrip(" <")
                    envelope = [addr, [], arg]
                    send("250 2.1.0 OK\r\n")
                elif verb == "RCPT":
                    addr = arg.split(":", 1)[1].split(">")[0].lstrip(" <")
                    r = self.rcpt_replies.get(addr)
                    if envelope is None:
                        send("503 5.5.1 need MAIL\r\n")
                    elif r:
                        send(r + "\r\n")
                    else:
                        envelope[1].append(addr)
                        send("250 2.1.5 OK\r\n")
                elif verb == "DATA":
                    if self.data_reply:
                        send(self.data_reply + "\r\n")
                        continue
                    if envelope is None or not envelope[1]:
                        send("554 5.5.1 no valid recipients\r\n")
                        continue
                    send("354 go ahead\r\n")
                    wire = bytearray()
                    while True:
                        ln = line()
                        wire.extend(ln + b"\r\n")
                        if ln == b".":
                            break
                    content = b"".join(
                        (x[1:] if x.startswith(b".") else x) + b"\r\n"
                        for x in bytes(wire[:-3]).split(b"\r\n")[:-1])
                    rec = Received(envelope[0], envelope[1], content,
                                   isinstance(s, ssl.SSLSocket),
                                   envelope[2].split()[1:], bytes(wire))
                    envelope = None
                    with self.lock:
                        self.commands.append(("DOT", ""))
                        self.dots.append(rec)
                    if self.after_dot == "close":
                        return
                    if self.after_dot == "hang":
                        self._released.wait(self.lifetime)
                        return
                    if self.dot_delay:
                        time.sleep(self.dot_delay)
                    if self.after_dot.startswith("2"):
                        with self.lock:
                            self.messages.append(rec)
                    send(self.after_dot + "\r\n")
                elif verb == "RSET":
                    envelope = None
                    send("250 2.0.0 OK\r\n")
                elif verb == "NOOP":
                    send("250 2.0.0 OK\r\n")
                elif verb == "QUIT":
                    send("221 2.0.0 bye\r\n")
                    return
                else:
                    send("502 5.5.2 unknown\r\n")
        except (EOFError, TimeoutError, OSError):
            pass
        finally:
            with self.lock:
                self.client_closed.append(closed_by_client)
                if s in self._socks:
                    self._socks.remove(s)
            try:
                s.close()
            except OSError:
                pass

    def _hostile(self, s):
        """Write the hostile reply; stop when the client closes or 20 MB.
        True when a write failed: the client had closed the connection."""
        limit = 20 * 1024 * 1024
        s.settimeout(10)
        try:
            if self.hostile == "endless":
                chunk = b"".join(b"250-continuation line %06d\r\n" % i
                                 for i in range(1000))
                while self.hostile_sent < limit and not self._stop:
                    s.sendall(chunk)
                    self.hostile_sent += len(chunk)
            elif self.hostile == "longline":
                data = b"250-" + b"x" * (1024 * 1024) + b"\r\n250 ok\r\n"
                for i in range(0, len(data), 65536):
                    s.sendall(data[i:i + 65536])
                    self.hostile_sent += len(data[i:i + 65536])
            elif self.hostile == "mixed":
                data = b"250-raw.test\r\n250-PIPELINING\r\n550 5.0.0 no\r\n"
                s.sendall(data)
                self.hostile_sent = len(data)
        except OSError:
            return True     # the client closed on us: what we want
        return False


# --- the test DNS server ----------------------------------------------------

class NsdServer:
    """NSD serving the zone "test." (tests/dns/testdns.sh) on 127.0.0.1."""

    def __init__(self, directory):
        self.dir = str(directory)
        self.port = free_port()

    def start(self):
        if shutil.which("nsd") is None and not os.path.exists("/usr/sbin/nsd"):
            raise AssertionError("NSD is not installed (Debian package nsd;"
                                 " scripts/install-deps.sh installs it)")
        r = subprocess.run(["sh", TESTDNS, "start", self.dir, str(self.port)],
                           capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            raise AssertionError(f"testdns.sh start failed: {r.stderr}")
        return self

    @property
    def server(self):
        return f"127.0.0.1:{self.port}"

    def stop(self):
        subprocess.run(["sh", TESTDNS, "stop", self.dir, str(self.port)],
                       capture_output=True, timeout=30)


# --- Postfix ----------------------------------------------------------------

POSTFIX = "/usr/sbin/postfix"

# Every service runs unchained (chroot column "n"): the instance's files
# live in a temporary directory that a chroot would not contain.
_MASTER_CF = """\
{listen} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


class PostfixSite:
    """A private Postfix on 127.0.0.1:port with its own config_directory
    and queue_directory, started with `postfix -c DIR start` (as root).

    site (default): the site's own MTA; mail for `domains` is delivered by
        virtual(8) into one Maildir per domain, DIR/mail/<domain>/.
    relay=True: an ETRN-capable backup relay; mail for `domains` is
        relayed to `nexthop` ("[127.0.0.1]:PORT") by the relay transport,
        which is held (defer_transports = relay) until someone sends ETRN;
        fast_flush_domains = $relay_domains, so ETRN for them is accepted
        (250 "Queuing started") and others get 459.

    DIR is a new directory under /tmp, removed by stop().  Start takes
    3-4 s (postfix-script's checks), stop about 2 s.

    Quirks met on Debian 12 (Postfix 3.7):
      - DIR cannot live under pytest's tmp_path: /tmp/pytest-of-root is
        0700 and the daemons run as the postfix user ("open lock file
        .../master.lock: Permission denied").
      - virtual(8) refuses "$1" substitutions in virtual_mailbox_maps
        ("regular expression substitution is not allowed"), hence one
        Maildir per domain, not per user.
      - A regexp transport_maps is asked with the whole address only, never
        with the bare domain (transport(5)): /@domain$/, not /^domain$/.
      - virtual(8) refuses uid 0 (virtual_minimum_uid, default 100), so
        mail is written as the postfix user, which must own the Maildir
        base.
      - `postfix start` with -c needs no alternate_config_directories
        entry when run as root; postfix-script creates the queue
        subdirectories (postfix set-permissions is not needed).
      - maillog_file needs the postlog service in master.cf and a
        maillog_file_prefixes that covers it (default /var, /dev/stdout),
        or `postfix start` exits 1 with its fatal error sent to a syslog
        the test box does not have.
      - With no /etc/aliases, alias_maps must be empty, or local(8)
        lookups defer the mail; mydestination is empty so nothing is
        local.
    """

    def __init__(self, domains, *, relay=False, nexthop=None, port=None,
                 myhostname="site.test"):
        # Not under pytest's tmp_path: its /tmp/pytest-of-root is 0700 and
        # Postfix's daemons run as the postfix user, who must reach
        # data_directory and the Maildirs ("open lock file ...
        # master.lock: Permission denied").
        self.dir = tempfile.mkdtemp(prefix="etrnd-postfix-")
        os.chmod(self.dir, 0o755)
        self.domains = list(domains)
        self.relay = relay
        self.port = port or free_port()
        self.conf = os.path.join(self.dir, "etc")
        self.queue = os.path.join(self.dir, "spool")
        self.data = os.path.join(self.dir, "data")
        self.mail = os.path.join(self.dir, "mail")
        self.maillog = os.path.join(self.dir, "maillog")
        self.started = False
        pw = pwd.getpwnam("postfix")
        self.uid, self.gid = pw.pw_uid, pw.pw_gid
        for d in (self.conf, self.queue, self.data, self.mail):
            os.makedirs(d, exist_ok=True)
        os.chown(self.data, self.uid, self.gid)
        os.chown(self.mail, self.uid, self.gid)
        doms = " ".join(self.domains)
        main = [
            "compatibility_level = 3.6",
            f"queue_directory = {self.queue}",
            f"data_directory = {self.data}",
            "mail_owner = postfix",
            "setgid_group = postdrop",
            "inet_interfaces = 127.0.0.1",
            "inet_protocols = ipv4",
            f"myhostname = {myhostname}",
            f"mydomain = {myhostname}",
            f"myorigin = {myhostname}",
            "mydestination =",
            "mynetworks = 127.0.0.0/8",
            "alias_maps =",
            "alias_database =",
            "local_recipient_maps =",
            "smtputf8_enable = no",
            "biff = no",
            "smtpd_banner = $myhostname ESMTP",
            f"maillog_file = {self.maillog}",
            f"maillog_file_prefixes = {self.dir}",
            "smtpd_relay_restrictions = permit_mynetworks,"
            " reject_unauth_destination",
            # a test box has no resolver to speak of
            "disable_dns_lookups = yes",
            "smtp_host_lookup = native",
            # answer fast, retry fast
            "queue_run_delay = 1s",
            "minimal_backoff_time = 1s",
            "maximal_backoff_time = 2s",
            "smtpd_error_sleep_time = 0",
            "in_flow_delay = 0",
        ]
        if relay:
            tmap = os.path.join(self.conf, "transport")
            with open(tmap, "w") as f:
                # a regexp table is asked with the whole address only
                # (transport(5)), never with the bare domain
                for d in self.domains:
                    f.write(f"/@{d.replace('.', '[.]')}$/ relay:{nexthop}\n")
            main += [
                f"relay_domains = {doms}",
                f"transport_maps = regexp:{tmap}",
                "fast_flush_domains = $relay_domains",
                "defer_transports = relay",
                "smtpd_etrn_restrictions = permit_mynetworks, reject",
            ]
        else:
            vmap = os.path.join(self.conf, "vmailbox")
            with open(vmap, "w") as f:
                # One Maildir per domain (the trailing slash means Maildir):
                # virtual(8) refuses $1 substitutions in
                # virtual_mailbox_maps ("regular expression substitution is
                # not allowed"), so no per-user path from one regexp.
                for d in self.domains:
                    f.write(f"/@{d.replace('.', '[.]')}$/ {d}/\n")
            main += [
                f"virtual_mailbox_domains = {doms}",
                f"virtual_mailbox_base = {self.mail}",
                f"virtual_mailbox_maps = regexp:{vmap}",
                f"virtual_uid_maps = static:{self.uid}",
                f"virtual_gid_maps = static:{self.gid}",
            ]
        with open(os.path.join(self.conf, "main.cf"), "w") as f:
            f.write("\n".join(main) + "\n")
        with open(os.path.join(self.conf, "master.cf"), "w") as f:
            f.write(_MASTER_CF.format(listen=f"127.0.0.1:{self.port}"))

    def _postfix(self, *args, timeout=60):
        return subprocess.run([POSTFIX, "-c", self.conf, *args],
                              capture_output=True, text=True,
                              timeout=timeout)

    def start(self):
        if not os.path.exists(POSTFIX):
            raise AssertionError("Postfix is not installed (Debian package"
                                 " postfix; scripts/install-deps.sh)")
        r = self._postfix("start")
        if r.returncode != 0:
            raise AssertionError(f"postfix start failed: {r.stdout}"
                                 f"{r.stderr}\n{self.log()}")
        self.started = True
        ok = wait_for(self._answers, 20, 0.1)
        if not ok:
            raise AssertionError("postfix does not answer on port "
                                 f"{self.port}\n{self.log()}")
        return self

    def _answers(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), 1) as s:
                s.settimeout(5)
                return s.recv(512).startswith(b"220")
        except OSError:
            return False

    def stop(self):
        if self.started:
            r = self._postfix("stop")
            if r.returncode != 0:
                self._postfix("abort")
            self.started = False
            # master exits asynchronously; wait for its pid file to go
            pidf = os.path.join(self.queue, "pid", "master.pid")
            wait_for(lambda: not self._master_alive(pidf), 10, 0.1)
        shutil.rmtree(self.dir, ignore_errors=True)

    @staticmethod
    def _master_alive(pidf):
        try:
            with open(pidf) as f:
                pid = int(f.read().split()[0])
            os.kill(pid, 0)
            return True
        except (OSError, ValueError, IndexError):
            return False

    def log(self):
        try:
            with open(self.maillog, errors="replace") as f:
                return f.read()[-8000:]
        except OSError:
            return "(no maillog)"

    def maildir_messages(self, domain=None):
        """Bytes of every message delivered into the Maildirs (new/ and
        cur/), optionally only into that of one domain; virtual(8) puts
        each recipient in a Delivered-To: field."""
        out = []
        for d in self.domains if domain is None else [domain]:
            for sub in ("new", "cur"):
                path = os.path.join(self.mail, d, sub)
                try:
                    names = sorted(os.listdir(path))
                except FileNotFoundError:
                    continue
                for f in names:
                    with open(os.path.join(path, f), "rb") as fh:
                        out.append(fh.read())
        return out

    def flush_queue(self):
        self._postfix("flush")


# --- fixtures (import them into a test module to use them) -----------------

@pytest.fixture
def peer_factory():
    """make(SmtpPeer | RawPeer, **kw): a started peer, stopped after the
    test."""
    made = []

    def make(kind=SmtpPeer, **kw):
        p = kind(**kw)
        made.append(p)
        return p.start()

    yield make
    for p in made:
        p.stop()


@pytest.fixture(scope="module")
def nsd(tmp_path_factory):
    """NSD serving the zone "test." for the module; etrnd's dns_server=
    is nsd.server."""
    n = NsdServer(tmp_path_factory.mktemp("nsd")).start()
    yield n
    n.stop()


@pytest.fixture
def postfix_factory():
    made = []

    def make(domains, **kw):
        p = PostfixSite(domains, **kw)
        made.append(p)
        return p.start()

    yield make
    for p in made:
        p.stop()
