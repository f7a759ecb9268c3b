"""Operations end to end: what an operator of etrnd relies on.

/metrics (Prometheus text) and the HTML status page (also rendered by a
real headless Chromium), SIGHUP reloads (config, users file and TLS
certificate together, or nothing), SIGTERM draining, every etrnctl command
in text and JSON with its error exits, and logging to syslog.

Everything listens on 127.0.0.0/8 and is bounded in time; a test that
cannot run fails."""

import json
import os
import pwd
import re
import shutil
import signal
import smtplib
import socket
import ssl
import struct
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from html.parser import HTMLParser

from etrnd_harness import free_port
from odmr_util import Customer, write_users
from peers import SmtpPeer, wait_for
from peers import free_port as free_port_on
from peers import peer_factory  # noqa: F401 (fixture)

BODY = b"Subject: operations\r\n\r\nhello\r\n"


# --- helpers -----------------------------------------------------------------

def http(url, method="GET", data=None, timeout=10):
    """(status, headers, body text) of one request; errors are answers."""
    req = urllib.request.Request(url, data=data, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.headers, r.read().decode("utf-8")
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode("utf-8", "replace")


METRIC_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*"'
SAMPLE_RE = re.compile(rf"^({METRIC_NAME})(?:\{{((?:{LABEL})(?:,{LABEL})*)\}})?"
                       r" (\S+)$")
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\.)*)"')
META_RE = re.compile(rf"^# (HELP|TYPE) ({METRIC_NAME}) (.+)$")


def parse_prometheus(text):
    """Strict parse of the text exposition format: {(name, labels): value}
    plus checks that every sample's family has # HELP and # TYPE (before
    its samples), that no series appears twice, and that values are
    numbers."""
    assert text.endswith("\n"), "the exposition must end with a newline"
    helps, types, samples = {}, {}, {}
    for ln in text.split("\n")[:-1]:
        assert ln, "blank line in /metrics"
        if ln.startswith("#"):
            m = META_RE.match(ln)
            assert m, f"bad comment line: {ln!r}"
            kind, name, rest = m.groups()
            table = helps if kind == "HELP" else types
            assert name not in table, f"second # {kind} for {name}"
            table[name] = rest
            if kind == "TYPE":
                assert rest in ("counter", "gauge", "histogram", "summary",
                                "untyped"), ln
            continue
        m = SAMPLE_RE.match(ln)
        assert m, f"not `name{{labels}} value` or `name value`: {ln!r}"
        name, labels, value = m.groups()
        lab = tuple(LABEL_RE.findall(labels or ""))
        fam = name
        if name not in types:
            fam = re.sub(r"_(bucket|sum|count)$", "", name)
            assert types.get(fam) == "histogram", \
                f"sample {name} has no # TYPE before it"
        assert fam in helps, f"{fam} has no # HELP"
        v = float(value)        # "+Inf" is not a sample value here
        assert (name, lab) not in samples, f"series twice: {ln!r}"
        samples[(name, lab)] = v
    return samples, types


class Metrics:
    def __init__(self, base):
        self.base = base

    def scrape(self):
        status, headers, body = http(self.base + "/metrics")
        assert status == 200, (status, body)
        assert headers["Content-Type"].startswith("text/plain; version=0.0.4"), \
            headers["Content-Type"]
        samples, types = parse_prometheus(body)
        return samples, types, body


def val(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))),
                       samples.get((name, tuple(labels.items()))))


def series(samples, name):
    """{label value: sample value} of a metric with one label."""
    return {lab[0][1]: v for (n, lab), v in samples.items()
            if n == name and len(lab) == 1}


COUNTERS = ("etrnd_smtp_sessions_total", "etrnd_odmr_sessions_total",
            "etrnd_connections_refused_total", "etrnd_early_talkers_total",
            "etrnd_messages_accepted_total", "etrnd_messages_refused_total",
            "etrnd_recipients_refused_total", "etrnd_store_errors_total",
            "etrnd_recipients_delivered_total",
            "etrnd_recipients_deferred_total",
            "etrnd_recipients_bounced_total", "etrnd_dsn_total",
            "etrnd_auth_success_total", "etrnd_auth_failures_total")
ETRN_CODES = ("250", "251", "253", "458", "459", "500", "501", "503", "other")
ATRN_CODES = ("250", "450", "451", "453", "501", "530", "other")


class TableParser(HTMLParser):
    """The cell texts of table#ID, row by row (nested tables ignored), and
    whether an element with id=other_id exists."""

    def __init__(self, table_id, other_id=None):
        super().__init__()
        self.table_id, self.other_id = table_id, other_id
        self.depth = 0
        self.rows = []
        self.cell = None
        self.found = False
        self.other_found = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if self.other_id and a.get("id") == self.other_id:
            self.other_found = (tag, True)
        if tag == "table":
            if self.depth:
                self.depth += 1
            elif a.get("id") == self.table_id:
                self.depth = 1
                self.found = True
        elif self.depth == 1 and tag == "tr":
            self.rows.append([])
        elif self.depth == 1 and tag in ("td", "th"):
            self.cell = []

    def handle_endtag(self, tag):
        if tag == "table" and self.depth:
            self.depth -= 1
        elif self.depth == 1 and tag in ("td", "th") and self.cell is not None:
            self.rows[-1].append(" ".join("".join(self.cell).split()))
            self.cell = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell.append(data)


def domain_table(html):
    """table#domains as {domain: row}; the header row checked; ul#runs
    must exist."""
    p = TableParser("domains", "runs")
    p.feed(html)
    p.close()
    assert p.found, "no table#domains:\n" + html[:3000]
    assert p.other_found and p.other_found[0] == "ul", "no ul#runs"
    assert p.rows and p.rows[0] == ["Domain", "Messages", "Recipients",
                                    "Oldest", "Last ETRN/ATRN",
                                    "Delivering now"], p.rows[:1]
    out = {}
    for row in p.rows[1:]:
        if len(row) == 1 and row[0] == "No mail waiting.":
            continue
        assert len(row) == 6, row
        assert row[0] not in out, f"{row[0]} twice"
        out[row[0]] = row
    return out


def count_lines(d, needle):
    return len(d.log_lines(needle))


def wait_log(d, needle, n, timeout=10):
    ok = wait_for(lambda: count_lines(d, needle) >= n, timeout)
    assert ok, f"{needle!r} not logged {n} time(s):\n" + d.read_log()[-4000:]


def hup(d, needle, timeout=10):
    """SIGHUP and wait for one more log line containing needle."""
    before = count_lines(d, needle)
    d.proc.send_signal(signal.SIGHUP)
    wait_log(d, needle, before + 1, timeout)


