"""dialoguectl against a real database: lists, members, import/export,
caps, stakeholder groups, exit codes, --json, and an empty archive.

Runs the binary named by $DIALOGUECTL with a config written to tmp_path.
"""
import calendar
import csv
import io
import json
import os
import sqlite3
import subprocess
import threading
import time

import pytest

CTL = os.environ.get("DIALOGUECTL")
if not CTL or not os.access(CTL, os.X_OK):
    pytest.skip("DIALOGUECTL is not set to the dialoguectl binary", allow_module_level=True)

GROUPS = ["technical", "civil-society", "business", "government", "academia", "other"]

# The structure of config/dialogue.conf, with the database in tmp_path and a
# third, small list for the cap.
CONFIG = """\
# test config
[server]
hostname = lists.example.org
listen = 127.0.0.1:2525
database = {db}
secret_file = {secret}
max_message_size = 25M
max_connections = 500
tls_certificate =
tls_key =

[delivery]
relay = 127.0.0.1:25
verp = yes
max_recipients = 50
connections = 4
retry = 5m, 15m, 1h, 4h
give_up_after = 5d

[http]
listen = 127.0.0.1:8080
base_url = http://127.0.0.1:8080

[list dialogue]
address = dialogue@lists.example.org
title = Dialogue on Internet Cooperation Evolution
description = Open discussion.
subscribe_policy = confirm
post_policy = members
nonmember_action = hold
archive = public
subject_prefix = [Dialogue]
moderators = mod@example.org
max_members = 0
stakeholder_groups =
term = 0

[list steering]
address = steering@lists.example.org
title = Dialogue Steering Group
description = The Steering Group.
subscribe_policy = closed
post_policy = members
nonmember_action = reject
archive = public
subject_prefix = [Steering]
moderators = mod@example.org
max_members = 25
stakeholder_groups = technical, civil-society, business, government, academia, other
term = 730d

[list trio]
address = trio@lists.example.org
title = A list of three
subscribe_policy = closed
post_policy = members
nonmember_action = reject
archive = private
max_members = 3
stakeholder_groups =
term = 0
"""

SANITIZER_MARKS = ("AddressSanitizer", "LeakSanitizer", "runtime error:", "UndefinedBehavior")


class Result:
    def __init__(self, proc):
        self.rc = proc.returncode
        self.out = proc.stdout
        self.err = proc.stderr.decode("utf-8", "replace")

    @property
    def text(self):
        return self.out.decode("utf-8")

    def json(self):
        """The one JSON value on stdout (json.loads refuses any extra data)."""
        text = self.out.decode("utf-8")
        assert text.endswith("\n") and not text.endswith("\n\n"), repr(text)
        return json.loads(text)


@pytest.fixture
def env(tmp_path):
    conf = tmp_path / "dialogue.conf"
    conf.write_text(CONFIG.format(db=tmp_path / "dialogue.db", secret=tmp_path / "secret"))
    return {"conf": conf, "db": tmp_path / "dialogue.db", "dir": tmp_path}


def run(env, *args, stdin=None, conf=True, extra_env=None, timeout=60):
    cmd = [CTL]
    if conf:
        cmd += ["-c", str(env["conf"])]
    cmd += [str(a) for a in args]
    e = dict(os.environ)
    e.pop("DIALOGUE_CONF", None)
    if extra_env:
        e.update(extra_env)
    proc = subprocess.run(cmd, input=stdin, capture_output=True, env=e, timeout=timeout)
    r = Result(proc)
    for mark in SANITIZER_MARKS:
        assert mark not in r.err, r.err
    return r


def ok(env, *args, **kw):
    r = run(env, *args, **kw)
    assert r.rc == 0, (args, r.rc, r.err)
    assert r.err == "", r.err
    return r


def fails(env, code, *args, **kw):
    r = run(env, *args, **kw)
    assert r.rc == code, (args, r.rc, r.err, r.out)
    assert r.err.startswith("dialoguectl: "), r.err
    return r


def members(env, lst):
    return ok(env, "--json", "members", "list", lst).json()


# ---- lists and check ----

