"""Moderation end to end: a real dialogued relaying to a real SMTP sink
(sink.py), posts submitted over SMTP, and moderators deciding with
dialoguectl while the daemon runs.

Every hold rule is seen through `held list --json` (its reason) and `lists
--json` (the held count). An approved post reaches every member at the
sink (the CLI queues the copies; the daemon's once-a-second look at the
queue sends them); a rejected post's poster gets a notice with the reason;
a discarded post goes nowhere; a second decision is a no-op that never
sends a second copy. The Steering Group's 26th member is refused on every
path a person or a moderator can take.

"Nothing was sent" is never proved by waiting: a sentinel post is approved
after the decision under test; copies are claimed oldest first, so once
the sentinel's copies have arrived, anything queued before was sent too.
"""

import email.utils
import smtplib
import subprocess
import sys
import uuid
from email.message import EmailMessage
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402
from harness import ctl_ok, CtlBusy, CtlError, T, ctl, deliver, make_message, new_msgid, wait_for  # noqa: E402
from sink import Sink  # noqa: E402

DOMAIN = harness.HOSTNAME
LIST = "dialogue"
ADDR = "dialogue@" + DOMAIN
MOD = "mod@example.org"
HELD_FIELDS = {"id", "list", "from", "subject", "reason", "received"}
GROUPS = ["technical", "civil-society", "business", "government", "academia", "other"]

LISTS = {
    # the general list as shipped: members post, non-members wait
    LIST: {"post_policy": "members", "nonmember_action": "hold", "moderators": MOD,
           "max_post_size": "20K", "max_post_recipients": "5"},
    # the Steering Group as shipped
    "steering": {"subscribe_policy": "closed", "post_policy": "members",
                 "nonmember_action": "reject", "archive": "public", "max_members": "25",
                 "stakeholder_groups": ", ".join(GROUPS), "term": "730d",
                 "moderators": MOD},
    "news": {"title": "News", "post_policy": "announce", "moderators": MOD},
    "council": {"title": "Council", "post_policy": "moderated", "moderators": MOD},
    "newcomers": {"title": "Newcomers", "post_policy": "members", "nonmember_action": "hold",
                  "moderate_new_members": "yes", "moderators": MOD},
    "quick": {"title": "Quick", "post_policy": "members", "nonmember_action": "hold",
              "hold_expire": "1s", "moderators": MOD},
}


@pytest.fixture(autouse=True)
def short_smtp_timeouts(monkeypatch):
    monkeypatch.setenv("DIALOGUE_SMTP_TIMEOUT_MS", "5000")


@pytest.fixture
def sink():
    s = Sink().start()
    yield s
    s.stop()


@pytest.fixture
def d(daemons, sink):
    return daemons.make(relay_port=sink.port, lists=LISTS)


# ---------------------------------------------------------------- helpers

def addr(local):
    return "%s.%s@example.net" % (local, uuid.uuid4().hex[:8])




def ctl_fails(conf, *args):
    """(exit code, stderr) of a dialoguectl call that must fail."""
    while True:
        try:
            out = ctl(conf, *args)
        except CtlBusy:
            continue
        except CtlError as e:
            return e.rc, e.stderr
        raise AssertionError("dialoguectl %s succeeded: %r" % (" ".join(args), out))


def ctl_text(conf, *args):
    """dialoguectl without --json: (exit code, stdout, stderr)."""
    p = subprocess.run([harness.DIALOGUECTL, "-c", str(conf)] + [str(a) for a in args],
                       capture_output=True, timeout=T(60))
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


def post(d, frm, subject=None, lst=LIST, to=None, mail_from=None, body="Hello list.\r\n",
         headers=(), size=None, msgid=None):
    """Submit a post to LST; returns (subject, Message-ID, bytes)."""
    subject = subject or "topic " + uuid.uuid4().hex[:10]
    msgid = msgid or new_msgid("mod")
    rcpt = "%s@%s" % (lst, DOMAIN)
    data = make_message(msgid, subject=subject, frm=frm, to=to or rcpt, body=body,
                        headers=headers, size=size)
    r = deliver(d.conf.port, [rcpt], data,
                mail_from=email.utils.parseaddr(frm)[1] if mail_from is None else mail_from)
    assert r.code == 250, r
    return subject, msgid, data


def held(d, lst=None, all_=False):
    args = ["held", "list"] + ([lst] if lst else []) + (["--all"] if all_ else [])
    rows = ctl_ok(d.conf, *args)
    assert isinstance(rows, list)
    return rows