def ctl(d, *args, sock=None):
    """etrnctl without checking its status."""
    where = ["-s", sock] if sock else ["-c", d.conf]
    return subprocess.run([d.etrnctl_bin, *where, *args], capture_output=True,
                          text=True, timeout=30)


def refused(port, host="127.0.0.1"):
    try:
        socket.create_connection((host, port), 1).close()
        return False
    except ConnectionRefusedError:
        return True


def listening_addrs(port):
    """Every local address with a TCP socket in LISTEN on port (IPv4 and
    IPv6), from /proc/net/tcp{,6}."""
    out = []
    for f in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = open(f).read().splitlines()[1:]
        except FileNotFoundError:
            continue
        for ln in lines:
            fields = ln.split()
            addr, hport = fields[1].rsplit(":", 1)
            if fields[3] == "0A" and int(hport, 16) == port:
                if len(addr) == 8:
                    out.append(socket.inet_ntop(
                        socket.AF_INET, struct.pack("<I", int(addr, 16))))
                else:
                    raw = bytes.fromhex(addr)
                    raw = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))
                    out.append(socket.inet_ntop(socket.AF_INET6, raw))
    return out


def gen_cert(cert, key, cn):
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                    "-nodes", "-subj", f"/CN={cn}", "-days", "2",
                    "-keyout", key, "-out", cert],
                   check=True, capture_output=True, timeout=60)
    with open(cert) as f:
        return ssl.PEM_cert_to_DER_cert(f.read())


def starttls_cert(port):
    """The DER certificate a new STARTTLS session on port is shown."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with smtplib.SMTP("127.0.0.1", port, timeout=15) as s:
        s.ehlo("client.test")
        assert s.has_extn("starttls"), s.esmtp_features
        code, msg = s.starttls(context=ctx)
        assert code == 220, (code, msg)
        return s.sock.getpeercert(binary_form=True)


def der_cn(der, tmp):
    path = os.path.join(str(tmp), "peer.der")
    with open(path, "wb") as f:
        f.write(der)
    r = subprocess.run(["openssl", "x509", "-inform", "DER", "-in", path,
                        "-noout", "-subject", "-nameopt", "RFC2253"],
                       capture_output=True, text=True, timeout=30, check=True)
    m = re.search(r"CN=([^,\n]+)", r.stdout)
    assert m, r.stdout
    return m.group(1)


def send_one(port, sender, rcpts, body=BODY, src="127.0.0.1"):
    """One message over a fresh session: the 250's text."""
    s = smtplib.SMTP(timeout=15, source_address=(src, 0))
    try:
        s.connect("127.0.0.1", port)
        s.ehlo("client.test")
        assert s.mail(sender)[0] == 250
        for r in rcpts:
            code, msg = s.rcpt(r)
            assert code == 250, (r, code, msg)
        code, msg = s.data(body)
        assert code == 250, (code, msg)
        s.quit()
        return msg
    finally:
        s.close()


# --- 1. /metrics --------------------------------------------------------------

def test_metrics_counters_histogram_and_domain_gauges(etrnd_factory,
                                                      peer_factory):
    peer = peer_factory(SmtpPeer)
    mport = free_port_on("127.0.0.3")
    d = etrnd_factory(extra=f"metrics_listen = 127.0.0.3:{mport}\n",
                      domains=f"""
[domain example.org]
route = [127.0.0.1]:{peer.port}
mode = hold
subdomains = yes

[domain example.net]
route = [127.0.0.1]:{peer.port}
mode = hold

[domain empty.example]
route = [127.0.0.1]:{peer.port}
mode = hold
""")
    m = Metrics(f"http://127.0.0.3:{mport}")

    # it binds exactly where metrics_listen says, nowhere else
    assert listening_addrs(mport) == ["127.0.0.3"], listening_addrs(mport)
    assert refused(mport, "127.0.0.1")

    base, types, _ = m.scrape()
    for name in COUNTERS:
        assert types.get(name) == "counter", name
        assert val(base, name) is not None, f"{name} missing"
        if name != "etrnd_smtp_sessions_total":
            assert val(base, name) == 0, (name, val(base, name))
    # the harness's readiness probes are SMTP sessions too: count from here
    sessions0 = val(base, "etrnd_smtp_sessions_total")
    assert types.get("etrnd_commit_seconds") == "histogram"
    assert types.get("etrnd_queue_messages") == "gauge"

    # 4 messages, 5 recipients; one relay attempt refused
    d.submit("s@client.test", ["a@example.org", "b@example.org"], BODY)
    d.submit("s@client.test", ["c@example.org"], BODY)
    d.submit("s@client.test", ["x@example.net"], BODY)
    d.submit("s@client.test", ["e@example.org", "z@example.net"], BODY)
    c = d.session()
    assert c.cmd("MAIL FROM:<s@client.test>")[0] == 250
    code, lines = c.cmd("RCPT TO:<victim@elsewhere.test>")
    assert code // 100 == 5, lines
    assert c.cmd("QUIT")[0] == 221
    c.close()
    # ETRN: 251 once, 459 twice, 253 once (which delivers to the peer)
    c = d.session()
    assert c.cmd("ETRN empty.example")[0] == 251
    assert c.cmd("ETRN unknown.example")[0] == 459
    assert c.cmd("ETRN @com")[0] == 459
    code, lines = c.cmd("ETRN example.net")
    assert code == 253, lines
    assert c.cmd("QUIT")[0] == 221
    c.close()
    msgs = peer.wait_messages(2)
    assert sorted(r for x in msgs for r in x.rcpt_tos) == [
        "x@example.net", "z@example.net"]

    expect = {name: 0 for name in COUNTERS}
    expect.update({"etrnd_smtp_sessions_total": sessions0 + 6,
                   "etrnd_messages_accepted_total": 4,
                   "etrnd_recipients_refused_total": 1,
                   "etrnd_recipients_delivered_total": 2})

    def counters():
        s, _, _ = m.scrape()
        return s, {n: val(s, n) for n in COUNTERS}
    ok = wait_for(lambda: counters()[1] == expect, 10, 0.2)
    s, got = counters()
    assert ok, {n: (got[n], expect[n]) for n in COUNTERS if got[n] != expect[n]}

    # ETRN and ATRN by code: every code present, the right ones counted
    assert series(s, "etrnd_etrn_requests_total") == {
        code: {"251": 1, "253": 1, "459": 2}.get(code, 0)
        for code in ETRN_CODES}
    assert series(s, "etrnd_atrn_requests_total") == {
        code: 0 for code in ATRN_CODES}

    # the commit histogram: cumulative, +Inf == _count == messages accepted
    buckets = sorted(((float(lab[0][1]), v) for (n, lab), v in s.items()
                      if n == "etrnd_commit_seconds_bucket"),
                     key=lambda b: b[0])
    assert len(buckets) >= 2 and buckets[-1][0] == float("inf"), buckets
    les = [b[0] for b in buckets]
    assert les == sorted(set(les)), les
    counts = [b[1] for b in buckets]
    assert counts == sorted(counts), f"not cumulative: {buckets}"
    assert buckets[-1][1] == val(s, "etrnd_commit_seconds_count") == 4
    total_s = val(s, "etrnd_commit_seconds_sum")
    assert 0 < total_s < 4 * 30, total_s

    # per-domain gauges: refreshed from the store within ~6 s
    def gauges():
        s, _, _ = m.scrape()
        return (series(s, "etrnd_queue_messages"),
                series(s, "etrnd_queue_recipients"),
                val(s, "etrnd_queue_messages_total"),
                val(s, "etrnd_queue_recipients_total"),
                series(s, "etrnd_queue_oldest_seconds"))
    want = ({"example.org": 3}, {"example.org": 4}, 3, 4)
    t0 = time.monotonic()
    ok = wait_for(lambda: gauges()[:4] == want, 6.5, 0.25)
    g = gauges()
    assert ok, f"after {time.monotonic() - t0:.1f} s: {g[:4]} != {want}"
    assert set(g[4]) == {"example.org"} and 0 <= g[4]["example.org"] < 120, g

    # other paths and methods
    st, _, _ = http(m.base + "/nope")
    assert st == 404
    st, _, _ = http(m.base + "/metrics/")
    assert st == 404
    for method, data in (("POST", b""), ("POST", b"a=b"), ("PUT", b"x"),
                         ("DELETE", None)):
        st, headers, _ = http(m.base + "/metrics", method, data)
        assert st == 405, (method, st)
        assert headers.get("Allow") and "GET" in headers["Allow"], \
            (method, dict(headers))
    st, _, _ = http(m.base + "/", "POST", b"")
    assert st == 405
    st, _, body = http(m.base + "/metrics", "HEAD")
    assert st == 200 and body == ""