LIST_FIELDS = {"name", "address", "title", "members", "held", "archived",
               "subscribe_policy", "post_policy"}


def test_lists_json(env):
    lists = ok(env, "--json", "lists").json()
    assert [l["name"] for l in lists] == ["dialogue", "steering", "trio"]
    for l in lists:
        assert LIST_FIELDS <= set(l)
        assert l["members"] == 0 and l["held"] == 0 and l["archived"] == 0
    d, s, t = lists
    assert d["address"] == "dialogue@lists.example.org"
    assert d["title"] == "Dialogue on Internet Cooperation Evolution"
    assert (d["subscribe_policy"], d["post_policy"]) == ("confirm", "members")
    assert (s["subscribe_policy"], s["post_policy"]) == ("closed", "members")
    assert s["max_members"] == 25 and s["stakeholder_groups"] == GROUPS
    assert s["missing_groups"] == GROUPS
    assert t["max_members"] == 3


def test_lists_counts_and_text(env):
    ok(env, "members", "add", "steering", "a@example.org", "--stakeholder", "technical")
    ok(env, "members", "add", "dialogue", "b@example.org")
    lists = {l["name"]: l for l in ok(env, "--json", "lists").json()}
    assert lists["steering"]["members"] == 1
    assert lists["dialogue"]["members"] == 1
    assert "technical" not in lists["steering"]["missing_groups"]
    text = ok(env, "lists").text
    assert "steering@lists.example.org" in text and "1/25" in text
    # --json may also follow the command.
    assert ok(env, "lists", "--json").json() == ok(env, "--json", "lists").json()


def test_check(env):
    r = ok(env, "check")
    lines = r.text.splitlines()
    assert lines and all(l.startswith("ok ") for l in lines), r.text
    assert os.path.exists(env["db"])
    j = ok(env, "--json", "check").json()
    assert j["ok"] is True and j["integrity"] == "ok" and j["lists"] == 3


def test_check_refuses_a_broken_web_template(env):
    """The web templates are part of the configuration, as for dialogued -n."""
    web = env["dir"] / "web"
    web.mkdir()
    (web / "list.html").write_text("<h1>{{list_title}}</h1>\n{{#threads}}never closed\n")
    text = env["conf"].read_text()
    assert text.count("[http]\n") == 1
    env["conf"].write_text(text.replace("[http]\n", "[http]\nweb = %s\n" % web))
    r = fails(env, 78, "check")
    assert "list.html" in r.err and "never closed" in r.err, r.err
    (web / "list.html").write_text("<h1>{{list_title}}</h1>\n")
    r = ok(env, "check")
    assert "ok web templates %s" % web in r.text, r.text
    assert ok(env, "--json", "check").json()["web"] == str(web)


def test_default_config_from_environment(env):
    r = run(env, "--json", "lists", conf=False, extra_env={"DIALOGUE_CONF": str(env["conf"])})
    assert r.rc == 0, r.err
    assert len(r.json()) == 3


# ---- members ----

def test_members_add_list_set_remove(env):
    r = ok(env, "--json", "members", "add", "steering", "Alice@Example.ORG",
           "--name", "Alice Ä", "--stakeholder", "Technical")
    m = r.json()
    assert set(m) >= {"address", "name", "stakeholder", "status", "delivery",
                      "moderated", "joined", "term_ends"}
    # The domain is lowercased, the local part kept; the group takes the
    # list's spelling.
    assert m["address"] == "Alice@example.org"
    assert m["name"] == "Alice Ä" and m["stakeholder"] == "technical"
    assert m["status"] == "active" and m["delivery"] == "each" and m["moderated"] is False
    assert m["joined"].endswith("Z") and m["term_ends"].endswith("Z")

    ml = members(env, "steering")
    assert [x["address"] for x in ml] == ["Alice@example.org"]

    # steering has term = 730d: term_ends = joined + 730 days.
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    joined = calendar.timegm(time.strptime(ml[0]["joined"], fmt))
    ends = calendar.timegm(time.strptime(ml[0]["term_ends"], fmt))
    assert ends - joined == 730 * 86400

    m = ok(env, "--json", "members", "set", "steering", "alice@example.org",
           "delivery=digest", "moderated=yes", "name=A. Liddell", "stakeholder=academia",
           "term_ends=2030-01-02").json()
    assert m["delivery"] == "digest" and m["moderated"] is True
    assert m["name"] == "A. Liddell" and m["stakeholder"] == "academia"
    assert m["term_ends"] == "2030-01-02T00:00:00Z"
    m = ok(env, "--json", "members", "set", "steering", "alice@example.org",
           "term_ends=none", "moderated=no", "delivery=none").json()
    assert m["term_ends"] is None and m["moderated"] is False and m["delivery"] == "none"

    text = ok(env, "members", "list", "steering").text
    assert "Alice@example.org" in text and "A. Liddell" in text

    ok(env, "members", "remove", "steering", "ALICE@EXAMPLE.ORG")
    assert members(env, "steering") == []
    fails(env, 66, "members", "remove", "steering", "alice@example.org")
    fails(env, 66, "members", "set", "steering", "alice@example.org", "delivery=each")


