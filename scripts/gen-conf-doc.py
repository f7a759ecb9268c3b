#!/usr/bin/python3
"""gen-conf-doc.py - the configuration key reference, from the schema.

Reads the rows of config_schema[] in src/config/config_schema.c (the table
etrnd's parser itself uses) and writes the key reference into two files,
between their BEGIN/END GENERATED markers:

    man/etrnd.conf.5       a roff (man(7)) tagged list per section
    docs/configuration.md  a Markdown table per section

Everything outside the markers is hand-written and left alone.

    scripts/gen-conf-doc.py           rewrite the generated parts
    scripts/gen-conf-doc.py --check   exit 1 (with a diff) when a committed
                                      file differs from what would be written

Defaults, bounds, "required" and "restart to change" come from the row, so
the documentation cannot drift from the code: tests/e2e/test_install.py
runs --check.
"""

import argparse
import difflib
import os
import re
import sys

TOP = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
SCHEMA = "src/config/config_schema.c"
MAN = "man/etrnd.conf.5"
MD = "docs/configuration.md"

# The markers: a roff comment in the man page, an HTML comment in Markdown.
MAN_BEGIN = '.\\" BEGIN GENERATED KEYS: scripts/gen-conf-doc.py, do not edit'
MAN_END = '.\\" END GENERATED KEYS'
MD_BEGIN = "<!-- BEGIN GENERATED KEYS: scripts/gen-conf-doc.py, do not edit -->"
MD_END = "<!-- END GENERATED KEYS -->"

# Constants the table's bounds are written with (config_schema.c).
CONSTS = {"KIB": 1024, "MIB": 1024 ** 2, "GIB": 1024 ** 3,
          "MINUTE": 60, "HOUR": 3600, "DAY": 86400}

# Field order of struct config_key (config.h).
FIELDS = ["name", "type", "scope", "off", "noff", "set", "check", "def",
          "min", "max", "words", "reloadable", "required", "help"]

TYPE_NAMES = {  # as config_schema.c's type_name() calls them
    "CONFIG_T_STRING": "string", "CONFIG_T_PATH": "path",
    "CONFIG_T_UINT": "number", "CONFIG_T_SIZE": "size",
    "CONFIG_T_DURATION": "duration", "CONFIG_T_BOOL": "yes/no",
    "CONFIG_T_NETLIST": "networks", "CONFIG_T_LISTEN": "addresses",
    "CONFIG_T_ENUM": "word", "CONFIG_T_ROUTE": "route",
    "CONFIG_T_STRLIST": "domains",
}
SCOPES = [("CONFIG_S_GLOBAL", "Global keys",
           "Before the first section: they apply to the whole daemon."),
          ("CONFIG_S_DOMAIN", "[domain NAME] keys",
           "One section per relay domain; NAME is the domain."),
          ("CONFIG_S_QUEUE", "[queue NAME] keys",
           "A named queue, flushed together by ETRN #NAME.")]


class SchemaError(Exception):
    pass