def wait_held(d, subject, lst=None):
    def find():
        for h in held(d, lst):
            if h["subject"] == subject:
                return h
        return None
    return wait_for(find, 30, interval=0.1, what="held post %r" % subject)


def list_info(d, name):
    for e in ctl_ok(d.conf, "lists"):
        if e["name"] == name:
            return e
    raise AssertionError(name)


def add(d, lst, who, *extra):
    ctl_ok(d.conf, "members", "add", lst, who, *extra)


def members(d, lst=LIST):
    return {m["address"].lower(): m for m in ctl_ok(d.conf, "members", "list", lst)}


def decide(d, verb, *ids_and_opts):
    return ctl_ok(d.conf, "held", verb, *ids_and_opts)


def mails_to(sink, rcpt):
    return [t for t in sink.transactions() if rcpt.lower() in (r.lower() for r in t.rcpt_tos)]


def decisions_to(sink, rcpt):
    """Mails to RCPT but the "awaits moderation" one every poster of a held
    post may get (test_moderation_mail.py tests that one)."""
    return [t for t in mails_to(sink, rcpt)
            if "awaits moderation" not in str(t.message()["Subject"])]


def sentinel(d, sink, members_n):
    """Hold and approve a fresh post; once its copies arrived, every copy
    queued before it was sent (or attempted)."""
    subject, msgid, _ = post(d, addr("sentinel"))
    h = wait_held(d, subject)
    decide(d, "approve", h["id"])
    sink.wait_copies(members_n, msgid)
    return msgid


# ---------------------------------------------------------------- hold rules

def test_each_hold_rule_with_its_reason(d, sink):
    mem, modd = addr("member"), addr("moderated")
    for who in (mem, modd):
        add(d, LIST, who)
    ctl_ok(d.conf, "members", "set", LIST, modd, "moderated=yes")
    for lst in ("news", "council"):
        add(d, lst, mem)
    cases = [
        # (list, kwargs of post(), reason)
        (LIST, dict(frm=addr("outsider")), "post from a non-member"),
        (LIST, dict(frm=modd), "member is moderated"),
        ("news", dict(frm=mem, lst="news"), "only moderators post to this list"),
        ("council", dict(frm=mem, lst="council"), "list is moderated"),
        (LIST, dict(frm=mem, size=30 * 1024), "message is larger than the list's max_post_size"),
        (LIST, dict(frm=mem, to=", ".join([ADDR] + ["p%d@example.org" % i for i in range(5)])),
         "too many recipients in To and Cc"),
        (LIST, dict(frm=mem, to="someone@example.org"),
         "implicit destination: the list's address is not in To or Cc"),
        (LIST, dict(frm=mem, subject="unsubscribe"),
         "administrative request (subscribe, unsubscribe ...) sent to the list"),
        (LIST, dict(frm=mem, body="unsubscribe\r\n\r\n-- \r\nSent from a phone\r\n",
                    subject="please " + uuid.uuid4().hex),
         "administrative request (subscribe, unsubscribe ...) sent to the list"),
        (LIST, dict(frm="The List <%s>" % ADDR, mail_from=mem),
         "From: claims to be the list's own address"),
    ]
    seen = {}
    for lst, kw, reason in cases:
        subject, _, _ = post(d, **kw)
        h = wait_held(d, subject, lst)
        assert set(h) >= HELD_FIELDS, h
        assert h["reason"] == reason, (kw, h)
        assert h["list"] == lst and h["status"] == "held"
        seen[lst] = seen.get(lst, 0) + 1
    for lst, n in seen.items():
        assert list_info(d, lst)["held"] == n, lst
    # Posts that merely mention a command, or name the list in Cc, or stay
    # within the limits, go out.
    fine = [dict(subject="How do I unsubscribe from other lists?"),
            dict(body="Please do not unsubscribe me.\r\nunsubscribe\r\n"),
            dict(to="a@example.org", headers=["Cc: Dialogue <%s>" % ADDR]),
            dict(to=", ".join([ADDR] + ["q%d@example.org" % i for i in range(4)])),
            dict(size=15 * 1024)]
    for kw in fine:
        _, msgid, _ = post(d, mem, **kw)
        sink.wait_copies(2, msgid)  # mem and modd
    assert list_info(d, LIST)["held"] == seen[LIST]