def test_metrics_top_50_domains_and_other(etrnd_factory):
    doms = [f"d{i:02d}.example" for i in range(60)]
    mport = free_port()
    d = etrnd_factory(
        extra=f"metrics_listen = 127.0.0.1:{mport}\n",
        domains="".join(f"[domain {x}]\nroute = [127.0.0.1]:1\nmode = hold\n\n"
                        for x in doms))
    # one message for all 60 domains, then more for three of them
    d.submit("s@client.test", [f"r@{x}" for x in doms], BODY)
    d.submit("s@client.test", ["a@d59.example", "b@d59.example",
                               "a@d57.example"], BODY)
    d.submit("s@client.test", ["c@d59.example", "a@d55.example"], BODY)
    msgs = {x: 1 for x in doms}
    rcpts = {x: 1 for x in doms}
    msgs["d59.example"] += 2
    rcpts["d59.example"] += 3
    for x in ("d57.example", "d55.example"):
        msgs[x] += 1
        rcpts[x] += 1
    # the 50 largest by messages (ties by name), the rest under _other
    order = sorted(doms, key=lambda x: (-msgs[x], x))
    top, rest = order[:50], order[50:]
    want_m = {x: msgs[x] for x in top}
    want_m["_other"] = sum(msgs[x] for x in rest)
    want_r = {x: rcpts[x] for x in top}
    want_r["_other"] = sum(rcpts[x] for x in rest)
    assert "d59.example" in top and "d58.example" in rest  # the rule bites

    m = Metrics(f"http://127.0.0.1:{mport}")

    def got():
        s, _, _ = m.scrape()
        return s
    ok = wait_for(lambda: series(got(), "etrnd_queue_messages") == want_m,
                  6.5, 0.25)
    s = got()
    qm = series(s, "etrnd_queue_messages")
    assert ok, (sorted(set(qm) ^ set(want_m)),
                {k: (qm.get(k), want_m.get(k)) for k in want_m
                 if qm.get(k) != want_m.get(k)})
    assert len(qm) == 51
    assert series(s, "etrnd_queue_recipients") == want_r
    assert set(series(s, "etrnd_queue_oldest_seconds")) == set(want_m)
    # the totals count every domain, and the labels add up to them
    assert val(s, "etrnd_queue_messages_total") == sum(msgs.values()) == 64
    assert val(s, "etrnd_queue_recipients_total") == sum(rcpts.values()) == 65
    assert sum(qm.values()) == 64
    assert sum(series(s, "etrnd_queue_recipients").values()) == 65


# --- 2. the status page -------------------------------------------------------

def run_chromium(args, tmp, timeout=60):
    chromium = shutil.which("chromium")
    assert chromium, ("Debian's chromium is not installed"
                      " (scripts/install-deps.sh)")
    profile = tempfile.mkdtemp(prefix="chromium-", dir=str(tmp))
    env = dict(os.environ, HOME=profile)
    env.pop("ASAN_OPTIONS", None)
    cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu",
           "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update",
           "--disable-sync", f"--user-data-dir={profile}", *args]
    try:
        return subprocess.run(cmd, capture_output=True, timeout=timeout,
                              env=env, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"chromium did not finish in {timeout} s; "
                             f"stderr:\n{(e.stderr or b'').decode()[-3000:]}")


