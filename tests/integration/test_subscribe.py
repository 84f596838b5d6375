"""Subscriptions by email, end to end: a real dialogued relaying to a real
SMTP sink (sink.py), mails sent with smtplib the way a mail client sends
them, every answer captured at the sink and read with Python's email
package.

Join, leave and invitations are confirmed by replying (To = the Reply-To
address, "Re: " subject, the original quoted with "> "). Tokens are forged,
reused, expired (through the database, as the daemon runs), sent from another
address and to another list. A storm of join requests for one victim leaves
three confirmations. Mail that is automatic itself is never answered.

"Nothing was sent" is never proved by waiting: a sentinel request ("help"
from a fresh address) follows the message under test; messages are decided
in arrival order, so once the sentinel's answer is queued, the earlier
message was decided too, and `queue list --all` shows every mail it made.
"""

import email.utils
import hashlib
import re
import smtplib
import sqlite3
import subprocess
import sys
import uuid
from email.message import EmailMessage
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402
from harness import ctl_ok, CtlBusy, CtlError, T, ctl, wait_for  # noqa: E402
from sink import Sink  # noqa: E402

DOMAIN = harness.HOSTNAME
LIST = "dialogue"
TITLE = harness.DEFAULT_LISTS[LIST]["title"]
MOD = "mod@example.org"
TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{22}$")