def test_moderate_new_members(d, sink):
    who = addr("newbie")
    add(d, "newcomers", who)
    assert members(d, "newcomers")[who]["moderated"] is True
    add(d, LIST, who)
    assert members(d, LIST)[who]["moderated"] is False
    subject, msgid, _ = post(d, who, lst="newcomers")
    h = wait_held(d, subject, "newcomers")
    assert h["reason"] == "member is moderated"
    # approve --member: this post goes out and the next is not held
    out = decide(d, "approve", h["id"], "--member")
    assert out[0]["result"] == "done" and "no longer moderated" in out[0]["message"]
    sink.wait_copies(1, msgid)
    assert members(d, "newcomers")[who]["moderated"] is False
    _, msgid2, _ = post(d, who, lst="newcomers")
    sink.wait_copies(1, msgid2)
    assert list_info(d, "newcomers")["held"] == 0
    # Joining by mail and confirming by reply: moderated all the same.
    joe = addr("joe")
    send_mail(d, joe, "newcomers-join@" + DOMAIN, "join")
    conf = sink.wait(lambda: mails_to(sink, joe), 30, what="the confirmation")[0].message()
    reply_to = conf["Reply-To"].addresses[0].addr_spec
    send_mail(d, joe, reply_to, "Re: " + str(conf["Subject"]), reply_to_msg=conf)
    m = wait_for(lambda: members(d, "newcomers").get(joe), 30, interval=0.1,
                 what="joe to join")
    assert m["moderated"] is True


# ---------------------------------------------------------------- decisions

def test_approve_delivers_and_a_second_approve_is_a_no_op(d, sink):
    m1, m2, outsider = addr("m1"), addr("m2"), addr("outsider")
    add(d, LIST, m1)
    add(d, LIST, m2)
    subject, msgid, _ = post(d, outsider)
    h = wait_held(d, subject)
    assert h["from"] == outsider and h["envelope_from"] == outsider
    assert list_info(d, LIST)["held"] == 1
    out = decide(d, "approve", h["id"])
    assert out == [{"id": h["id"], "action": "approve", "result": "done", "list": LIST,
                    "status": "approved", "message": out[0]["message"]}]
    assert "2 copies queued" in out[0]["message"]
    copies = sink.wait_copies(2, msgid)
    assert {c.rcpt.lower() for c in copies} == {m1, m2}
    t = copies[0].txn
    assert t.header("List-Id").endswith("<dialogue.%s>" % DOMAIN)
    assert t.decoded("Subject") == "[Dialogue] " + subject
    assert list_info(d, LIST)["held"] == 0
    assert any(a["message_id"].strip("<>") == msgid for a in ctl_ok(d.conf, "archive", "list",
                                                                      LIST))
    # Again, and then the other decisions: each a clear no-op, exit 0.
    rc, text, err = ctl_text(d.conf, "held", "approve", str(h["id"]))
    assert rc == 0 and "post %d was already approved" % h["id"] in text, (rc, text, err)
    again = decide(d, "reject", h["id"], "--reason", "too late")
    assert again[0]["result"] == "already" and again[0]["status"] == "approved"
    assert decide(d, "discard", h["id"])[0]["result"] == "already"
    sentinel(d, sink, 2)
    assert len(sink.copies(msgid)) == 2
    assert decisions_to(sink, outsider) == []


def test_reject_tells_the_poster_why(d, sink):
    m1, poster = addr("m1"), addr("poster")
    add(d, LIST, m1)
    subject, msgid, _ = post(d, "Poster <%s>" % poster)
    h = wait_held(d, subject)
    reason = "Off topic here; try the other list " + uuid.uuid4().hex[:6]
    out = decide(d, "reject", h["id"], "--reason", reason)
    assert out[0]["result"] == "done" and out[0]["status"] == "rejected"
    notice = sink.wait(lambda: decisions_to(sink, poster), 30, what="the rejection notice")[0]
    m = notice.message()
    assert reason in m.get_body(("plain",)).get_content()
    assert str(m["Auto-Submitted"]).startswith("auto-replied")
    assert m["To"].addresses[0].addr_spec.lower() == poster
    assert notice.mail_from.lower() in ("", "dialogue-bounces@" + DOMAIN)
    shown = ctl_ok(d.conf, "held", "show", h["id"])
    assert shown["status"] == "rejected" and shown["decision_reason"] == reason
    assert shown["decided_by"] == "cli" and shown["decided"]
    # twice: nothing more
    assert decide(d, "reject", h["id"], "--reason", "x")[0]["result"] == "already"
    sentinel(d, sink, 1)
    assert len(decisions_to(sink, poster)) == 1
    assert sink.copies(msgid) == []


