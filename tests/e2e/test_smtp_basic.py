"""The relay's basic promise, with Python's smtplib and swaks as clients:
mail for a relay domain is accepted, durable and visible to the operator;
mail for anyone else is refused."""

import smtplib
import subprocess

import pytest

BODY = b"Subject: hello\r\n\r\nline one\r\n.leading dot\r\nlast line\r\n"


def test_accepts_relay_domain_and_lists_it(etrnd):
    with smtplib.SMTP("127.0.0.1", etrnd.port, timeout=10) as s:
        code, _ = s.ehlo("client.test")
        assert code == 250
        refused = s.sendmail("sender@client.test", ["user@example.org"], BODY)
        assert refused == {}
    rows = etrnd.queued_json()
    assert [(r["recipient"], r["domain"], r["state"]) for r in rows] == [
        ("user@example.org", "example.org", "held")]
    # the body is stored byte-exact, dot-unstuffed, after our Received field
    (body,) = etrnd.stored_bodies().values()
    assert body.startswith(b"Received: from client.test ([127.0.0.1])")
    assert body.endswith(b"\r\n\r\nline one\r\n.leading dot\r\nlast line\r\n")
    summary = etrnd.etrnctl("summary").stdout
    assert "example.org" in summary


def test_subdomain_only_where_configured(etrnd):
    with smtplib.SMTP("127.0.0.1", etrnd.port, timeout=10) as s:
        s.ehlo("client.test")
        s.mail("a@client.test")
        assert s.rcpt("u@mx.example.org")[0] == 250       # subdomains = yes
        assert s.rcpt("u@sub.example.net")[0] == 550      # subdomains = no
        assert s.rcpt("u@badexample.org")[0] == 550       # not on a label boundary
        assert s.rcpt("u@example.org.evil.test")[0] == 550
        code, msg = s.rcpt("u@elsewhere.test")
        assert code == 550 and msg.startswith(b"5.7.1")
        code, _ = s.data(BODY)
        assert code == 250
    rows = etrnd.queued_json()
    assert [r["recipient"] for r in rows] == ["u@mx.example.org"]


def test_other_domains_refused_and_nothing_queued(etrnd):
    with smtplib.SMTP("127.0.0.1", etrnd.port, timeout=10) as s:
        s.ehlo("client.test")
        with pytest.raises(smtplib.SMTPRecipientsRefused) as e:
            s.sendmail("a@client.test", ["victim@external.test"], BODY)
        code, msg = e.value.recipients["victim@external.test"]
        assert code == 550 and b"5.7.1" in msg
    assert etrnd.queued_json() == []


def test_ehlo_advertises_extensions(etrnd):
    with smtplib.SMTP("127.0.0.1", etrnd.port, timeout=10) as s:
        s.ehlo("client.test")
        for ext in ("pipelining", "size", "8bitmime", "enhancedstatuscodes",
                    "dsn", "etrn"):
            assert s.has_extn(ext), ext
        assert s.esmtp_features["size"] == "10240000"
        assert not s.has_extn("starttls")   # no certificate configured
        assert not s.has_extn("chunking")
        assert s.docmd("TURN")[0] == 502
        assert s.docmd("VRFY", "user@example.org")[0] == 252
        assert s.docmd("EXPN", "list")[0] == 502


def test_size_over_limit_refused_at_mail(etrnd):
    with smtplib.SMTP("127.0.0.1", etrnd.port, timeout=10) as s:
        s.ehlo("client.test")
        code, msg = s.mail("a@client.test", ["SIZE=10240001"])
        assert code == 552 and msg.startswith(b"5.3.4")
        code, _ = s.mail("a@client.test", ["SIZE=10240000"])
        assert code == 250


def test_pipelined_session_answers_in_order(etrnd):
    c = etrnd.connect()
    assert c.greeting[0] == 220
    assert c.cmd("EHLO client.test")[0] == 250
    c.send("MAIL FROM:<a@client.test>\r\n"
           "RCPT TO:<one@example.org>\r\n"
           "RCPT TO:<nobody@external.test>\r\n"
           "RCPT TO:<two@example.org>\r\n"
           "DATA\r\n")
    codes = [c.reply()[0] for _ in range(5)]
    assert codes == [250, 250, 550, 250, 354]
    c.send("Subject: pipelined\r\n\r\nbody\r\n.\r\nQUIT\r\n")
    code, lines = c.reply()
    assert code == 250 and "queued as" in lines[0]
    assert c.reply()[0] == 221
    assert c.closed()
    rows = etrnd.queued_json()
    assert sorted(r["recipient"] for r in rows) == [
        "one@example.org", "two@example.org"]