def test_members_no_term_on_list_without_one(env):
    m = ok(env, "--json", "members", "add", "dialogue", "x@example.org").json()
    assert m["term_ends"] is None and m["stakeholder"] is None and m["name"] is None


def test_members_add_duplicate(env):
    ok(env, "members", "add", "dialogue", "dup@example.org")
    fails(env, 65, "members", "add", "dialogue", "DUP@example.org")
    assert len(members(env, "dialogue")) == 1


def test_members_set_bad_values(env):
    ok(env, "members", "add", "steering", "s@example.org", "--stakeholder", "business")
    before = members(env, "steering")
    for kv in ["delivery=weekly", "moderated=maybe", "stakeholder=astronauts",
               "stakeholder=", "term_ends=2030-02-30", "term_ends=tomorrow", "color=red",
               "noequals", "=x", "name=bad\x01name"]:
        fails(env, 65, "members", "set", "steering", "s@example.org", kv)
    # All or nothing: a good setting before a bad one is not applied.
    fails(env, 65, "members", "set", "steering", "s@example.org", "delivery=digest",
          "moderated=maybe")
    assert members(env, "steering") == before


def test_stakeholder_rules(env):
    # Required when the list has groups, and one of them.
    r = fails(env, 65, "members", "add", "steering", "n@example.org")
    assert "stakeholder" in r.err
    r = fails(env, 65, "members", "add", "steering", "n@example.org", "--stakeholder", "pirates")
    assert "pirates" in r.err
    assert members(env, "steering") == []
    for g in GROUPS:
        ok(env, "members", "add", "steering", f"{g}@example.org", "--stakeholder", g)
    assert ok(env, "--json", "lists").json()[1]["missing_groups"] == []
    # Free text on a list without groups.
    m = ok(env, "--json", "members", "add", "dialogue", "f@example.org",
           "--stakeholder", "anything").json()
    assert m["stakeholder"] == "anything"


def test_malformed_addresses(env):
    for bad in ["not-an-address", "a@", "@b.example", "a b@example.org", "a@@b",
                "a@b..example", "", "x" * 300 + "@example.org", "a\n@example.org"]:
        fails(env, 65, "members", "add", "dialogue", bad)
    fails(env, 65, "members", "remove", "dialogue", "nope")
    assert members(env, "dialogue") == []
    # Angle brackets around a valid address are fine.
    ok(env, "members", "add", "dialogue", "<ab@example.org>")
    assert members(env, "dialogue")[0]["address"] == "ab@example.org"


def test_unknown_list(env):
    for args in (["members", "list", "nosuch"], ["members", "add", "nosuch", "a@b.example"],
                 ["members", "remove", "nosuch", "a@b.example"], ["members", "export", "nosuch"],
                 ["archive", "list", "nosuch"], ["archive", "search", "nosuch", "x"],
                 ["archive", "export", "nosuch"]):
        r = fails(env, 66, *args)
        assert "nosuch" in r.err
    # A list may be named by its address too.
    ok(env, "members", "list", "steering@lists.example.org")