def test_no_notice_to_a_null_sender(d, sink):
    add(d, LIST, addr("m1"))
    subject, _, _ = post(d, addr("bot"), mail_from="")
    h = wait_held(d, subject)
    assert h["envelope_from"] is None
    out = decide(d, "reject", h["id"])
    assert "nobody to tell" in out[0]["message"]


def test_discard_sends_nothing(d, sink):
    m1, poster = addr("m1"), addr("poster")
    add(d, LIST, m1)
    subject, msgid, _ = post(d, poster)
    h = wait_held(d, subject)
    rc, text, err = ctl_text(d.conf, "held", "discard", str(h["id"]))
    assert rc == 0 and "discarded post %d" % h["id"] in text, (text, err)
    assert [x for x in held(d, all_=True) if x["id"] == h["id"]][0]["status"] == "discarded"
    sentinel(d, sink, 1)
    assert sink.copies(msgid) == [] and decisions_to(sink, poster) == []


def test_several_ids_and_unknown_ones(d, sink):
    add(d, LIST, addr("m1"))
    ids = []
    for _ in range(3):
        subject, _, _ = post(d, addr("x"))
        ids.append(wait_held(d, subject)["id"])
    rc, err = ctl_fails(d.conf, "held", "discard", ids[0], 999999, ids[1])
    assert rc == 66 and "no held post 999999" in err
    # the others were decided all the same
    states = {h["id"]: h["status"] for h in held(d, all_=True)}
    assert states[ids[0]] == states[ids[1]] == "discarded" and states[ids[2]] == "held"
    assert ctl_fails(d.conf, "held", "show", 999999)[0] == 66
    assert ctl_fails(d.conf, "held", "approve", "abc")[0] == 65
    assert ctl_fails(d.conf, "held", "approve", "0")[0] == 65
    assert ctl_fails(d.conf, "held", "approve")[0] == 64
    assert ctl_fails(d.conf, "held", "list", "nosuch")[0] == 66
    assert ctl_fails(d.conf, "held", "show", ids[2], "--raw")[0] == 64  # --json with --raw


def test_held_show(d, sink):
    poster = addr("show")
    body = "First line of the post.\r\nSecond line, with \x1b[31mcolour\r\n"
    subject, msgid, data = post(d, "Show Er <%s>" % poster, body=body,
                                headers=["Cc: c@example.org"])
    h = wait_held(d, subject)
    rc, text, err = ctl_text(d.conf, "held", "show", str(h["id"]))
    assert rc == 0, err
    for needle in ("Reason:", "post from a non-member", "Show Er <%s>" % poster, ADDR,
                   "c@example.org", subject, "<%s>" % msgid, "First line of the post.",
                   "Second line"):
        assert needle in text, (needle, text)
    assert "\x1b" not in text
    js = ctl_ok(d.conf, "held", "show", h["id"])
    assert set(js) >= HELD_FIELDS | {"status", "body", "to", "cc", "message_id", "size"}
    assert js["subject"] == subject and js["from"] == poster and js["cc"] == "c@example.org"
    assert "First line of the post." in js["body"]
    raw = subprocess.run([harness.DIALOGUECTL, "-c", str(d.conf), "held", "show",
                          str(h["id"]), "--raw"], capture_output=True, timeout=T(30)).stdout
    assert raw.endswith(data), raw[-200:]


def test_expiry_tells_the_poster(d, sink):
    poster = addr("slow")
    subject, msgid, _ = post(d, poster, lst="quick")
    h = wait_held(d, subject, "quick")

    # dialogued expires posts by itself too (every 2 s with hold_expire
    # 1s): whichever comes first decides, once.
    def expire():
        if [x for x in ctl_ok(d.conf, "held", "expire", "quick") if x["id"] == h["id"]]:
            return "dialoguectl"
        st = [x for x in held(d, all_=True) if x["id"] == h["id"]][0]["status"]
        return "dialogued" if st == "expired" else None
    wait_for(expire, 30, interval=0.2, what="the post to expire")
    assert [x for x in held(d, all_=True) if x["id"] == h["id"]][0]["status"] == "expired"
    assert ctl_ok(d.conf, "held", "expire", "quick") == []
    notice = sink.wait(lambda: decisions_to(sink, poster), 30, what="the expiry notice")[0]
    assert "1 second" in notice.message().get_body(("plain",)).get_content()
    assert decide(d, "approve", h["id"])[0]["result"] == "already"
    assert sink.copies(msgid) == []