EXTRA_LISTS = {
    # subscribe_policy approve: a moderator decides after the confirmation
    "council": {"title": "Dialogue Council", "subscribe_policy": "approve",
                "moderators": MOD},
    # room for one member
    "small": {"title": "Small Group", "subscribe_policy": "confirm", "max_members": "1",
              "moderators": MOD},
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
    """A dialogued of its own (its own counters and tokens) relaying to SINK."""
    return daemons.make(relay_port=sink.port, lists=EXTRA_LISTS)


# ---------------------------------------------------------------- helpers

def addr(local):
    """A fresh address, so tests never share rate-limit counters."""
    return "%s.%s@example.net" % (local, uuid.uuid4().hex[:8])


def send(d, mail_from, rcpt, msg):
    """Submit MSG (an EmailMessage) with smtplib, as a mail client does."""
    with smtplib.SMTP("127.0.0.1", d.conf.port, timeout=T(30)) as s:
        s.ehlo("client.example.net")
        refused = s.send_message(msg, from_addr=mail_from, to_addrs=[rcpt])
    assert not refused, refused


def new_mail(frm, to, subject, body="", headers=()):
    m = EmailMessage()
    m["From"] = frm
    m["To"] = to
    m["Subject"] = subject
    m["Date"] = email.utils.formatdate(localtime=True)
    m["Message-ID"] = email.utils.make_msgid(domain="client.example.net")
    for k, v in headers:
        m[k] = v
    m.set_content(body or "Hello.\n")
    return m


def request(d, frm, rcpt, subject="", body="", mail_from=None, headers=()):
    """A mail from FRM (envelope sender MAIL_FROM, default the address in
    FRM; "" is the null sender) to RCPT."""
    m = new_mail(frm, rcpt, subject, body, headers)
    if mail_from is None:
        mail_from = email.utils.parseaddr(frm)[1]
    send(d, mail_from, rcpt, m)
    return m


def reply(d, orig, frm, to=None, top=""):
    """Reply to ORIG as a mail client does: To the Reply-To, "Re: " subject,
    In-Reply-To and References, the original quoted with "> " below TOP."""
    m = EmailMessage()
    target = to or orig["Reply-To"].addresses[0].addr_spec
    subject = str(orig["Subject"])
    m["From"] = frm
    m["To"] = target
    m["Subject"] = subject if subject.lower().startswith("re:") else "Re: " + subject
    m["Date"] = email.utils.formatdate(localtime=True)
    m["Message-ID"] = email.utils.make_msgid(domain="client.example.net")
    m["In-Reply-To"] = orig["Message-ID"]
    m["References"] = orig["Message-ID"]
    quoted = "\n".join(("> " + line) if line else ">"
                       for line in orig.get_content().splitlines())
    m.set_content("%s\nOn %s, %s wrote:\n%s\n" % (top, orig["Date"], orig["From"], quoted))
    send(d, email.utils.parseaddr(frm)[1], target, m)
    return m


def mails_to(sink, rcpt, subject=None):
    """Transactions to RCPT (whose Subject contains SUBJECT, if given)."""
    out = []
    for t in sink.transactions():
        if rcpt.lower() not in (r.lower() for r in t.rcpt_tos):
            continue
        if subject is not None and subject.lower() not in str(t.message()["Subject"]).lower():
            continue
        out.append(t)
    return out


def wait_mail(sink, rcpt, subject=None, n=1, timeout=30):
    """Until N mails to RCPT (with SUBJECT) arrived; returns the Nth's message."""
    got = sink.wait(lambda: (lambda m: m if len(m) >= n else None)(mails_to(sink, rcpt, subject)),
                    timeout, what="%d mail(s) to %s%s" % (n, rcpt,
                                                        " about %r" % subject if subject else ""))
    return got[n - 1].message()


def token_of(msg):
    """The token of a confirmation: in the Reply-To, and in the Subject."""
    to = msg["Reply-To"].addresses[0].addr_spec
    m = re.fullmatch(r"([a-z0-9]+)-confirm\+([^@]+)@" + re.escape(DOMAIN), to)
    assert m, "Reply-To %r" % to
    token = m.group(2)
    assert TOKEN_RE.match(token), token
    assert "confirm " + token in str(msg["Subject"]), msg["Subject"]
    return token




def ctl_fails(conf, *args):
    while True:
        try:
            out = ctl(conf, *args)
        except CtlBusy:
            continue
        except CtlError as e:
            return e.rc
        raise AssertionError("dialoguectl %s succeeded: %r" % (" ".join(args), out))


def members(d, lst=LIST):
    return {m["address"].lower(): m for m in ctl_ok(d.conf, "members", "list", lst)}


def wait_member(d, address, status="active", lst=LIST):
    def check():
        m = members(d, lst).get(address.lower())
        return m if m and m["status"] == status else None
    return wait_for(check, 30, interval=0.1, what="%s %s in %s" % (address, status, lst))


def queued_to(d, rcpt):
    return [r for r in ctl_ok(d.conf, "queue", "list", "--all")
            if r["recipient"].lower() == rcpt.lower()]


def sentinel(d, sink):
    """Once this returns, everything submitted before was decided."""
    who = addr("sentinel")
    request(d, who, "%s-request@%s" % (LIST, DOMAIN), subject="help")
    wait_for(lambda: queued_to(d, who), 30, interval=0.1, what="the sentinel's help mail")
    return who


def db(d):
    con = sqlite3.connect(str(Path(d.conf.dir) / "dialogue.db"), timeout=T(10))
    return con


def check_auto_mail(t, rcpt):
    """What every mail dialogued writes itself carries."""
    m = t.message()
    for h in ("Date", "Message-ID", "MIME-Version", "From", "To", "Subject"):
        assert m[h], "%s missing in %r" % (h, t)
    assert str(m["Auto-Submitted"]).startswith("auto-replied")
    assert m["To"].addresses[0].addr_spec.lower() == rcpt.lower()
    assert t.mail_from.lower() == ("%s-bounces@%s" % (
        m["From"].addresses[0].addr_spec.split("-owner@")[0], DOMAIN)).lower(), t.mail_from


def join_and_confirm(d, sink, who, name="", lst=LIST, frm=None):
    """Join WHO to LST by mail and reply to the confirmation; returns it."""
    request(d, ("%s <%s>" % (name, who)) if name else who, "%s-join@%s" % (lst, DOMAIN),
            subject="join", body="please add me\n")
    conf = wait_mail(sink, who, "confirm")
    reply(d, conf, frm or who)
    return conf


# ---------------------------------------------------------------- tests

def test_join_by_replying_to_the_confirmation(d, sink):
    alice = addr("alice")
    marker = "JOIN-BODY-" + uuid.uuid4().hex
    request(d, "Alice Example <%s>" % alice, "dialogue-join@" + DOMAIN, subject="Hi",
            body="Please let me in.\n%s\n" % marker)
    txn = sink.wait(lambda: mails_to(sink, alice, "confirm"), 30, what="confirmation")[0]
    conf = txn.message()
    check_auto_mail(txn, alice)
    token = token_of(conf)
    assert conf["Reply-To"].addresses[0].addr_spec == "dialogue-confirm+%s@%s" % (token, DOMAIN)
    assert TITLE in str(conf["Subject"])
    # No backscatter: nothing of the request comes back.
    assert marker.encode() not in txn.content
    assert alice not in members(d)

    # Only the token's SHA-256 is stored.
    with db(d) as con:
        rows = con.execute("SELECT hash, list, address, action FROM sub_tokens").fetchall()
    assert rows == [(hashlib.sha256(token.encode()).hexdigest(), LIST, alice, "join")]

    reply(d, conf, "Alice Example <%s>" % alice)
    m = wait_member(d, alice)
    assert m["name"] == "Alice Example"
    welcome = wait_mail(sink, alice, "Welcome")
    assert "dialogue-leave@" + DOMAIN in welcome.get_content()
    check_auto_mail(mails_to(sink, alice, "Welcome")[0], alice)
    assert re.search(r"join %s to dialogue: confirmation sent" % re.escape(alice), d.log())
    d.wait_log(r"confirm for dialogue from %s: join of %s, member added" % (
        re.escape(alice), re.escape(alice)))


def test_leave_by_replying(d, sink):
    bob = addr("bob")
    ctl_ok(d.conf, "members", "add", LIST, bob)
    request(d, bob, "dialogue-leave@" + DOMAIN, subject="bye")
    conf = wait_mail(sink, bob, "confirm")
    token_of(conf)
    assert "leave" in str(conf["Subject"])
    assert bob in members(d)  # not before the confirmation
    reply(d, conf, bob)
    wait_for(lambda: bob not in members(d), 30, interval=0.1, what="bob removed")
    wait_mail(sink, bob, "You have left")

    # Not a member any more: a leave request is answered so.
    request(d, bob, "dialogue-unsubscribe@" + DOMAIN, subject="bye again")
    wait_mail(sink, bob, "not subscribed")


def test_forged_token(d, sink):
    eve = addr("eve")
    for forged in ("A" * 22, "notatoken", "x" * 40):
        request(d, eve, "dialogue-confirm+%s@%s" % (forged, DOMAIN), subject="Re: confirm")
    wait_mail(sink, eve, "did not work", n=3)
    assert members(d) == {}


def test_reused_token(d, sink):
    carl = addr("carl")
    conf = join_and_confirm(d, sink, carl)
    wait_member(d, carl)
    wait_mail(sink, carl, "Welcome")
    reply(d, conf, carl)
    again = wait_mail(sink, carl, "did not work")
    assert "already been used" in again.get_content() or "already used" in again.get_content()
    assert len(mails_to(sink, carl, "Welcome")) == 1


def test_expired_token(d, sink):
    dora = addr("dora")
    request(d, dora, "dialogue-join@" + DOMAIN, subject="join")
    conf = wait_mail(sink, dora, "confirm")
    token = token_of(conf)
    with db(d) as con:
        n = con.execute("UPDATE sub_tokens SET expires = CAST(strftime('%s','now') AS INTEGER)"
                        " - 60 WHERE hash = ?",
                        (hashlib.sha256(token.encode()).hexdigest(),)).rowcount
    assert n == 1
    reply(d, conf, dora)
    answer = wait_mail(sink, dora, "did not work")
    assert "expired" in answer.get_content()
    assert dora not in members(d)


def test_reply_from_another_address_confirms_the_one_asked(d, sink):
    asked, replier = addr("asked"), addr("replier")
    join_and_confirm(d, sink, asked, frm="Someone Else <%s>" % replier)
    wait_member(d, asked)
    assert replier not in members(d)
    wait_mail(sink, asked, "Welcome")
    sentinel(d, sink)
    assert queued_to(d, replier) == []


def test_confirm_for_the_wrong_list_is_refused(d, sink):
    fay = addr("fay")
    request(d, fay, "dialogue-join@" + DOMAIN, subject="join")
    conf = wait_mail(sink, fay, "confirm")
    token = token_of(conf)
    # The token of dialogue, sent to small's confirm address.
    reply(d, conf, fay, to="small-confirm+%s@%s" % (token, DOMAIN))
    answer = wait_mail(sink, fay, "did not work")
    assert "not for this list" in answer.get_content()
    assert fay not in members(d, "small") and fay not in members(d)
    # Not spent by the attempt: it still works where it belongs.
    reply(d, conf, fay)
    wait_member(d, fay)


def test_storm_of_join_requests_leaves_three_confirmations(d, sink):
    victim = addr("victim")
    with harness.SMTPClient(d.conf.port, timeout=T(30)) as c:
        harness.check(c.reply(), 220, None, "banner")
        c.ehlo()
        for i in range(100):
            data = harness.make_message(subject="subscribe", frm=victim,
                                        to="dialogue-join@" + DOMAIN, body="storm %d\r\n" % i)
            r = c.transaction(victim, ["dialogue-join@" + DOMAIN], data)
            assert r.code == 250, r
        c.cmd("QUIT")
    sentinel(d, sink)
    assert len(queued_to(d, victim)) == 3
    wait_mail(sink, victim, "confirm", n=3)
    assert len(mails_to(sink, victim)) == 3
    refused = re.compile(r"join %s to dialogue: confirmation not sent \(3 sent to"
                         % re.escape(victim))
    wait_for(lambda: len(refused.findall(d.log())) == 97, 10,
             what="97 log lines of refused confirmations")


def test_subaddress_storm_shares_one_allowance(d, sink):
    """v+1@, v+2@ ... are one mailbox: together they get at most 3 mails."""
    local, domain = addr("sub").split("@")
    with harness.SMTPClient(d.conf.port, timeout=T(30)) as c:
        harness.check(c.reply(), 220, None, "banner")
        c.ehlo()
        for i in range(10):
            victim = "%s+%d@%s" % (local, i, domain)
            data = harness.make_message(subject="subscribe", frm=victim,
                                        to="dialogue-join@" + DOMAIN, body="x\r\n")
            r = c.transaction(victim, ["dialogue-join@" + DOMAIN], data)
            assert r.code == 250, r
        c.cmd("QUIT")
    sentinel(d, sink)
    total = sum(len(queued_to(d, "%s+%d@%s" % (local, i, domain))) for i in range(10))
    assert total == 3, total


def test_join_to_a_closed_list_is_refused_politely(d, sink):
    gil = addr("gil")
    request(d, gil, "steering-join@" + DOMAIN, subject="join")
    answer = wait_mail(sink, gil, "Your request to join")
    assert "steering-owner@" + DOMAIN in answer.get_content()
    assert gil not in members(d, "steering")


def test_approve_policy_end_to_end(d, sink):
    hal, ida = addr("hal"), addr("ida")
    join_and_confirm(d, sink, hal, name="Hal", lst="council")
    wait_member(d, hal, "pending", "council")
    wait_mail(sink, hal, "waiting for approval")
    notice = wait_mail(sink, MOD, hal)
    assert "dialoguectl members approve council %s" % hal in notice.get_content()
    pending = ctl_ok(d.conf, "members", "pending", "council")
    assert [(m["address"], m["status"], m["name"]) for m in pending] == [(hal, "pending", "Hal")]

    m = ctl_ok(d.conf, "members", "approve", "council", hal)
    assert m["status"] == "active" and m["address"] == hal
    wait_mail(sink, hal, "Welcome")
    assert ctl_ok(d.conf, "members", "pending", "council") == []
    # Not pending any more, or never a member.
    assert ctl_fails(d.conf, "members", "approve", "council", hal) == 65
    assert ctl_fails(d.conf, "members", "approve", "council", addr("nobody")) == 66

    join_and_confirm(d, sink, ida, lst="council")
    wait_member(d, ida, "pending", "council")
    out = ctl_ok(d.conf, "members", "deny", "council", ida, "--reason", "Members only.")
    assert out["denied"] is True
    wait_mail(sink, ida, "waiting for approval")
    denied = wait_mail(sink, ida, "Your request to join", n=2)
    assert "declined" in denied.get_content() and "Members only." in denied.get_content()
    assert ida not in members(d, "council")


def test_approve_over_the_cap_is_refused(d, sink):
    pam, amy = addr("pam"), addr("amy")
    join_and_confirm(d, sink, pam, lst="council")
    wait_member(d, pam, "pending", "council")
    ctl_ok(d.conf, "members", "add", "council", amy)
    # The cap lowered below what the list holds (dialoguectl reads the file).
    lists = dict(EXTRA_LISTS)
    lists["council"] = dict(EXTRA_LISTS["council"], max_members="1")
    d.conf.rewrite(lists=lists)
    assert ctl_fails(d.conf, "members", "approve", "council", pam) == 65
    wait_mail(sink, pam, "is full")
    assert list(members(d, "council")) == [amy]


def test_cap_reached_while_a_confirmation_was_pending(d, sink):
    jon, kim = addr("jon"), addr("kim")
    request(d, jon, "small-join@" + DOMAIN, subject="join")
    conf = wait_mail(sink, jon, "confirm")
    ctl_ok(d.conf, "members", "add", "small", kim)  # the one place goes
    reply(d, conf, jon)
    full = wait_mail(sink, jon, "is full")
    assert "1 members" in full.get_content() or "1\nmembers" in full.get_content()
    assert list(members(d, "small")) == [kim]


def test_request_commands_in_subject_and_body(d, sink):
    lea = addr("lea")
    # Body commands; quoted text and the signature are not read.
    request(d, lea, "dialogue-request@" + DOMAIN, subject="Re: hello",
            body="\n  subscribe\n> unsubscribe\n> help\n-- \nhelp\n")
    conf = wait_mail(sink, lea, "confirm")
    # Confirm by command, quoted confirmation below and a signature.
    token = token_of(conf)
    request(d, lea, "dialogue-request@" + DOMAIN, subject="Re: something else",
            body="confirm %s\n\nOn Monday you wrote:\n> confirm %s\n-- \nLea\n" % (token, "x"))
    wait_member(d, lea)
    # The Subject; a command nobody knows gets the help text.
    request(d, lea, "dialogue-request@" + DOMAIN, subject="help")
    helptext = wait_mail(sink, lea, "Help for")
    assert "dialogue-request@" + DOMAIN in helptext.get_content()
    request(d, lea, "dialogue-request@" + DOMAIN, subject="what is this?", body="hm\n")
    unknown = wait_mail(sink, lea, "Help for", n=2)
    assert "what is this?" in unknown.get_content()
    sentinel(d, sink)
    # confirmation, welcome, two help texts: no help for the quoted/signed lines
    assert len(queued_to(d, lea)) == 4


def test_null_sender_and_auto_submitted_are_not_answered(d, sink):
    nul, bot, dsn = addr("null"), addr("bot"), addr("dsn")
    request(d, nul, "dialogue-join@" + DOMAIN, subject="join", mail_from="")
    request(d, bot, "dialogue-join@" + DOMAIN, subject="join",
            headers=[("Auto-Submitted", "auto-replied")])
    request(d, dsn, "dialogue-request@" + DOMAIN, subject="help",
            headers=[("Precedence", "bulk")])
    request(d, "dialogue@" + DOMAIN, "dialogue-request@" + DOMAIN, subject="help")
    sentinel(d, sink)
    for who in (nul, bot, dsn, "dialogue@" + DOMAIN):
        assert queued_to(d, who) == [], who
    d.wait_log(r"join %s to dialogue: ignored \(null sender\)" % re.escape(nul))
    d.wait_log(r"join %s to dialogue: ignored \(auto-submitted\)" % re.escape(bot))

    # The token is the proof: a null-sender reply still confirms, silently.
    mia = addr("mia")
    request(d, mia, "dialogue-join@" + DOMAIN, subject="join")
    conf = wait_mail(sink, mia, "confirm")
    msg = new_mail(mia, conf["Reply-To"].addresses[0].addr_spec, "Re: " + str(conf["Subject"]))
    send(d, "", conf["Reply-To"].addresses[0].addr_spec, msg)
    wait_member(d, mia)
    sentinel(d, sink)
    assert len(queued_to(d, mia)) == 1  # the confirmation only: no welcome


def test_invite_then_reply(d, sink):
    ned = addr("ned")
    out = ctl_ok(d.conf, "members", "add", LIST, ned, "--name", "Ned N", "--invite")
    assert out["invited"] is True and out["address"] == ned
    assert ned not in members(d)
    inv = wait_mail(sink, ned, "invitation")
    token_of(inv)
    reply(d, inv, ned)
    m = wait_member(d, ned)
    assert m["name"] == "Ned N"
    wait_mail(sink, ned, "Welcome")
    # A member cannot be invited.
    assert ctl_fails(d.conf, "members", "add", LIST, ned, "--invite") == 65


def test_owner_mail_goes_to_the_moderators(d, sink):
    oli = addr("oli")
    marker = "OWNER-" + uuid.uuid4().hex
    request(d, oli, "dialogue-owner@" + DOMAIN, subject="A question", body=marker + "\n")
    fwd = sink.wait(lambda: mails_to(sink, MOD, "A question"), 30, what="forwarded mail")[0]
    assert fwd.mail_from == "dialogue-bounces@" + DOMAIN
    assert fwd.message()["X-Dialogue-Forwarded"] == "owner of dialogue"
    assert marker.encode() in fwd.content
    sentinel(d, sink)
    assert queued_to(d, oli) == []


def test_bad_templates_refuse_start_and_reload(daemons, sink, tmp_path):
    tdir = tmp_path / "tpl"
    tdir.mkdir()
    (tdir / "confirm-join.txt").write_text("Subject: please confirm\n\nReply to confirm.\n")
    conf = harness.write_config(tmp_path / "c", relay_port=sink.port, templates=str(tdir))
    p = subprocess.run([harness.DIALOGUED, "-n", "-c", str(conf)], capture_output=True,
                       timeout=T(30))
    assert p.returncode == 78, p
    assert b"confirm-join.txt:1: " in p.stderr and b"{{token}}" in p.stderr, p.stderr

    (tdir / "confirm-join.txt").write_text("Subject: confirm {{token}}\n\nReply.\n")
    d = daemons.make(conf)
    (tdir / "help.txt").write_text("no subject line here\n")
    start = len(d.log())
    d.hup()
    d.wait_log(r"reload refused", start=start)
    # Still answering with the templates it had.
    pat = addr("pat")
    request(d, pat, "dialogue-join@" + DOMAIN, subject="join")
    conf_mail = wait_mail(sink, pat, "confirm")
    assert "Reply." in conf_mail.get_content()