def test_status_page_in_headless_chromium(etrnd_factory, tmp_path):
    mport = free_port()
    d = etrnd_factory(extra=f"metrics_listen = 127.0.0.1:{mport}\n")
    # example.org and served.example route to a closed port: a flush
    # fails and the mail is held again, so the domain keeps its row
    d.submit("s@client.test", ["a@example.org", "b@example.org"], BODY)
    d.submit("s@client.test", ["c@example.org"], BODY)
    d.submit("s@client.test", ["x@served.example"], BODY)
    d.submit("s@client.test", ["y@example.net"], BODY)
    assert d.etrn("example.org")[0] == 253
    url = f"http://127.0.0.1:{mport}/"
    want = {"example.org": ("2", "3"), "served.example": ("1", "1"),
            "example.net": ("1", "1")}

    def page_ok(html):
        t = domain_table(html)
        if {k: (r[1], r[2]) for k, r in t.items()} != want:
            return False
        return t
    # the page is fed by the 5-second store summary
    ok = wait_for(lambda: page_ok(http(url)[2]), 7, 0.25)
    st, headers, html = http(url)
    assert st == 200 and headers["Content-Type"].startswith("text/html")
    assert ok, domain_table(html)

    def check(t):
        assert t["example.org"][4].startswith("ETRN 253"), t["example.org"]
        assert "from 127.0.0.1" in t["example.org"][4], t["example.org"]
        assert t["served.example"][4] == "-", t["served.example"]
        assert t["example.net"][4] == "-", t["example.net"]
        for row in t.values():
            assert re.fullmatch(r"\d+s", row[3]), row     # Oldest: seconds
            assert row[5] in ("", "yes"), row
    check(domain_table(html))

    # the same page as a browser builds it
    r = run_chromium(["--dump-dom", url], tmp_path)
    dom = r.stdout.decode("utf-8", "replace")
    assert r.returncode == 0 and "</html>" in dom, \
        f"chromium rc={r.returncode}; stderr:\n{r.stderr.decode()[-3000:]}"
    t = domain_table(dom)
    assert {k: (x[1], x[2]) for k, x in t.items()} == want, t
    check(t)
    assert "<title>etrnd status</title>" in dom
    assert "etrnd on relay.test" in dom

    shot = tmp_path / "page.png"
    r = run_chromium([f"--screenshot={shot}", "--window-size=1200,800", url],
                     tmp_path)
    assert shot.exists() and shot.stat().st_size > 0, \
        f"no screenshot; rc={r.returncode}; stderr:\n{r.stderr.decode()[-3000:]}"
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n", png[:16]
    assert png[12:16] == b"IHDR"
    w, h = struct.unpack(">II", png[16:24])
    assert (w, h) == (1200, 800), (w, h)
    assert len(png) > 2000, len(png)     # more than a blank image


# --- 3. SIGHUP reload ---------------------------------------------------------

def test_reload_config_users_and_certificate(etrnd_factory, tmp_path):
    cert, key = str(tmp_path / "relay.crt"), str(tmp_path / "relay.key")
    old_der = gen_cert(cert, key, "old-cert.test")
    odmr_port = free_port()
    users_path = write_users(tmp_path / "users",
                             ["site:{PLAIN}old-secret:atrn.example"])
    d = etrnd_factory(start=False, extra=(
        f"odmr_listen = 127.0.0.1:{odmr_port}\n"
        f"users_file = {users_path}\n"
        f"tls_cert = {cert}\ntls_key = {key}\n"
        f"max_connections_per_client = 50\n"), domains="""
[domain a.example]
route = [127.0.0.1]:1
mode = hold

[domain b.example]
route = [127.0.0.1]:1
mode = hold
etrn_clients = 127.0.0.1/32

[domain atrn.example]
route = odmr
""")
    original = open(d.conf).read()
    d.start()
    assert wait_for(lambda: not refused(odmr_port), 10)
    assert starttls_cert(d.port) == old_der

    def write_conf(text):
        tmp = d.conf + ".new"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, d.conf)

    # a session opened before the reload
    s1 = d.session()
    c = d.session()
    assert c.cmd("MAIL FROM:<s@client.test>")[0] == 250
    assert c.cmd("RCPT TO:<u@new.example>")[0] != 250   # not yet ours
    c.close()
    assert d.etrn("b.example", src="127.0.0.1")[0] == 251

    # --- a good change: new domain, other etrn_clients, a lower cap
    good = (original
            .replace("max_connections_per_client = 50",
                     "max_connections_per_client = 3")
            .replace("etrn_clients = 127.0.0.1/32", "etrn_clients = 127.0.0.2/32")
            + "\n[domain new.example]\nroute = [127.0.0.1]:1\nmode = hold\n")
    assert good.count("new.example") == 1 and "127.0.0.2/32" in good
    write_conf(good)
    hup(d, "event=reloaded")
    assert re.search(r"event=reloaded domains=4 tls=yes odmr_accounts=1",
                     d.read_log()), d.read_log()[-2000:]
    send_one(d.port, "s@client.test", ["u@new.example"])
    code, line = d.etrn("b.example", src="127.0.0.1")
    assert code == 459 and line.endswith("client not allowed"), line
    assert d.etrn("b.example", src="127.0.0.2")[0] == 251
    cap = [d.connect_from("127.0.0.5") for _ in range(3)]
    assert all(x.greeting[0] == 220 for x in cap)
    over = d.connect_from("127.0.0.5")
    assert over.greeting[0] == 421 and "too many connections" in \
        over.greeting[1][0], over.greeting
    for x in cap + [over]:
        x.close()
    # the old session still works, through a whole transaction
    assert s1.cmd("MAIL FROM:<s@client.test>")[0] == 250
    assert s1.cmd("RCPT TO:<v@a.example>")[0] == 250
    assert s1.cmd("DATA")[0] == 354
    s1.send(b"Subject: before the HUP\r\n\r\nstill here\r\n.\r\n")
    code, lines = s1.reply()
    assert code == 250, lines
    assert s1.cmd("QUIT")[0] == 221
    s1.close()

    # --- an invalid file (unknown key on line 2, new.example dropped):
    # nothing of it applies
    lines = good.replace("\n[domain new.example]\nroute = [127.0.0.1]:1\n"
                         "mode = hold\n", "\n").split("\n")
    lines.insert(1, "bogus_key = 1")
    write_conf("\n".join(lines))
    hup(d, "configuration not changed")
    assert re.search(r'event=reload_failed error="[^"]*etrnd\.conf:2: '
                     r'unknown key bogus_key"', d.read_log()), \
        d.read_log()[-2000:]
    send_one(d.port, "s@client.test", ["w@new.example"])
    assert d.etrn("b.example", src="127.0.0.2")[0] == 251

    # --- a key that needs a restart: refused, by name
    newport = free_port()
    write_conf(good.replace(f"listen = 127.0.0.1:{d.port}\n",
                            f"listen = 127.0.0.1:{newport}\n")
               .replace("[domain new.example]", "[domain newer.example]"))
    hup(d, "event=reload_failed keys=")
    assert re.search(r"event=reload_failed keys=listen detail=",
                     d.read_log()), d.read_log()[-2000:]
    assert refused(newport)
    send_one(d.port, "s@client.test", ["x@new.example"])

    # --- a users file that became group-readable: refused; the old
    # accounts authenticate, the file's new secret does not
    write_conf(good.replace("[domain new.example]", "[domain newer.example]"))
    write_users(users_path, ["site:{PLAIN}new-secret:atrn.example"], 0o640)
    hup(d, "event=reload_failed reason=users_file")
    cu = Customer(odmr_port)
    assert cu.greeting[0] == 220
    cu.login("site", "old-secret")
    cu.close()
    cu = Customer(odmr_port)
    cu.ehlo()
    code, lines = cu.auth_cram("site", "new-secret")
    assert code == 535, lines
    cu.close()
    # and the configuration of that attempt did not apply either
    send_one(d.port, "s@client.test", ["y@new.example"])
    c = d.session()
    assert c.cmd("MAIL FROM:<s@client.test>")[0] == 250
    assert c.cmd("RCPT TO:<u@newer.example>")[0] != 250
    c.close()

    # --- a certificate that does not match its key: refused, and the
    # configuration change of that attempt is not applied either
    write_users(users_path, ["site:{PLAIN}old-secret:atrn.example"])
    other_cert, other_key = str(tmp_path / "o.crt"), str(tmp_path / "o.key")
    gen_cert(other_cert, other_key, "mismatch.test")
    shutil.copyfile(other_cert, cert)
    hup(d, "event=reload_failed reason=tls")
    assert starttls_cert(d.port) == old_der
    c = d.session()
    assert c.cmd("MAIL FROM:<s@client.test>")[0] == 250
    assert c.cmd("RCPT TO:<u@newer.example>")[0] != 250
    c.close()

    # --- a new certificate at the same paths: new sessions see it
    write_conf(good)
    new_der = gen_cert(cert, key, "new-cert.test")
    assert new_der != old_der
    assert starttls_cert(d.port) == old_der     # not before the HUP
    hup(d, "event=reloaded")
    got = starttls_cert(d.port)
    assert got == new_der
    assert der_cn(got, tmp_path) == "new-cert.test"
    assert count_lines(d, "event=reloaded") == 2
    assert count_lines(d, "event=reload_failed") == 5


