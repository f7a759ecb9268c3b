"""make install, the manual pages and the documentation.

`make install DESTDIR=... PREFIX=/usr/local` is run once from the top of the
tree (it builds build/ first when that is not up to date). The tests then check
these things:

- it installs exactly the expected files, with the right modes, and
  `make uninstall` removes them all;
- every manual page renders without a warning;
- the installed etrnd accepts the installed example configuration;
- the programs' own help names every option and command their manual pages
  list;
- the units are valid (systemd-analyze, where it exists) and the ip-up hook is
  valid sh;
- the generated key reference is up to date with the schema;
- the restart-only keys listed in etrnd(8) are the schema's;
- every event= the sources log is in docs/logging.md, and the event tables
  there name no event the sources do not log.
"""

import importlib.util
import os
import re
import shutil
import stat
import subprocess

import pytest

TOP = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", ".."))
PREFIX = "/usr/local"
MAN_PAGES = ["man/etrn.1", "man/etrnd.conf.5", "man/etrnd.8", "man/etrnctl.8"]
UNITS = ["etrnd.service", "etrn@.service", "etrn@.timer"]


def make_env():
    """The environment without a calling make's variables (make test runs
    us from inside make: its BUILD or SAN must not leak into ours)."""
    env = dict(os.environ)
    for k in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS", "MAKEOVERRIDES", "BUILD",
              "SAN", "DESTDIR", "PREFIX", "SYSCONFDIR"):
        env.pop(k, None)
    return env