def test_cap_on_add(env):
    for i in range(3):
        ok(env, "members", "add", "trio", f"m{i}@example.org")
    r = fails(env, 65, "members", "add", "trio", "m3@example.org")
    assert "full" in r.err
    assert len(members(env, "trio")) == 3
    # Removing one makes room again.
    ok(env, "members", "remove", "trio", "m0@example.org")
    ok(env, "members", "add", "trio", "m3@example.org")


def test_invite_queues_an_invitation_not_a_member(env):
    # The person is only added once they accept (test_subscribe.py covers
    # the whole round trip through the daemon).
    r = ok(env, "members", "add", "dialogue", "i@example.org", "--invite")
    assert "invited i@example.org" in r.text
    assert members(env, "dialogue") == []
    q = ok(env, "--json", "queue", "list").json()
    assert [e["recipient"] for e in q] == ["i@example.org"]


# ---- import / export ----

def write(env, name, data):
    p = env["dir"] / name
    p.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return p


def test_import_export_round_trip(env):
    src = ("\ufeffaddress,name,stakeholder\r\n"
           "one@example.org,\"Doe, Jane\",technical\r\n"
           "\r\n"
           "two@example.org,\"Say \"\"hi\"\"\",civil-society\r\n"
           "Three@Example.ORG,Zoë Ω,Business\n"
           "four@example.org,\"  padded  \",other\n"
           "   \n")
    p = write(env, "in.csv", src)
    r = ok(env, "members", "import", "steering", p)
    assert "imported 4" in r.text
    ml = {m["address"]: m for m in members(env, "steering")}
    assert set(ml) == {"one@example.org", "two@example.org", "Three@example.org",
                       "four@example.org"}
    assert ml["one@example.org"]["name"] == "Doe, Jane"
    assert ml["two@example.org"]["name"] == 'Say "hi"'
    assert ml["Three@example.org"]["stakeholder"] == "business"

    exported = ok(env, "members", "export", "steering").text
    rows = list(csv.reader(io.StringIO(exported)))
    assert rows[0] == ["address", "name", "stakeholder"]
    assert sorted(rows[1:]) == sorted([m["address"], m["name"] or "", m["stakeholder"]]
                                      for m in ml.values())

    # Remove everybody and import the export: the same members come back.
    for a in ml:
        ok(env, "members", "remove", "steering", a)
    p2 = write(env, "out.csv", exported)
    j = ok(env, "--json", "members", "import", "steering", p2).json()
    assert j == {"list": "steering", "imported": 4, "skipped": 0}
    again = {m["address"]: (m["name"], m["stakeholder"]) for m in members(env, "steering")}
    assert again == {a: (m["name"], m["stakeholder"]) for a, m in ml.items()}

    # Importing the same file again changes nothing: all already members.
    j = ok(env, "--json", "members", "import", "steering", p2).json()
    assert j["imported"] == 0 and j["skipped"] == 4

    # stdin works as "-".
    ok(env, "members", "import", "dialogue", "-", stdin=b"s@example.org\n")
    assert [m["address"] for m in members(env, "dialogue")] == ["s@example.org"]
    assert ok(env, "--json", "members", "export", "dialogue").json()[0]["address"] == \
        "s@example.org"


def test_import_bad_row_reports_line(env):
    cases = {
        # line 4 holds the bad row (header, good, blank, bad)
        "address,name,stakeholder\ngood@example.org,,technical\n\nbad-address,,technical\n": 4,
        "good@example.org,,technical\nx@example.org,,nogroup\n": 2,
        "good@example.org,,technical\nx@example.org,,\n": 2,
        "good@example.org,,technical\nx@example.org,a,technical,extra\n": 2,
        "good@example.org,,technical\nx@example.org,\"unterminated,technical\n": 2,
        "a@example.org,,technical\nb@example.org,na\"me,technical\n": 2,
        "a@example.org,,technical\nb@example.org,\"x\"y,technical\n": 2,
        "a@example.org,,technical\nb@example.org,\"bad\x01\",technical\n": 2,
    }
    for data, line in cases.items():
        p = write(env, "bad.csv", data)
        r = fails(env, 65, "members", "import", "steering", p)
        assert f"bad.csv:{line}:" in r.err, (data, r.err)
        assert members(env, "steering") == [], data