# --- 4. SIGTERM ---------------------------------------------------------------

def test_sigterm_drains_idle_and_lets_data_finish(etrnd_factory):
    d = etrnd_factory()
    idle = d.session()
    busy = d.session()
    assert busy.cmd("MAIL FROM:<s@client.test>")[0] == 250
    assert busy.cmd("RCPT TO:<u@example.org>")[0] == 250
    assert busy.cmd("DATA")[0] == 354
    busy.send(b"Subject: in flight\r\n\r\nfirst half\r\n")
    time.sleep(0.2)
    d.proc.send_signal(signal.SIGTERM)

    code, lines = idle.reply()
    assert (code, lines) == (421, [
        "421 4.3.2 relay.test Service shutting down"]), lines
    assert idle.closed(5)
    # no new connections while the transaction finishes
    assert wait_for(lambda: refused(d.port), 5), "still accepting"
    assert d.proc.poll() is None

    busy.send(b"second half\r\n.\r\n")
    code, lines = busy.reply()
    assert code == 250, lines
    m = re.search(r"queued as ([0-9A-F]{16})", lines[0])
    assert m, lines
    qid = m.group(1)
    code, lines = busy.reply()
    assert (code, lines) == (421, [
        "421 4.3.2 relay.test Service shutting down"]), lines
    assert busy.closed(5)
    rc = d.proc.wait(20)
    d.proc = None
    assert rc == 0
    log = d.read_log()
    assert "event=stopping signal=15" in log and "event=stopped" in log

    d.start()
    msg = d.show_json(qid)
    assert msg is not None, f"{qid} lost"
    assert msg["rcpt_0"]["address"] == "u@example.org"
    assert msg["rcpt_0"]["state"] == "held"
    assert d.pending() == ["u@example.org"]


def test_sigterm_grace_ends_a_silent_transaction(etrnd_factory):
    d = etrnd_factory(extra="shutdown_grace = 2s\n")
    c1 = d.session()
    assert c1.cmd("MAIL FROM:<s@client.test>")[0] == 250
    assert c1.cmd("RCPT TO:<u@example.org>")[0] == 250
    c2 = d.session()
    assert c2.cmd("MAIL FROM:<s@client.test>")[0] == 250
    assert c2.cmd("RCPT TO:<v@example.org>")[0] == 250
    assert c2.cmd("DATA")[0] == 354
    c2.send(b"Subject: never finished\r\n\r\nhalf a body\r\n")
    time.sleep(0.3)
    t0 = time.monotonic()
    d.proc.send_signal(signal.SIGTERM)
    rc = d.proc.wait(15)
    took = time.monotonic() - t0
    d.proc = None
    assert rc == 0
    # shutdown_grace is counted in whole seconds: 1 to 3 s, plus slack
    assert 1.0 <= took <= 4.5, took
    assert "grace over" in d.read_log()
    assert c1.closed(5) and c2.closed(5)
    with d.db() as db:
        assert db.execute("SELECT count(*) FROM msg").fetchone()[0] == 0
        assert db.execute("SELECT count(*) FROM rcpt").fetchone()[0] == 0


# --- 5. etrnctl ---------------------------------------------------------------

def text_rows(out):
    """The data lines of a table printed by etrnctl (header dropped)."""
    lines = out.strip("\n").split("\n")
    return [ln.split() for ln in lines[1:]]