def run_make(*args):
    r = subprocess.run(["make", "-j2", *args], cwd=TOP, env=make_env(),
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, "make %s failed:\n%s%s" % (
        " ".join(args), r.stdout[-3000:], r.stderr[-3000:])
    return r


@pytest.fixture(scope="module")
def dest(tmp_path_factory):
    d = tmp_path_factory.mktemp("destdir")
    run_make("install", "DESTDIR=%s" % d, "PREFIX=%s" % PREFIX)
    return d


def inst(dest, path):
    """An installed path: path is absolute as on the target system."""
    return os.path.join(str(dest), path.lstrip("/"))


def expected_files():
    """Every file make install must install, with its mode."""
    p = PREFIX.lstrip("/")
    want = {
        p + "/sbin/etrnd": 0o755,
        p + "/sbin/etrnctl": 0o755,
        p + "/bin/etrn": 0o755,
        "etc/etrnd/etrnd.conf.example": 0o644,
        p + "/share/doc/etrnd/README.md": 0o644,
    }
    for m in MAN_PAGES:
        sect = m.rsplit(".", 1)[1]
        want["%s/share/man/man%s/%s" % (p, sect, os.path.basename(m))] = 0o644
    for f in sorted(os.listdir(os.path.join(TOP, "docs"))):
        if f.endswith(".md"):
            want[p + "/share/doc/etrnd/" + f] = 0o644
    for root, _dirs, files in os.walk(os.path.join(TOP, "contrib")):
        for f in files:
            rel = os.path.relpath(os.path.join(root, f), TOP)
            want[p + "/share/doc/etrnd/" + rel] = 0o644
    for u in UNITS:
        want[p + "/lib/systemd/system/" + u] = 0o644
    return want


def installed_files(dest):
    got = {}
    for root, _dirs, files in os.walk(str(dest)):
        for f in files:
            full = os.path.join(root, f)
            got[os.path.relpath(full, str(dest))] = stat.S_IMODE(os.lstat(full).st_mode)
    return got


def test_install_exact_files_and_modes(dest):
    want, got = expected_files(), installed_files(dest)
    missing = sorted(set(want) - set(got))
    extra = sorted(set(got) - set(want))
    assert not missing, "not installed: %s" % missing
    assert not extra, "installed but not expected: %s" % extra
    wrong = {f: "%04o, expected %04o" % (got[f], m) for f, m in want.items() if got[f] != m}
    assert not wrong, "wrong modes: %s" % wrong
    # the installed programs are the ones just built, not stale copies
    for f in ("sbin/etrnd", "sbin/etrnctl", "bin/etrn"):
        assert os.path.getsize(inst(dest, PREFIX + "/" + f)) > 0


def test_units_point_at_prefix(dest):
    svc = open(inst(dest, PREFIX + "/lib/systemd/system/etrnd.service")).read()
    assert "ExecStart=%s/sbin/etrnd -c /etc/etrnd/etrnd.conf" % PREFIX in svc
    assert "ExecReload=/bin/kill -HUP $MAINPID" in svc
    tmpl = open(inst(dest, PREFIX + "/lib/systemd/system/etrn@.service")).read()
    assert "ExecStart=%s/bin/etrn " % PREFIX in tmpl


def test_uninstall_removes_everything(tmp_path):
    d = tmp_path / "d"
    run_make("install", "DESTDIR=%s" % d, "PREFIX=/opt/etrnd")
    assert installed_files(d)
    svc = open(inst(d, "/opt/etrnd/lib/systemd/system/etrnd.service")).read()
    assert "ExecStart=/opt/etrnd/sbin/etrnd " in svc   # PREFIX substituted
    run_make("uninstall", "DESTDIR=%s" % d, "PREFIX=/opt/etrnd")
    assert installed_files(d) == {}


@pytest.mark.parametrize("page", MAN_PAGES)
def test_man_page_renders_without_warnings(dest, page):
    sect = page.rsplit(".", 1)[1]
    path = inst(dest, "%s/share/man/man%s/%s" % (PREFIX, sect, os.path.basename(page)))
    r = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z", path],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and r.stderr == "", "groff: %s" % r.stderr
    if shutil.which("man"):
        env = dict(os.environ, MANWIDTH="80", MAN_KEEP_FORMATTING="0")
        r = subprocess.run(["man", "--warnings", "-l", path], capture_output=True,
                           text=True, timeout=30, env=env)
        assert r.returncode == 0 and r.stderr == "", "man: %s" % r.stderr
        assert "NAME" in re.sub(".\b", "", r.stdout)    # without overstrike


def test_installed_etrnd_accepts_installed_example(dest):
    conf = inst(dest, "/etc/etrnd/etrnd.conf.example")
    r = subprocess.run([inst(dest, PREFIX + "/sbin/etrnd"), "-n", "-c", conf],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert "configuration OK" in r.stdout


def man_section(page, name):
    """The roff source of one .SH section."""
    text = open(os.path.join(TOP, page)).read()
    m = re.search(r"^\.SH %s\n(.*?)(?=^\.SH |\Z)" % re.escape(name), text, re.S | re.M)
    assert m, "%s has no %s section" % (page, name)
    return m.group(1)


def tagged(section):
    """The words of each .TP tag line: options and commands."""
    out = []
    lines = section.split("\n")
    for i, line in enumerate(lines[:-1]):
        if line == ".TP":
            tag = lines[i + 1].replace("\\-", "-")
            tag = re.sub(r"\\f[BIRP]", "", tag)
            out.append(tag)
    return out


def man_options(page):
    opts = set()
    for tag in tagged(man_section(page, "OPTIONS")):
        opts.update(re.findall(r"(?<![\w-])(--?[a-z][a-z-]*)", tag))
    return opts


def man_commands(page):
    cmds = set()
    for tag in tagged(man_section(page, "COMMANDS")):
        m = re.match(r"\.B[IR]? (\w+)", tag)
        assert m, "a COMMANDS tag that is not a command: %r" % tag
        cmds.add(m.group(1))
    return cmds


def help_text(prog, *args, expect_rc=0):
    r = subprocess.run([prog, *args], capture_output=True, text=True, timeout=30)
    assert r.returncode == expect_rc, "%s %s exited %d, expected %d:\n%s%s" % (
        prog, " ".join(args), r.returncode, expect_rc, r.stdout, r.stderr)
    return r.stdout + r.stderr


# A program's help need not name the help option itself.
HELP_OPTS = {"-h", "--help"}


def test_etrn_help_names_every_option_of_its_man_page(dest):
    text = help_text(inst(dest, PREFIX + "/bin/etrn"), "--help")
    opts = man_options("man/etrn.1")
    assert {"--odmr", "--wait", "--deliver-to", "-p"} <= opts
    missing = sorted(o for o in opts - HELP_OPTS if o not in text)
    assert not missing, "etrn(1) lists options that etrn --help does not: %s" % missing


def test_etrnctl_help_names_every_command_and_option_of_its_man_page(dest):
    text = help_text(inst(dest, PREFIX + "/sbin/etrnctl"), "--help")
    cmds = man_commands("man/etrnctl.8")
    assert {"summary", "list", "show", "flush", "hold", "release", "requeue",
            "delete", "expire"} <= cmds
    missing = sorted(c for c in cmds if not re.search(r"^\s+%s\b" % c, text, re.M))
    assert not missing, "etrnctl(8) lists commands that etrnctl --help does not: %s" % missing
    opts = man_options("man/etrnctl.8")
    missing = sorted(o for o in opts - HELP_OPTS if o not in text)
    assert not missing, "etrnctl(8) lists options that etrnctl --help does not: %s" % missing
    # and the other way round: every command of the help is documented
    helped = set(re.findall(r"^  ([a-z]+)\b", text, re.M))
    assert helped <= cmds, "commands without a man page entry: %s" % sorted(helped - cmds)


def test_etrnd_usage_names_every_option_of_its_man_page(dest):
    text = help_text(inst(dest, PREFIX + "/sbin/etrnd"), "-h", expect_rc=2)
    opts = man_options("man/etrnd.8")
    assert opts == {"-c", "-n", "-v"}, opts
    missing = sorted(o for o in opts if o not in text)
    assert not missing, missing


def test_units_verify(dest, tmp_path):
    # systemd-analyze comes with Debian's systemd (scripts/install-deps.sh)
    assert shutil.which("systemd-analyze"), "systemd-analyze is missing"

    # the units name /usr/local/...: point them at the DESTDIR copies
    for u in UNITS:
        text = open(inst(dest, PREFIX + "/lib/systemd/system/" + u)).read()
        text = text.replace(PREFIX + "/", inst(dest, PREFIX) + "/")
        (tmp_path / u).write_text(text)
    r = subprocess.run(["systemd-analyze", "verify", "--man=no",
                        str(tmp_path / "etrnd.service"),
                        str(tmp_path / "etrn@relay.example.net.service"),
                        str(tmp_path / "etrn@relay.example.net.timer")],
                       capture_output=True, text=True, timeout=60, cwd=str(tmp_path))
    ours = [line for line in (r.stdout + r.stderr).splitlines()
            if "etrnd.service" in line or "etrn@" in line]
    assert r.returncode == 0 and not ours, r.stdout + r.stderr


def test_ip_up_hook_is_valid_sh(dest):
    hook = inst(dest, PREFIX + "/share/doc/etrnd/contrib/ip-up.d/etrn")
    assert open(hook).readline() == "#!/bin/sh\n"
    for sh in ("sh", "dash", "bash"):
        if shutil.which(sh):
            r = subprocess.run([sh, "-n", hook], capture_output=True, text=True)
            assert r.returncode == 0, "%s -n: %s" % (sh, r.stderr)
    assert os.access(os.path.join(TOP, "contrib/ip-up.d/etrn"), os.X_OK)


def test_generated_docs_are_up_to_date():
    r = subprocess.run(["/usr/bin/python3", os.path.join(TOP, "scripts/gen-conf-doc.py"),
                        "--check"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, ("docs out of date with the schema; run "
                               "scripts/gen-conf-doc.py\n" + r.stdout + r.stderr)


def load_generator():
    spec = importlib.util.spec_from_file_location(
        "gen_conf_doc", os.path.join(TOP, "scripts/gen-conf-doc.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_every_schema_key_is_documented():
    gen = load_generator()
    keys = gen.parse_schema(os.path.join(TOP, gen.SCHEMA))
    assert len(keys) > 30
    man = open(os.path.join(TOP, "man/etrnd.conf.5")).read()
    md = open(os.path.join(TOP, "docs/configuration.md")).read()
    for k in keys:
        assert "\n.B %s\n" % k["name"] in man, k["name"]
        assert "| `%s` |" % k["name"] in md, k["name"]


def test_restart_keys_in_etrnd_8_are_the_schemas():
    gen = load_generator()
    keys = gen.parse_schema(os.path.join(TOP, gen.SCHEMA))
    fixed = {k["name"] for k in keys if not k["reloadable"]}
    sig = man_section("man/etrnd.8", "SIGNALS")
    m = re.search(r"These keys need a restart.*?\n((?:\.BR \w+ [,.]\n)+)", sig, re.S)
    assert m, "etrnd(8) SIGNALS lists no restart keys"
    listed = set(re.findall(r"\.BR (\w+) [,.]", m.group(1)))
    assert listed == fixed, "etrnd(8) says %s need a restart; the schema says %s" % (
        sorted(listed), sorted(fixed))
    ops = open(os.path.join(TOP, "docs/operations.md")).read()
    m = re.search(r"These keys need `systemctl restart etrnd`:(.*?)\.\s", ops, re.S)
    assert m, "docs/operations.md lists no restart keys"
    assert set(re.findall(r"`(\w+)`", m.group(1))) == fixed


def logged_events():
    """Every event= in src/: literal names, and for "event=%s" the words the
    function that computes the argument returns."""
    events = {}
    for root, _dirs, files in os.walk(os.path.join(TOP, "src")):
        for f in files:
            if not f.endswith(".c"):
                continue
            path = os.path.join(root, f)
            text = open(path, encoding="utf-8").read()
            rel = os.path.relpath(path, TOP)
            for m in re.finditer(r"event=(\w+)", text):
                events.setdefault(m.group(1), rel)
            # event=%s: the first argument after the format names a function
            for m in re.finditer(r'"event=%s[^"]*"(?:\s*"[^"]*")*\s*,\s*(\w+)\s*\(', text):
                fn = m.group(1)
                body = re.search(r"^[^\n;]*\b%s\s*\([^)]*\)\s*\{(.*?)\n\}" % fn, text, re.S | re.M)
                assert body, "%s: event=%%s from %s(), which I cannot find" % (rel, fn)
                words = re.findall(r'return\s+"(\w+)"\s*;', body.group(1))
                assert words, "%s: %s() returns no event names" % (rel, fn)
                for w in words:
                    events.setdefault(w, rel)
    return events


def documented_events():
    """The names in the first column of docs/logging.md's event tables."""
    names = set()
    in_table = False
    for line in open(os.path.join(TOP, "docs/logging.md")).read().splitlines():
        if line.startswith("| event |"):
            in_table = True
            continue
        if not line.startswith("|"):
            in_table = False
            continue
        if in_table:
            first = line.split("|")[1]
            names.update(re.findall(r"`(\w+)`", first))
    return names


def test_every_logged_event_is_documented():
    events = logged_events()
    # the outcome words come through event=%s: make sure that path is seen
    assert {"delivered", "deferred", "held", "bounced", "queued", "connect"} <= set(events)
    doc = documented_events()
    missing = {e: where for e, where in events.items() if e not in doc}
    assert not missing, "events logged but not in docs/logging.md: %s" % missing


def test_no_documented_event_that_is_not_logged():
    stale = documented_events() - set(logged_events())
    assert not stale, "docs/logging.md documents events no source logs: %s" % sorted(stale)