def test_import_cap_is_all_or_nothing(env):
    p = write(env, "four.csv", "".join(f"m{i}@example.org,Member {i},\n" for i in range(4)))
    r = fails(env, 65, "members", "import", "trio", p)
    assert "full" in r.err and "nothing imported" in r.err
    assert members(env, "trio") == []

    ok(env, "members", "add", "trio", "first@example.org")
    ok(env, "members", "add", "trio", "second@example.org")
    p = write(env, "two.csv", "third@example.org\nfourth@example.org\n")
    fails(env, 65, "members", "import", "trio", p)
    assert [m["address"] for m in members(env, "trio")] == ["first@example.org",
                                                             "second@example.org"]
    # Exactly up to the cap is fine.
    p = write(env, "one.csv", "third@example.org\n")
    ok(env, "members", "import", "trio", p)
    assert len(members(env, "trio")) == 3


def test_import_missing_file(env):
    fails(env, 66, "members", "import", "dialogue", env["dir"] / "nope.csv")


# ---- errors, usage, config ----

def test_usage_errors(env):
    for args in ([], ["frob"], ["members"], ["members", "frob"], ["members", "add"],
                 ["members", "add", "dialogue"], ["members", "list"],
                 ["members", "list", "dialogue", "extra"], ["members", "set", "dialogue", "a@b.c"],
                 ["members", "add", "dialogue", "a@b.example", "--bogus"],
                 ["members", "add", "dialogue", "a@b.example", "--name"],
                 ["lists", "extra"], ["archive", "list"], ["archive", "show"],
                 ["archive", "search", "dialogue"], ["--bogus", "lists"], ["-c"]):
        r = run(env, *args)
        assert r.rc == 64, (args, r.rc, r.err)
        assert r.err.startswith("dialoguectl: "), r.err
        assert r.out == b"", (args, r.out)


def test_help_and_version(env):
    r = ok(env, "--help")
    assert "usage: dialoguectl" in r.text and "members add" in r.text
    r = ok(env, "members", "add", "--help")
    assert "usage: dialoguectl" in r.text and "--stakeholder" in r.text
    r = ok(env, "--version")
    assert r.text.startswith("dialoguectl ")


def test_bad_config(env):
    bad = env["dir"] / "bad.conf"
    text = CONFIG.format(db=env["db"], secret=env["dir"] / "secret").splitlines()
    # An unknown key on a known line number.
    text.insert(5, "no_such_key = 1")
    bad.write_text("\n".join(text) + "\n")
    r = run(env, "-c", bad, "lists", conf=False)
    assert r.rc == 78, r.err
    assert f"{bad}:6:" in r.err, r.err
    assert r.err.startswith("dialoguectl: ")
    # A bad value too.
    bad.write_text(CONFIG.format(db=env["db"], secret=env["dir"] / "secret")
                   .replace("max_members = 3", "max_members = lots"))
    r = run(env, "-c", bad, "--json", "lists", conf=False)
    assert r.rc == 78 and f"{bad}:" in r.err and r.out == b""
    r = run(env, "-c", env["dir"] / "missing.conf", "check", conf=False)
    assert r.rc == 78, r.err
    r = run(env, "-c", bad, "check", conf=False)
    assert r.rc == 78, r.err


def test_database_busy(env):
    ok(env, "check")
    db = sqlite3.connect(str(env["db"]), isolation_level=None, timeout=1)
    db.execute("BEGIN IMMEDIATE")
    try:
        # Reads go on under WAL while someone else writes ...
        assert ok(env, "--json", "lists").json()[0]["members"] == 0
        # ... a write waits for the busy timeout, then gives up with 75.
        r = run(env, "members", "add", "dialogue", "w@example.org")
        assert r.rc == 75, (r.rc, r.err)
        assert "busy" in r.err
    finally:
        db.execute("ROLLBACK")
        db.close()
    ok(env, "members", "add", "dialogue", "w@example.org")