def test_etrnctl_commands(etrnd_factory, peer_factory):
    peer = peer_factory(SmtpPeer, rcpt_replies={
        "t@tempfail.example": "450 4.2.1 mailbox busy, try later"})
    d = etrnd_factory(domains=f"""
[domain old.example]
route = [127.0.0.1]:1
mode = hold

[domain big.example]
route = [127.0.0.1]:1
mode = hold

[domain example.org]
route = [127.0.0.1]:1
mode = hold
subdomains = yes

[domain tempfail.example]
route = [127.0.0.1]:{peer.port}
mode = hold

[domain deliver.example]
route = [127.0.0.1]:{peer.port}
mode = hold

[domain retry.example]
route = [127.0.0.1]:1
""")
    submitted = 0

    def submit(*a, **kw):
        nonlocal submitted
        submitted += 1
        return d.submit(*a, **kw)

    submit("s@client.test", ["o@old.example"], BODY)
    time.sleep(1.1)        # old.example's mail is a second older
    for rc in (["a@big.example", "b@big.example"], ["c@big.example"],
               ["d@big.example"]):
        submit("s@client.test", rc, BODY)

    # --- summary, by size and by age: the two orders differ
    r = d.etrnctl("summary", "--sort", "size")
    assert r.stdout.split("\n")[0].split() == ["DOMAIN", "MESSAGES",
                                               "RECIPIENTS", "OLDEST"]
    rows = text_rows(r.stdout)
    names = [x[0] for x in rows]
    assert names.index("big.example") < names.index("old.example"), rows
    assert {x[0]: x[1:3] for x in rows}["big.example"] == ["3", "4"]
    assert {x[0]: x[1:3] for x in rows}["old.example"] == ["1", "1"]
    js = json.loads(d.etrnctl("--json", "summary", "--sort", "size").stdout)
    assert [x["messages"] for x in js] == sorted(
        (x["messages"] for x in js), reverse=True)
    byname = {x["domain"]: x for x in js}
    assert byname["big.example"]["messages"] == 3
    assert byname["big.example"]["recipients"] == 4
    assert byname["old.example"]["oldest"] < byname["big.example"]["oldest"]
    r = d.etrnctl("summary", "--sort", "age")
    names = [x[0] for x in text_rows(r.stdout)]
    assert names.index("old.example") < names.index("big.example"), r.stdout
    js = json.loads(d.etrnctl("--json", "summary", "--sort", "age").stdout)
    assert [x["oldest"] for x in js] == sorted(x["oldest"] for x in js)
    names = [x["domain"] for x in js]
    assert names.index("old.example") < names.index("big.example")

    # --- list DOMAIN takes its subdomains, not its neighbours
    submit("s@client.test", ["u@example.org"], BODY)
    submit("s@client.test", ["v@sub.example.org", "w@old.example"], BODY)
    js = d.queued_json("example.org")
    assert sorted((x["recipient"], x["domain"], x["state"]) for x in js) == [
        ("u@example.org", "example.org", "held"),
        ("v@sub.example.org", "sub.example.org", "held")]
    assert all(x["sender"] == "s@client.test" and x["size"] > 0 and
               re.fullmatch(r"[0-9A-F]{16}", x["qid"]) for x in js)
    r = d.etrnctl("list", "example.org")
    lines = r.stdout.strip().split("\n")
    assert lines[0].split()[:4] == ["QID", "AGE", "SIZE", "STATE"]
    assert sorted(ln.split()[-1] for ln in lines[1:]) == [
        "<u@example.org>", "<v@sub.example.org>"], r.stdout
    assert all(" held " in ln for ln in lines[1:])
    everything = d.queued_json()
    assert len(everything) == 8

    # --- flush (JSON) of a domain whose site says 450: show has the reply
    q_t = submit("s@client.test", ["t@tempfail.example"],
                 b"Subject: show me\r\nX-Ops-Test: 42\r\n\r\nbody\r\n")
    r = d.etrnctl("--json", "flush", "tempfail.example")
    assert json.loads(r.stdout) == {"command": "flush", "result": "started"}

    def tempfailed():
        m = d.show_json(q_t)
        return m and m["rcpt_0"]["attempts"] == 1 and \
            m["rcpt_0"]["state"] == "held" and m
    m = wait_for(tempfailed, 15)
    assert m, d.show_json(q_t)
    assert m["rcpt_0"]["last_reply"] == "450 4.2.1 mailbox busy, try later"
    assert m["qid"] == q_t and m["sender"] == "s@client.test"
    assert m["client"] == "127.0.0.1" and m["helo"] == "client.test"
    r = d.etrnctl("show", q_t)
    assert re.search(r"^recipient\s+t@tempfail\.example state=held attempts=1"
                     r" last_reply=450 4\.2\.1 mailbox busy, try later$",
                     r.stdout, re.M), r.stdout
    assert re.search(r"^header\s+Subject: show me$", r.stdout, re.M), r.stdout
    assert re.search(r"^header\s+X-Ops-Test: 42$", r.stdout, re.M), r.stdout
    assert re.search(rf"^qid\s+{q_t}$", r.stdout, re.M), r.stdout
    assert re.search(r"^sender\s+s@client\.test$", r.stdout, re.M), r.stdout
    # --json show: no key twice (a JSON object with repeated keys loses
    # all but one of them), and the header lines are all there
    raw = d.etrnctl("--json", "show", q_t).stdout

    def no_dupes(pairs):
        keys = [k for k, _ in pairs]
        assert len(keys) == len(set(keys)), f"repeated keys: {keys}"
        return dict(pairs)
    js = json.loads(raw, object_pairs_hook=no_dupes)
    hdrs = js.get("headers")
    assert isinstance(hdrs, list), raw
    assert "Subject: show me" in hdrs and "X-Ops-Test: 42" in hdrs, hdrs
    assert any(h.startswith("Received: ") for h in hdrs), hdrs

    # --- flush (text) of a hold domain delivers to its site
    submit("s@client.test", ["d@deliver.example"], BODY)
    r = d.etrnctl("flush", "deliver.example")
    assert r.stdout == "flush: started\n", r.stdout
    got = peer.wait_messages(1)
    assert got[0].rcpt_tos == ["d@deliver.example"]
    assert wait_for(lambda: d.queued_json("deliver.example") == [], 10)

    # --- hold / release / requeue: a retry domain, by domain and by QID
    q_r1 = submit("s@client.test", ["a@retry.example", "b@retry.example"],
                  BODY)
    q_r2 = submit("s@client.test", ["c@retry.example"], BODY)

    def states(attempts=None):
        rows = d.queued_json("retry.example")
        if attempts is not None and any(x["attempts"] != attempts
                                        for x in rows):
            return None
        return sorted((x["qid"], x["recipient"], x["state"]) for x in rows)

    def all_in(state, attempts):
        s = states(attempts)
        return s and len(s) == 3 and all(x[2] == state for x in s)
    assert wait_for(lambda: all_in("deferred", 1), 15), states()
    r = d.etrnctl("hold", "retry.example")
    assert r.stdout == "hold: 3 recipient(s) changed\n", r.stdout
    assert all_in("held", 1), states()
    r = d.etrnctl("--json", "release", "retry.example")
    assert json.loads(r.stdout) == {"command": "release", "result": 3}
    # released = due now: tried again at once, and deferred again
    assert wait_for(lambda: all_in("deferred", 2), 15), states()
    r = d.etrnctl("hold", q_r1)
    assert r.stdout == "hold: 2 recipient(s) changed\n", r.stdout
    assert [x[2] for x in states() if x[0] == q_r1] == ["held", "held"]
    assert [x[2] for x in states() if x[0] == q_r2] == ["deferred"]
    r = d.etrnctl("--json", "hold", q_r1)
    assert json.loads(r.stdout) == {"command": "hold", "result": 0}
    r = d.etrnctl("release", q_r1)
    assert r.stdout == "release: 2 recipient(s) changed\n", r.stdout
    assert wait_for(lambda: all_in("deferred", None) and
                    [x for x in d.queued_json("retry.example")
                     if x["qid"] == q_r1 and x["attempts"] == 3], 15), states()
    r = d.etrnctl("--json", "requeue", q_r1)
    assert json.loads(r.stdout) == {"command": "requeue", "result": 2}
    r = d.etrnctl("requeue", "retry.example")
    assert r.stdout == "requeue: 3 recipient(s) changed\n", r.stdout
    r = d.etrnctl("--json", "requeue", "old.example")   # held: untouched
    assert json.loads(r.stdout) == {"command": "requeue", "result": 0}

    # --- delete: gone, and no DSN for it
    q_d1 = submit("deleter@client.test", ["x@old.example", "y@big.example"],
                  BODY)
    q_d2 = submit("deleter@client.test", ["z@old.example"], BODY)
    r = d.etrnctl("delete", q_d1)
    assert r.stdout == "delete: 2 recipient(s) changed\n", r.stdout
    r = d.etrnctl("--json", "delete", q_d2)
    assert json.loads(r.stdout) == {"command": "delete", "result": 1}
    for q in (q_d1, q_d2):
        assert d.show_json(q) is None
        r = d.etrnctl("show", q, check=False)
        assert r.returncode == 1 and r.stderr.startswith("etrnctl: "), r
    rows = d.queued_json()
    assert not [x for x in rows if x["qid"] in (q_d1, q_d2)]
    assert not [x for x in rows if x["recipient"] == "deleter@client.test"]
    r = d.etrnctl("delete", q_d1, check=False)
    assert r.returncode == 1 and "no such message" in r.stderr, r
    r = d.etrnctl("delete", "0123456789ABCDEF", check=False)
    assert r.returncode == 1, r
    assert r.stderr == ("etrnctl: delete 0123456789ABCDEF: no such message"
                        " (or nothing left to deliver)\n"), r.stderr
    assert r.stdout == ""

    # --- qshape: everything is under 5 minutes old; totals add up
    summ = json.loads(d.etrnctl("--json", "summary").stdout)
    shape = json.loads(d.etrnctl("--json", "qshape").stdout)
    assert {x["domain"]: x["total"] for x in shape} == {
        x["domain"]: x["messages"] for x in summ}
    for x in shape:
        assert x["m0_5"] == x["total"], x
        assert sum(v for k, v in x.items()
                   if k.startswith("m") and k != "m0_5") == 0, x
    r = d.etrnctl("qshape")
    lines = r.stdout.strip().split("\n")
    assert lines[0].split() == ["T", "5", "10", "20", "40", "80", "160",
                                "320", "640", "1280", "1280+"], lines[0]
    total = sum(x["total"] for x in shape)
    assert lines[1].split() == ["TOTAL", str(total), str(total)] + ["0"] * 9
    assert len(lines) == 2 + len(shape)

    # --- stats: the counters of /metrics
    stats = json.loads(d.etrnctl("--json", "stats").stdout)
    assert stats["etrnd_messages_accepted_total"] == submitted
    assert stats["etrnd_recipients_delivered_total"] == 1
    assert stats["etrnd_recipients_bounced_total"] == 0
    assert stats["etrnd_dsn_total"] == 0
    assert stats["etrnd_recipients_refused_total"] == 0
    assert stats["etrnd_recipients_deferred_total"] >= 1 + 3 + 3 + 2
    assert stats["etrnd_commit_seconds_count"] == submitted
    assert stats['etrnd_etrn_requests_total{code="253"}'] == 0
    r = d.etrnctl("stats")
    text = dict(ln.split() for ln in r.stdout.strip().split("\n"))
    assert text["etrnd_messages_accepted_total"] == str(submitted)
    assert text["etrnd_dsn_total"] == "0"
    assert set(text) == set(stats)