# ---------------------------------------------------------------- Steering Group

def steering_csv(n, start=0):
    return "".join("s%02d@steer.example,Member %d,%s\n" % (i, i, GROUPS[i % len(GROUPS)])
                   for i in range(start, start + n))


def send_mail(d, frm, rcpt, subject, body="", reply_to_msg=None):
    m = EmailMessage()
    m["From"] = frm
    m["To"] = rcpt
    m["Subject"] = subject
    m["Date"] = email.utils.formatdate(localtime=True)
    m["Message-ID"] = email.utils.make_msgid(domain="client.example.net")
    if reply_to_msg is not None:
        m["In-Reply-To"] = reply_to_msg["Message-ID"]
    m.set_content(body or "Hello.\n")
    with smtplib.SMTP("127.0.0.1", d.conf.port, timeout=T(30)) as s:
        s.ehlo("client.example.net")
        assert not s.send_message(m, from_addr=frm, to_addrs=[rcpt])


def test_steering_group_26th_member_refused_everywhere(d, sink, tmp_path):
    csv = tmp_path / "steering.csv"
    csv.write_text(steering_csv(24))
    ctl_ok(d.conf, "members", "import", "steering", csv)
    assert len(members(d, "steering")) == 24
    # An invitation while there is room ...
    invited = addr("invited")
    ctl_ok(d.conf, "members", "add", "steering", invited, "--stakeholder", "academia",
           "--invite")
    inv = sink.wait(lambda: mails_to(sink, invited), 30, what="the invitation")[0].message()
    # ... then the 25th place goes to someone else.
    add(d, "steering", "s24@steer.example", "--stakeholder", "other")
    assert len(members(d, "steering")) == 25

    tony = addr("tony")
    rc, err = ctl_fails(d.conf, "members", "add", "steering", tony, "--stakeholder", "business")
    assert rc == 65 and "full" in err
    csv2 = tmp_path / "one-more.csv"
    csv2.write_text("%s,Tony,business\n" % tony)
    rc, err = ctl_fails(d.conf, "members", "import", "steering", csv2)
    assert rc == 65 and "full" in err
    rc, err = ctl_fails(d.conf, "members", "add", "steering", tony, "--stakeholder",
                        "business", "--invite")
    assert rc == 65
    # The invitation accepted now: refused, and told so.
    reply_to = inv["Reply-To"].addresses[0].addr_spec
    send_mail(d, invited, reply_to, "Re: " + str(inv["Subject"]), reply_to_msg=inv)
    sink.wait(lambda: [t for t in mails_to(sink, invited)
                       if "full" in str(t.message()["Subject"]).lower()], 30,
              what="the list-full answer")
    # Asking by mail: a closed list takes nobody that way.
    send_mail(d, tony, "steering-join@" + DOMAIN, "join")
    send_mail(d, tony, "steering-request@" + DOMAIN, "subscribe")
    sink.wait(lambda: len(mails_to(sink, tony)) >= 2, 30, what="two answers to tony")
    m = members(d, "steering")
    assert len(m) == 25 and tony not in m and invited not in m
    assert list_info(d, "steering")["members"] == 25

    # The report, as JSON.
    r = ctl_ok(d.conf, "report", "steering")
    assert set(r) >= {"list", "members", "max_members", "groups", "missing_groups", "expiring"}
    assert r["list"] == "steering" and r["members"] == 25 and r["max_members"] == 25
    assert r["groups"] == {"technical": 4, "civil-society": 4, "business": 4, "government": 4,
                           "academia": 4, "other": 5}
    assert r["missing_groups"] == [] and r["expiring"] == []


def test_steering_refuses_non_members_and_takes_members(d, sink, tmp_path):
    csv = tmp_path / "steering.csv"
    csv.write_text(steering_csv(3))
    ctl_ok(d.conf, "members", "import", "steering", csv)
    outsider = addr("outsider")
    subject, msgid, _ = post(d, outsider, lst="steering")
    sink.wait(lambda: mails_to(sink, outsider), 30, what="the refusal")
    assert held(d, "steering") == []
    _, msgid2, _ = post(d, "s00@steer.example", lst="steering")
    sink.wait_copies(3, msgid2)
    assert sink.copies(msgid) == []
    r = ctl_ok(d.conf, "report", "steering")
    assert r["members"] == 3 and r["missing_groups"] == ["government", "academia", "other"]
