"""The daemon as an operator meets it: the configuration check, privilege
dropping when started as root, and the key=value log lines."""

import os
import pwd
import re
import shutil
import smtplib
import subprocess
import tempfile

from etrnd_harness import Etrnd, free_port


def test_config_check_reports_every_error_with_line(tmp_path, etrnd_factory):
    d = etrnd_factory(start=False)
    bad = tmp_path / "bad.conf"
    bad.write_text("queue_dir = /tmp/q\n"
                   "max_connections = lots\n"       # line 2
                   "no_such_key = 1\n"              # line 3
                   "[domain example.org]\n"
                   "mode = sometimes\n")            # line 5
    r = subprocess.run([d.etrnd_bin, "-n", "-c", str(bad)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1
    for line in (2, 3, 5):
        assert re.search(rf"bad\.conf:{line}: ", r.stderr), r.stderr
    r = subprocess.run([d.etrnd_bin, "-n", "-c", d.conf],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and "configuration OK" in r.stdout
    r = subprocess.run([d.etrnd_bin, "-n", "-c", str(tmp_path / "none")],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "none" in r.stderr


def test_root_binds_then_runs_as_user():
    # CI and the developers' machines run the tests as root; a run without
    # root cannot test this and fails rather than passing silently.
    assert os.geteuid() == 0, "this test needs root (it tests dropping it)"
    nobody = pwd.getpwnam("nobody")
    top = tempfile.mkdtemp(prefix="etrnd-priv-")
    os.chmod(top, 0o755)
    build = os.environ.get("ETRND_BUILD") or "build-asan"
    d = Etrnd(build, top)
    # a privileged port, which only root can bind
    port = 1000 + free_port() % 23
    with open(d.conf) as f:
        text = f.read()
    text = text.replace(f"listen = 127.0.0.1:{d.port}",
                        f"listen = 127.0.0.1:{port}")
    text = text.replace(f"control = {d.control}",
                        f"control = {d.queue_dir}/control.sock")
    d.control = f"{d.queue_dir}/control.sock"
    d.port = port
    with open(d.conf, "w") as f:
        f.write("user = nobody\n" + text)
    try:
        d.start()
        status = open(f"/proc/{d.proc.pid}/status").read()
        uids = re.search(r"^Uid:\s+(.*)$", status, re.M).group(1).split()
        gids = re.search(r"^Gid:\s+(.*)$", status, re.M).group(1).split()
        groups = re.search(r"^Groups:\s*(.*)$", status, re.M).group(1).split()
        assert uids == [str(nobody.pw_uid)] * 4
        assert gids == [str(nobody.pw_gid)] * 4
        assert groups in ([], [str(nobody.pw_gid)])
        assert os.stat(d.queue_dir).st_uid == nobody.pw_uid
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as s:
            s.ehlo("client.test")
            assert s.sendmail("a@client.test", ["u@example.org"],
                              b"Subject: x\r\n\r\nbody\r\n") == {}
        assert [r["recipient"] for r in d.queued_json()] == ["u@example.org"]
        assert os.stat(f"{d.queue_dir}/queue.db").st_uid == nobody.pw_uid
        assert "event=privileges_dropped user=nobody" in d.read_log()
    finally:
        problems = d.stop()
        shutil.rmtree(top, ignore_errors=True)
    assert not problems, problems


def test_log_lines_follow_a_message(etrnd):
    with smtplib.SMTP("127.0.0.1", etrnd.port, timeout=10) as s:
        s.ehlo("client.test")
        s.sendmail("a@client.test", ["u@example.org"], b"Subject: x\r\n\r\nb\r\n")
        s.mail("a@client.test")
        s.rcpt("victim@elsewhere.test")
    log = etrnd.read_log()
    queued = re.search(r"event=queued sid=(\w+) qid=(\w+) rcpts=1", log)
    assert queued, log
    sid, qid = queued.groups()
    assert re.search(rf"event=connect sid={sid} client=127\.0\.0\.1", log)
    assert re.search(rf"event=mail sid={sid} qid={qid} from=a@client\.test", log)
    assert re.search(rf"event=reject sid={sid} qid=\w+ "
                     r"rcpt=victim@elsewhere\.test reason=\"not a relay domain\"",
                     log)
    # every line is level=... followed by key=value pairs
    for line in log.splitlines():
        if "etrnd[" in line:
            assert re.match(r"etrnd\[\d+\]: level=(debug|info|warn|error) "
                            r"event=\w+", line), line