def test_swaks_session(etrnd):
    r = subprocess.run(
        ["swaks", "--server", f"127.0.0.1:{etrnd.port}", "--ehlo",
         "client.test", "--from", "s@client.test", "--to",
         "swaks@example.net", "--body", "from swaks", "--pipeline"],
        capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "250 2.0.0 Ok: queued as" in r.stdout
    rows = etrnd.queued_json("example.net")
    assert [(r["recipient"], r["state"]) for r in rows] == [
        ("swaks@example.net", "held")]


def test_etrnctl_show(etrnd):
    with smtplib.SMTP("127.0.0.1", etrnd.port, timeout=10) as s:
        s.ehlo("client.test")
        s.sendmail("sender@client.test", ["a@example.org", "b@example.net"],
                   BODY, rcpt_options=["NOTIFY=FAILURE,DELAY"])
    (qid,) = {r["qid"] for r in etrnd.queued_json()}
    out = etrnd.etrnctl("show", qid).stdout
    assert "sender@client.test" in out
    assert "a@example.org" in out and "b@example.net" in out
    bad = etrnd.etrnctl("show", "zz", check=False)
    assert bad.returncode == 2 and "queue id" in bad.stderr
    missing = etrnd.etrnctl("show", "0000000000000001", check=False)
    assert missing.returncode == 1 and "no such message" in missing.stderr


def test_recipients_table_refuses_unknown_users_at_rcpt(tmp_path, etrnd_factory):
    """A domain with a recipients file: unknown users get 550 5.1.1 at RCPT
    (no bounce later, so no backscatter), known ones are queued."""
    table = tmp_path / "rcpts"
    table.write_text("alice@served.example\n@lists.served.example\n")
    d = etrnd_factory(domains=f"""
[domain served.example]
route = [127.0.0.1]:1
mode = hold
subdomains = yes
recipients = {table}
""")
    with smtplib.SMTP("127.0.0.1", d.port, timeout=10) as s:
        s.ehlo("client.test")
        s.mail("a@client.test")
        assert s.rcpt("Alice@served.example")[0] == 250
        assert s.rcpt("any@lists.served.example")[0] == 250
        code, msg = s.rcpt("mallory@served.example")
        assert code == 550 and msg.startswith(b"5.1.1")
        assert s.data(BODY)[0] == 250
    assert sorted(r["recipient"] for r in d.queued_json()) == [
        "Alice@served.example", "any@lists.served.example"]


def test_delay_warning_once_after_delay_warning_time(etrnd_factory):
    """A recipient still deferred after delay_warning_time gets its sender
    one RFC 3464 delay warning (NOTIFY honoured), and only one."""
    import time
    d = etrnd_factory(extra="delay_warning_time = 1s\n", domains="""
[domain slow.example]
route = [127.0.0.1]:1
mode = retry
[domain client.example]
route = [127.0.0.1]:1
mode = hold
""")
    with smtplib.SMTP("127.0.0.1", d.port, timeout=10) as s:
        s.ehlo("client.test")
        s.sendmail("sender@client.example", ["a@slow.example"], BODY)
        s.sendmail("quiet@client.example", ["b@slow.example"], BODY,
                   rcpt_options=["NOTIFY=FAILURE"])

    def rows():
        return {(r["sender"], r["recipient"]): r for r in d.queued_json()}

    deadline = time.time() + 20
    while time.time() < deadline:      # the first attempts: too early to warn
        r = rows()
        if all(r[k]["attempts"] >= 1 for k in r if k[1].endswith("slow.example")):
            break
        time.sleep(0.1)
    assert not any(k[0] == "" for k in rows())
    time.sleep(1.2)
    for _ in range(2):                 # two more attempts, one warning
        d.etrnctl("requeue", "slow.example")
        time.sleep(1.0)
    dsns = [k for k in rows() if k[0] == ""]
    assert dsns == [("", "sender@client.example")], rows()
    (qid,) = {r["qid"] for k, r in rows().items() if k[0] == ""}
    shown = d.etrnctl("show", qid).stdout
    assert "Delayed Mail" in shown