def strip_comments(text):
    """C comments out, string literals kept."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(text[i:j + 1])
            i = j + 1
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            if j < 0:
                raise SchemaError("unterminated comment")
            out.append(" ")
            i = j + 2
        elif text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        else:
            out.append(c)
            i += 1
    return "".join(out)


def split_top(s, sep=","):
    """s split at sep outside strings, parentheses and braces."""
    parts, depth, cur, i = [], 0, [], 0
    while i < len(s):
        c = s[i]
        if c == '"':
            j = i + 1
            while s[j] != '"':
                j += 2 if s[j] == "\\" else 1
            cur.append(s[i:j + 1])
            i = j + 1
            continue
        if c in "({":
            depth += 1
        elif c in ")}":
            depth -= 1
        if c == sep and depth == 0:
            parts.append("".join(cur).strip())
            cur = []
        else:
            cur.append(c)
        i += 1
    if "".join(cur).strip():
        parts.append("".join(cur).strip())
    return parts


def c_string(tok):
    """A (possibly concatenated) C string literal, or None for NULL."""
    tok = tok.strip()
    if tok == "NULL":
        return None
    lits = re.findall(r'"((?:[^"\\]|\\.)*)"', tok)
    if not lits or re.sub(r'"((?:[^"\\]|\\.)*)"', "", tok).strip():
        raise SchemaError("not a string literal: %r" % tok)
    return "".join(bytes(x, "ascii").decode("unicode_escape") for x in lits)


def c_number(tok):
    """A bound: digits, the CONSTS and * + ( ) only."""
    expr = tok.strip()
    for k, v in CONSTS.items():
        expr = re.sub(r"\b%s\b" % k, str(v), expr)
    expr = re.sub(r"(\d+)(?:ULL|ull|UL|ul|U|u|LL|ll|L|l)\b", r"\1", expr)
    if not re.fullmatch(r"[0-9\s*+()]+", expr):
        raise SchemaError("bound I cannot read: %r" % tok)
    return int(eval(expr, {"__builtins__": {}}, {}))  # digits and * + ( ) only


def parse_schema(path):
    text = strip_comments(open(path, encoding="utf-8").read())
    words = {}
    for m in re.finditer(r"static\s+const\s+char\s*\*\s*const\s+(\w+)\s*\[\]\s*=\s*\{(.*?)\};",
                         text, re.S):
        words[m.group(1)] = [c_string(w) for w in split_top(m.group(2))
                             if w.strip() != "NULL"]
    m = re.search(r"const\s+struct\s+config_key\s+config_schema\s*\[\]\s*=\s*\{(.*?)\n\};",
                  text, re.S)
    if not m:
        raise SchemaError("config_schema[] not found in %s" % path)
    keys = []
    for row in split_top(m.group(1)):
        if not (row.startswith("{") and row.endswith("}")):
            raise SchemaError("not a row: %r" % row[:60])
        f = split_top(row[1:-1])
        if len(f) != len(FIELDS):
            raise SchemaError("row with %d fields, expected %d: %r"
                              % (len(f), len(FIELDS), row[:60]))
        r = dict(zip(FIELDS, f))
        k = {
            "name": c_string(r["name"]),
            "type": r["type"],
            "scope": r["scope"],
            "def": c_string(r["def"]),
            "min": c_number(r["min"]),
            "max": c_number(r["max"]),
            "words": None if r["words"] == "NULL" else words[r["words"]],
            "reloadable": r["reloadable"] == "true",
            "required": r["required"] == "true",
            "help": c_string(r["help"]),
        }
        if k["type"] not in TYPE_NAMES:
            raise SchemaError("unknown type %s of %s" % (k["type"], k["name"]))
        if k["scope"] not in dict((s[0], 1) for s in SCOPES):
            raise SchemaError("unknown scope %s of %s" % (k["scope"], k["name"]))
        keys.append(k)
    if not keys:
        raise SchemaError("no rows in config_schema[]")
    return keys


def num_print(t, n):
    """config_schema.c's num_print(): the largest exact unit."""
    if t == "CONFIG_T_SIZE":
        units = [("G", 1024 ** 3), ("M", 1024 ** 2), ("k", 1024)]
    elif t == "CONFIG_T_DURATION":
        units = [("w", 7 * 86400), ("d", 86400), ("h", 3600), ("m", 60)]
    else:
        units = []
    for c, mult in units:
        if n and n % mult == 0:
            return "%d%s" % (n // mult, c)
    return "%d%s" % (n, "s" if t == "CONFIG_T_DURATION" else "")


DEFAULT_IN_HELP = re.compile(r"\s*\(default: ([^()]*)\)")


def help_text(k):
    """The row's help, less a "(default: ...)" or "(required)" that the
    generated default column says already."""
    h = k["help"]
    if k["required"]:
        h = h.replace(" (required)", "")
    if k["def"] is None:
        h = DEFAULT_IN_HELP.sub("", h)
    return h


def facts(k):
    """(type, default, bounds, notes) as plain text; a default that is
    not a value (required, none, words from the help) is in parentheses."""
    typ = TYPE_NAMES[k["type"]]
    if k["words"]:
        typ += ": " + " | ".join(k["words"])
    d = k["def"]
    m = DEFAULT_IN_HELP.search(k["help"])
    if k["required"]:
        default = "(required)"
    elif d is None and m:
        default = "(%s)" % m.group(1)
    elif d is None:
        default = "(none)"
    elif k["type"] == "CONFIG_T_DURATION" and d.isdigit():
        default = d + "s"        # a plain number of seconds
    else:
        default = d
    if k["type"] in ("CONFIG_T_UINT", "CONFIG_T_SIZE", "CONFIG_T_DURATION"):
        bounds = "%s to %s" % (num_print(k["type"], k["min"]),
                               num_print(k["type"], k["max"]))
    elif k["max"]:
        bounds = "at most %d %s" % (k["max"], "entry" if k["max"] == 1 else "entries")
    else:
        bounds = ""
    notes = [] if k["reloadable"] else ["restart to change"]
    return typ, default, bounds, notes


def roff_escape(s):
    return s.replace("\\", "\\e")


def roff_line(s):
    s = roff_escape(s)
    if s[:1] in (".", "'"):
        s = "\\&" + s
    return s


def gen_roff(keys):
    out = []
    for scope, title, intro in SCOPES:
        ks = [k for k in keys if k["scope"] == scope]
        if not ks:
            continue
        out.append(".SS %s" % roff_line(title))
        out.append(roff_line(intro))
        for k in ks:
            typ, default, bounds, notes = facts(k)
            out.append(".TP")
            out.append(".B %s" % roff_escape(k["name"]))
            what = [typ, {"(required)": "required", "(none)": "no default"}.get(
                default, "default " + default)]
            if bounds:
                what.append(bounds)
            what += notes
            out.append(roff_line("(%s)" % "; ".join(what)))
            out.append(".br")
            out.append(roff_line(help_text(k)))
    return out


def md_cell(s):
    return (s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace("|", "\\|"))


def gen_md(keys):
    out = []
    for scope, title, intro in SCOPES:
        ks = [k for k in keys if k["scope"] == scope]
        if not ks:
            continue
        if out:
            out.append("")
        out.append("### %s" % md_cell(title))
        out.append("")
        out.append(md_cell(intro))
        out.append("")
        out.append("| key | type | default | range | meaning |")
        out.append("|---|---|---|---|---|")
        for k in ks:
            typ, default, bounds, notes = facts(k)
            meaning = md_cell(help_text(k))
            if notes:
                meaning += " *(%s)*" % "; ".join(notes)
            default = md_cell(default) if default.startswith("(") else "`%s`" % default
            out.append("| `%s` | %s | %s | %s | %s |" % (
                k["name"], md_cell(typ), default, md_cell(bounds), meaning))
    return out


def splice(path, begin, end, lines):
    """The file's text with the lines between its markers replaced."""
    text = open(path, encoding="utf-8").read()
    old = text.split("\n")
    try:
        b = old.index(begin)
        e = old.index(end, b + 1)
    except ValueError:
        raise SchemaError("%s: the markers %r and %r are missing" % (path, begin, end))
    return text, "\n".join(old[:b + 1] + lines + old[e:])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true",
                    help="compare, do not write; exit 1 when out of date")
    ap.add_argument("--top", default=TOP, help="the source tree (default: this script's)")
    a = ap.parse_args()
    try:
        keys = parse_schema(os.path.join(a.top, SCHEMA))
        results = [
            (MAN,) + splice(os.path.join(a.top, MAN), MAN_BEGIN, MAN_END, gen_roff(keys)),
            (MD,) + splice(os.path.join(a.top, MD), MD_BEGIN, MD_END, gen_md(keys)),
        ]
    except (OSError, SchemaError) as e:
        print("gen-conf-doc: %s" % e, file=sys.stderr)
        return 2
    stale = 0
    for rel, old, new in results:
        if old == new:
            continue
        if a.check:
            stale += 1
            sys.stdout.writelines(difflib.unified_diff(
                old.splitlines(True), new.splitlines(True), rel, rel + " (generated)"))
        else:
            with open(os.path.join(a.top, rel), "w", encoding="utf-8") as f:
                f.write(new)
            print("gen-conf-doc: wrote %s" % rel)
    if stale:
        print("gen-conf-doc: %d file(s) out of date with %s: run scripts/gen-conf-doc.py"
              % (stale, SCHEMA), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