def expire_domains(peer_port):
    return f"""
[domain expire.example]
route = [127.0.0.1]:1
mode = hold
lifetime = 2s

[domain keep.example]
route = [127.0.0.1]:1
mode = hold

[domain origin.test]
route = [127.0.0.1]:{peer_port}
"""


def wait_expirable(d, qid, lifetime=2):
    """Sleep until qid is older than lifetime whole seconds (the sweep
    takes what arrived before now - lifetime)."""
    arrival = int(d.show_json(qid)["arrival"])
    while time.time() < arrival + lifetime + 1.2:
        time.sleep(0.1)


def test_etrnctl_expire_returns_mail_with_a_dsn(etrnd_factory, peer_factory):
    """The sender's domain is served (routed to a peer): the DSN of the
    expired recipient reaches it."""
    home = peer_factory(SmtpPeer)
    d = etrnd_factory(domains=expire_domains(home.port))
    q_exp = d.submit("bouncer@origin.test", ["e@expire.example",
                                             "k@keep.example"], BODY)
    q_keep = d.submit("s@origin.test", ["k2@keep.example"], BODY)
    wait_expirable(d, q_exp)
    r = d.etrnctl("expire")
    assert r.stdout == "expire: started\n", r.stdout

    def expired():
        m = d.show_json(q_exp)
        st = {v["address"]: v for k, v in (m or {}).items()
              if k.startswith("rcpt_")}
        return st and st["e@expire.example"]["state"] == "failed" and st
    st = wait_for(expired, 10)
    assert st, d.show_json(q_exp)
    assert st["e@expire.example"]["last_reply"].startswith("451 4.4.7 "), st
    # keep.example's lifetime is the default 5 days: untouched
    assert st["k@keep.example"]["state"] == "held", st
    assert d.show_json(q_keep)["rcpt_0"]["state"] == "held"
    assert d.queued_json("expire.example") == []
    (dsn,) = home.wait_messages(1)
    assert dsn.mail_from == "" and dsn.rcpt_tos == ["bouncer@origin.test"]
    text = dsn.content.decode("utf-8", "replace")
    assert re.search(r"Final-Recipient: rfc822; ?e@expire\.example", text,
                     re.I), text
    assert re.search(r"^Action: failed", text, re.M | re.I), text
    assert re.search(r"^Status: 4\.4\.7", text, re.M | re.I), text
    assert "k@keep.example" not in text.split("Final-Recipient", 1)[-1]
    stats = json.loads(d.etrnctl("--json", "stats").stdout)
    assert stats["etrnd_recipients_bounced_total"] == 1
    assert stats["etrnd_dsn_total"] == 1
    r = d.etrnctl("--json", "expire")
    assert json.loads(r.stdout) == {"command": "expire", "result": "started"}
    time.sleep(0.5)
    assert len(home.messages) == 1      # nothing expires twice