def test_concurrent_writers(env):
    """Several CLIs adding at once all succeed (WAL + busy timeout)."""
    ok(env, "check")
    results = []

    def add(i):
        results.append(run(env, "members", "add", "dialogue", f"c{i}@example.org").rc)

    threads = [threading.Thread(target=add, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [0] * 6
    assert len(members(env, "dialogue")) == 6


def test_json_is_one_value(env):
    ok(env, "members", "add", "steering", "j@example.org", "--stakeholder", "other",
       "--name", "q\"uote \\ back \u2028 sep")
    for args in (["lists"], ["check"], ["members", "list", "steering"],
                 ["members", "export", "steering"], ["archive", "list", "steering"],
                 ["archive", "search", "steering", "anything"],
                 ["members", "set", "steering", "j@example.org", "delivery=digest"]):
        r = ok(env, "--json", *args)
        r.json()  # raises on zero or several values
    # Errors print nothing on stdout in --json mode.
    r = fails(env, 66, "--json", "members", "list", "nosuch")
    assert r.out == b""


def test_text_output_is_clean(env):
    """A name cannot smuggle terminal escapes, even when set through CSV."""
    fails(env, 65, "members", "add", "dialogue", "e@example.org", "--name", "\x1b[31mred")
    p = write(env, "esc.csv", "e@example.org,\"\x1b]0;title\x07\"\n")
    fails(env, 65, "members", "import", "dialogue", p)


# ---- archive (empty: messages come from the daemon) ----

def test_archive_empty(env):
    assert ok(env, "--json", "archive", "list", "dialogue").json() == []
    assert ok(env, "--json", "archive", "list", "dialogue", "--limit", "5").json() == []
    assert ok(env, "--json", "archive", "search", "dialogue", "hello", "world").json() == []
    assert ok(env, "--json", "archive", "search", "steering", "\"unbalanced AND (").json() == []
    ok(env, "archive", "list", "dialogue")
    ok(env, "archive", "search", "dialogue", "x")
    fails(env, 66, "archive", "show", "1")
    fails(env, 66, "--json", "archive", "show", "99999")
    fails(env, 66, "archive", "show", "1", "--raw")
    fails(env, 65, "archive", "show", "abc")
    fails(env, 65, "archive", "list", "dialogue", "--limit", "many")
    r = ok(env, "archive", "export", "dialogue")
    assert r.out == b""
    out = env["dir"] / "d.mbox"
    r = ok(env, "--json", "archive", "export", "dialogue", "--output", out)
    assert r.json() == {"list": "dialogue", "output": str(out), "messages": 0}
    assert out.exists() and out.read_bytes() == b""
    # mbox on stdout cannot be JSON.
    fails(env, 64, "--json", "archive", "export", "dialogue")
    fails(env, 73, "archive", "export", "dialogue", "--output", env["dir"] / "no" / "dir.mbox")


# ---- report ----

def test_report_steering_composition(env):
    ok(env, "members", "add", "steering", "a@tech.example", "--stakeholder", "technical")
    ok(env, "members", "add", "steering", "b@ngo.example", "--stakeholder", "civil-society")
    ok(env, "members", "add", "steering", "c@ngo.example", "--stakeholder", "civil-society")
    soon = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 10 * 86400))
    ok(env, "members", "set", "steering", "b@ngo.example", "term_ends=" + soon)
    r = ok(env, "--json", "report", "steering").json()
    assert set(r) == {"list", "members", "max_members", "groups", "missing_groups", "expiring"}
    assert r["list"] == "steering" and r["members"] == 3 and r["max_members"] == 25
    assert r["groups"] == {"technical": 1, "civil-society": 2, "business": 0, "government": 0,
                           "academia": 0, "other": 0}
    assert r["missing_groups"] == ["business", "government", "academia", "other"]
    # The steering list's term is 730d: only the one set to end soon shows.
    assert [m["address"] for m in r["expiring"]] == ["b@ngo.example"]
    text = ok(env, "report", "steering").text
    assert "not represented" in text and "b@ngo.example" in text
    fails(env, 66, "report", "nosuch")
    fails(env, 64, "report")


def test_report_list_without_groups(env):
    r = ok(env, "--json", "report", "dialogue").json()
    assert r["groups"] == {} and r["missing_groups"] == [] and r["expiring"] == []