def test_expired_mail_dsn_to_an_unserved_sender_waits_for_dns(etrnd_factory,
                                                              peer_factory):
    """The sender's domain is not one of ours: the DSN goes by MX, and
    with the DNS server unreachable (dns_server = 127.0.0.1:1) it must
    wait in the queue (4.4.3), not be failed as if the domain did not
    exist: a failed DSN is dropped, and the sender never hears."""
    home = peer_factory(SmtpPeer)
    d = etrnd_factory(domains=expire_domains(home.port))
    q_exp = d.submit("bouncer@client.test", ["e@expire.example"], BODY)
    wait_expirable(d, q_exp)
    assert d.etrnctl("expire").stdout == "expire: started\n"
    assert wait_for(lambda: d.show_json(q_exp) is None, 10), \
        d.show_json(q_exp)
    assert wait_for(lambda: d.log_lines("event=dsn", f"qid={q_exp}"), 5)

    def dsn_attempted():
        rows = [x for x in d.queued_json()
                if x["recipient"] == "bouncer@client.test"]
        return rows and rows[0]["attempts"] >= 1 and rows
    rows = wait_for(dsn_attempted, 10)
    assert rows, ("the DSN is not in the queue after its first attempt:\n"
                  + "\n".join(d.log_lines("bouncer@client.test")))
    assert rows[0]["sender"] == "" and rows[0]["state"] == "deferred", rows
    m = d.show_json(rows[0]["qid"])
    assert m["rcpt_0"]["last_reply"].startswith("451 4.4.3 "), m


def test_etrnctl_errors_and_permissions(etrnd_factory):
    # bad arguments: exit 2 and the usage, no daemon needed
    d = etrnd_factory(start=False)
    for args, why in ((["show", "zz"], "not a queue id"),
                      (["flush"], "flush needs a domain name"),
                      (["frob"], "unknown command"),
                      (["summary", "--sort", "name"], "--sort age"),
                      ([], None)):
        r = ctl(d, *args)
        assert r.returncode == 2, (args, r)
        if why:
            assert why in r.stderr, (args, r.stderr)
        if args[:1] != ["summary"]:
            assert "usage: etrnctl" in r.stderr, (args, r.stderr)
        assert r.stdout == "", (args, r.stdout)

    # no etrnd: exit 1 and says so
    r = ctl(d, "summary")
    assert r.returncode == 1, r
    assert "cannot reach etrnd" in r.stderr and "is etrnd running?" in \
        r.stderr, r.stderr
    r = ctl(d, "--json", "list")
    assert r.returncode == 1 and "is etrnd running?" in r.stderr

    # a socket nobody else may reach: from uid nobody, "permission denied"
    top = tempfile.mkdtemp(prefix="etrnd-ctl-")
    try:
        os.chmod(top, 0o755)
        sock = os.path.join(top, "control.sock")
        with open(d.conf) as f:
            text = f.read()
        with open(d.conf, "w") as f:
            f.write(text.replace(f"control = {d.control}\n",
                                 f"control = {sock}\n"))
        d.control = sock
        d.start()
        assert ctl(d, "summary").returncode == 0
        mode = os.stat(sock).st_mode & 0o777
        assert mode & 0o077 == 0, oct(mode)      # made private by etrnd
        os.chmod(sock, 0o666)
        setpriv = shutil.which("setpriv")
        assert setpriv, "setpriv (util-linux) is missing"
        r = subprocess.run([setpriv, "--reuid=nobody", "--regid=nogroup",
                            "--clear-groups", d.etrnctl_bin, "-s", sock,
                            "summary"], capture_output=True, text=True,
                           timeout=30)
        assert r.returncode == 1, r
        assert r.stderr == "etrnctl: permission denied\n", r.stderr
        assert r.stdout == ""
        nobody = pwd.getpwnam("nobody").pw_uid
        assert wait_for(lambda: d.log_lines(f"event=ctl_refused uid={nobody}"),
                        5)
        # root still gets in
        assert ctl(d, "--json", "stats", sock=sock).returncode == 0
        problems = d.stop()
        assert not problems, problems
        assert not os.path.exists(sock)
        r = ctl(d, "summary", sock=sock)
        assert r.returncode == 1 and "is etrnd running?" in r.stderr
    finally:
        shutil.rmtree(top, ignore_errors=True)


# --- 6. logging to syslog -----------------------------------------------------

def test_log_syslog_facility_mail(etrnd_factory):
    saved = None
    if os.path.lexists("/dev/log"):
        # a real syslog daemon's socket: set it aside for the test
        saved = f"/dev/log.etrnd-test-{os.getpid()}"
        os.rename("/dev/log", saved)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    got = []
    done = threading.Event()

    def reader():
        # read all the time, as syslogd does: a unix datagram socket
        # queues only a few messages before the sender's syslog() blocks
        sock.settimeout(0.1)
        while not done.is_set():
            try:
                got.append(sock.recv(65536).decode("utf-8", "replace"))
            except socket.timeout:
                pass
            except OSError:
                return
    t = threading.Thread(target=reader, daemon=True)
    try:
        sock.bind("/dev/log")
        os.chmod("/dev/log", 0o666)
        t.start()
        d = etrnd_factory(extra="log_syslog = yes\n")
        pid = d.pid
        qid = d.submit("s@client.test", ["u@example.org"], BODY)
        pat = re.compile(rf"^<(\d+)>.*etrnd\[{pid}\]: level=info "
                         rf"event=queued sid=\w+ qid={qid} rcpts=1 ")
        assert wait_for(lambda: [x for x in got if pat.match(x)], 10), \
            "no event=queued on /dev/log; got:\n" + "\n".join(got)
        hit = [x for x in got if pat.match(x)][0]
        pri = int(pat.match(hit).group(1))
        assert pri >> 3 == 2, f"facility {pri >> 3}, not mail (2): {hit}"
        assert pri & 7 == 6, f"severity {pri & 7}, not info (6): {hit}"
        assert [x for x in got if f"etrnd[{pid}]: level=info event=started"
                in x], got
        problems = d.stop()
        assert not problems, problems
        assert wait_for(lambda: [x for x in got if f"etrnd[{pid}]: "
                                 "level=info event=stopped" in x], 5), got
        # stderr: nothing but possibly start-up errors, no event lines
        assert "event=" not in d.read_log(), d.read_log()
    finally:
        done.set()
        if t.is_alive():
            t.join(5)
        sock.close()
        try:
            os.unlink("/dev/log")
        except FileNotFoundError:
            pass
        if saved:
            os.rename(saved, "/dev/log")
