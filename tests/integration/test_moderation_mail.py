"""Moderation by mail, end to end: a real dialogued relaying to a real SMTP
sink (sink.py), posts and replies sent with smtplib the way a mail client
sends them, every mail read back at the sink with Python's email package.

A held post brings its list's moderators a notice (reason, key header
fields, the start of the text, the original attached as message/rfc822,
an approve and a reject address) and its poster a "post-held" mail with a
withdraw address. Moderators decide by replying (To the address, "Re:"
subject, the notice quoted below); a stranger holding a valid address is
refused, a forged one answered, a second decision is a no-op. Notices are
batched (one per minute per list), posts expire, and automatic mail is
never told anything.

"Nothing was sent" is never proved by waiting alone: a sentinel (a later
post whose mails must come after) shows the daemon has moved past the
message under test.
"""

import email
import email.policy
import email.utils
import hashlib
import re
import smtplib
import sqlite3
import sys
import time
import uuid
from email.message import EmailMessage
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402
from harness import ctl_ok, T, deliver, make_message, new_msgid, wait_for  # noqa: E402
from sink import Sink  # noqa: E402

DOMAIN = harness.HOSTNAME
LIST = "dialogue"
MOD, MOD2 = "mod@example.org", "mod2@example.org"
TOKEN = r"[A-Za-z0-9_-]{22}"

LISTS = {
    LIST: {"post_policy": "members", "nonmember_action": "hold",
           "moderators": "%s, %s" % (MOD, MOD2)},
    # its own list, so that its notices are paced by nothing else
    "batch": {"title": "Batch", "post_policy": "members", "nonmember_action": "hold",
              "moderators": MOD},
    "brief": {"title": "Brief", "post_policy": "members", "nonmember_action": "hold",
              "moderators": MOD, "hold_expire": "2s"},
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
    """A fresh address: no test shares another's rate-limit counters."""
    return "%s.%s@example.net" % (local, uuid.uuid4().hex[:8])




def add(d, who, lst=LIST):
    ctl_ok(d.conf, "members", "add", lst, who)


def post(d, frm, lst=LIST, subject=None, body="Hello list.\r\n", headers=(),
         mail_from=None):
    """Submit a post; returns (subject, Message-ID)."""
    subject = subject or "topic " + uuid.uuid4().hex[:10]
    msgid = new_msgid("mm")
    rcpt = "%s@%s" % (lst, DOMAIN)
    data = make_message(msgid, subject=subject, frm=frm, to=rcpt, body=body,
                        headers=headers)
    r = deliver(d.conf.port, [rcpt], data,
                mail_from=email.utils.parseaddr(frm)[1] if mail_from is None else mail_from)
    assert r.code == 250, r
    return subject, msgid


def held(d, lst=None, all_=True):
    return ctl_ok(d.conf, "held", "list", *([lst] if lst else []), *(["--all"] if all_ else []))


def wait_held(d, subject):
    def find():
        return next((h for h in held(d) if h["subject"] == subject), None)
    return wait_for(find, 30, interval=0.1, what="held post %r" % subject)


def status(d, held_id):
    return next(h["status"] for h in held(d) if h["id"] == held_id)


def mails_to(sink, rcpt, subject=None):
    """Transactions to RCPT whose Subject contains SUBJECT (any case)."""
    out = []
    for t in sink.transactions():
        if rcpt.lower() not in (r.lower() for r in t.rcpt_tos):
            continue
        if subject is not None and subject.lower() not in str(t.message()["Subject"]).lower():
            continue
        out.append(t)
    return out


def wait_mail(sink, rcpt, subject, n=1, timeout=30):
    return sink.wait(lambda: (lambda m: m if len(m) >= n else None)(mails_to(sink, rcpt, subject)),
                     timeout, what="%d mail(s) to %s about %r" % (n, rcpt, subject))


def text_of(msg):
    return msg.get_body(("plain",)).get_content()


def notices_about(sink, rcpt, subject):
    """Notices to RCPT whose text mentions the post SUBJECT."""
    return [t for t in mails_to(sink, rcpt, "moderation") if subject in text_of(t.message())]


def wait_notice(sink, subject, rcpt=MOD, timeout=30):
    return sink.wait(lambda: notices_about(sink, rcpt, subject), timeout,
                     what="the notice about %r to %s" % (subject, rcpt))[0].message()


def post_block(notice, subject):
    """The part of a notice's text about the post SUBJECT."""
    text = text_of(notice)
    blocks = re.split(r"\n(?=Held post \d+\n)", text)
    return next(b for b in blocks if subject in b)


def reply_addresses(notice, subject):
    block = post_block(notice, subject)
    approve = re.search(r"(%s-approve\+%s@%s)" % ("[a-z]+", TOKEN, re.escape(DOMAIN)), block)
    reject = re.search(r"(%s-reject\+%s@%s)" % ("[a-z]+", TOKEN, re.escape(DOMAIN)), block)
    assert approve and reject, block
    return approve.group(1), reject.group(1)


def send(d, mail_from, rcpt, msg):
    with smtplib.SMTP("127.0.0.1", d.conf.port, timeout=T(30)) as s:
        s.ehlo("client.example.net")
        refused = s.send_message(msg, from_addr=mail_from, to_addrs=[rcpt])
    assert not refused, refused


def reply(d, orig, frm, to, top="", mail_from=None):
    """Reply to ORIG as a mail client does: To TO, "Re: " subject,
    In-Reply-To and References, TOP above the text of ORIG quoted with "> "
    under an attribution line."""
    m = EmailMessage()
    subject = str(orig["Subject"])
    m["From"] = frm
    m["To"] = to
    m["Subject"] = subject if subject.lower().startswith("re:") else "Re: " + subject
    m["Date"] = email.utils.formatdate(localtime=True)
    m["Message-ID"] = email.utils.make_msgid(domain="client.example.net")
    m["In-Reply-To"] = orig["Message-ID"]
    m["References"] = orig["Message-ID"]
    quoted = "\n".join(("> " + line) if line else ">" for line in text_of(orig).splitlines())
    m.set_content("%s\nOn %s, %s wrote:\n%s\n" % (top, orig["Date"], orig["From"], quoted))
    send(d, email.utils.parseaddr(frm)[1] if mail_from is None else mail_from, to, m)
    return m


def sentinel(d, sink):
    """A fresh non-member post; returns once its poster's post-held mail
    arrived: every post held before it has been dealt with."""
    who = addr("sentinel")
    post(d, who)
    wait_mail(sink, who, "awaits moderation")


def db(d):
    return sqlite3.connect(str(Path(d.conf.dir) / "dialogue.db"), timeout=T(10))


# ---------------------------------------------------------------- notices

def test_notice_to_every_moderator_and_post_held_to_the_poster(d, sink):
    poster = addr("poster")
    body = ("First line of the post.\r\nSecond line, about cooperation.\r\n\r\n"
            "-- \r\nPoster's signature\r\n")
    subject, msgid = post(d, "Pat Poster <%s>" % poster, body=body,
                          headers=["Cc: carol@example.org"])
    h = wait_held(d, subject)
    for mod in (MOD, MOD2):
        n = wait_notice(sink, subject, mod)
        assert n["To"].addresses[0].addr_spec == mod
        assert n["Auto-Submitted"].startswith("auto-replied")
        assert n.get_content_type() == "multipart/mixed"
        assert subject in str(n["Subject"])
        block = post_block(n, subject)
        for needle in ("Held post %d" % h["id"], "post from a non-member",
                       "Pat Poster <%s>" % poster, "%s@%s" % (LIST, DOMAIN),
                       "carol@example.org", subject, "Mon, 30 Nov 2026 06:42:11 +0000",
                       "First line of the post.", "Second line, about cooperation."):
            assert needle in block, (needle, block)
        parts = [p for p in n.walk() if p.get_content_type() == "message/rfc822"]
        assert len(parts) == 1
        orig = parts[0].get_content()
        assert orig["Message-ID"].strip("<>") == msgid and orig["Subject"] == subject
        assert "First line of the post." in orig.get_content()
        approve, reject = reply_addresses(n, subject)
        assert approve.startswith("dialogue-approve+") and reject.startswith("dialogue-reject+")
    # Both moderators got the same addresses: one pair per post.
    a1 = reply_addresses(wait_notice(sink, subject, MOD), subject)
    a2 = reply_addresses(wait_notice(sink, subject, MOD2), subject)
    assert a1 == a2
    # The tokens are stored hashed, bound to the post and the action.
    tok = a1[0].split("+", 1)[1].split("@", 1)[0]
    with db(d) as con:
        rows = con.execute("SELECT hash, action, held_id, list FROM sub_tokens").fetchall()
    assert not any(tok in r[0] for r in rows)
    digest = hashlib.sha256(tok.encode()).hexdigest()
    assert [r[1:] for r in rows if r[0] == digest] == [("approve", h["id"], LIST)]

    # The poster: told once, with a withdraw address; the post waits.
    m = wait_mail(sink, poster, "awaits moderation")[0].message()
    t = text_of(m)
    assert subject in t and "post from a non-member" in t
    assert re.search(r"dialogue-withdraw\+%s@%s" % (TOKEN, re.escape(DOMAIN)), t), t
    assert m["Auto-Submitted"].startswith("auto-replied")
    sentinel(d, sink)
    assert len(mails_to(sink, poster)) == 1
    assert len(notices_about(sink, MOD, subject)) == 1
    assert sink.copies(msgid) == [] and status(d, h["id"]) == "held"


# ---------------------------------------------------------------- deciding by reply

def test_approve_by_reply(d, sink):
    members = [addr("m1"), addr("m2")]
    for m in members:
        add(d, m)
    subject, msgid = post(d, addr("outsider"))
    h = wait_held(d, subject)
    notice = wait_notice(sink, subject)
    approve, _ = reply_addresses(notice, subject)
    reply(d, notice, "The Moderator <%s>" % MOD, approve, top="Fine by me.\n")
    copies = sink.wait_copies(2, msgid)
    assert {c.rcpt.lower() for c in copies} == set(members)
    assert copies[0].txn.decoded("Subject").endswith(subject)
    shown = ctl_ok(d.conf, "held", "show", h["id"])
    assert shown["status"] == "approved" and shown["decided_by"] == MOD
    d.wait_log(r"approve by mail from %s for dialogue: approved post %d" % (re.escape(MOD),
                                                                           h["id"]))


def test_reject_by_reply_tells_the_poster_the_reason(d, sink):
    add(d, addr("m1"))
    poster = addr("poster")
    subject, msgid = post(d, poster)
    h = wait_held(d, subject)
    notice = wait_notice(sink, subject, MOD2)
    _, reject = reply_addresses(notice, subject)
    reason = "Off topic for this list, sorry %s." % uuid.uuid4().hex[:6]
    # The second moderator, with a signature, from a client that sends
    # the envelope from the same address.
    reply(d, notice, MOD2, reject, top="\n%s\n\n-- \nThe second moderator\n" % reason)
    m = wait_mail(sink, poster, "not accepted")[0].message()
    t = text_of(m)
    assert reason in t and subject in t, t
    assert "second moderator" not in t and "wrote:" not in t
    shown = ctl_ok(d.conf, "held", "show", h["id"])
    assert shown["status"] == "rejected" and shown["decision_reason"] == reason
    assert shown["decided_by"] == MOD2
    sentinel(d, sink)
    assert sink.copies(msgid) == []


def test_a_non_moderator_is_refused_even_with_a_valid_address(d, sink):
    add(d, addr("m1"))
    subject, msgid = post(d, addr("outsider"))
    h = wait_held(d, subject)
    notice = wait_notice(sink, subject)
    approve, reject = reply_addresses(notice, subject)
    stranger = addr("stranger")
    reply(d, notice, stranger, approve, top="Approved!\n")
    reply(d, notice, stranger, reject, top="Rejected!\n")
    d.wait_log(r"refused: %s is not a moderator of dialogue" % re.escape(stranger))
    sentinel(d, sink)
    assert mails_to(sink, stranger) == []
    assert sink.copies(msgid) == [] and status(d, h["id"]) == "held"
    # Refused, not spent: the address still works for a moderator.
    reply(d, notice, MOD, approve, top="ok\n")
    sink.wait_copies(1, msgid)
    assert status(d, h["id"]) == "approved"


def test_forged_and_malformed_tokens(d, sink):
    add(d, addr("m1"))
    subject, msgid = post(d, addr("outsider"))
    h = wait_held(d, subject)
    notice = wait_notice(sink, subject)
    approve, _ = reply_addresses(notice, subject)
    tok = approve.split("+", 1)[1].split("@", 1)[0]
    forged = tok[:-1] + ("A" if tok[-1] != "A" else "B")
    reply(d, notice, MOD, "dialogue-approve+%s@%s" % (forged, DOMAIN), top="ok\n")
    m = wait_mail(sink, MOD, "did not work")[0].message()
    assert "approve" in str(m["Subject"]) and "not one we made" in text_of(m)
    reply(d, notice, MOD, "dialogue-approve+short@%s" % DOMAIN, top="ok\n")
    wait_mail(sink, MOD, "did not work", n=2)
    # The reject token at the approve address, and the other way round
    reply(d, notice, MOD, approve.replace("-approve+", "-reject+"), top="no\n")
    wait_mail(sink, MOD, "did not work", n=3)
    # A token of another list
    other = "batch-approve+%s@%s" % (tok, DOMAIN)
    reply(d, notice, MOD, other, top="ok\n")
    wait_mail(sink, MOD, "did not work", n=4)
    sentinel(d, sink)
    assert sink.copies(msgid) == [] and status(d, h["id"]) == "held"


def test_a_second_decision_is_a_no_op(d, sink):
    members = [addr("m1")]
    add(d, members[0])
    subject, msgid = post(d, addr("outsider"))
    h = wait_held(d, subject)
    notice = wait_notice(sink, subject)
    approve, reject = reply_addresses(notice, subject)
    out = ctl_ok(d.conf, "held", "approve", h["id"])
    assert out[0]["result"] == "done"
    sink.wait_copies(1, msgid)
    # By mail afterwards: nothing happens but a word to the moderator.
    reply(d, notice, MOD, approve, top="ok\n")
    m = wait_mail(sink, MOD, "did not work")[0].message()
    assert "already approved" in text_of(m)
    # The same address again: spent.
    reply(d, notice, MOD, approve, top="ok\n")
    m = wait_mail(sink, MOD, "did not work", n=2)[1].message()
    assert "used already" in text_of(m)
    reply(d, notice, MOD2, reject, top="no\n")
    wait_mail(sink, MOD2, "did not work")
    sentinel(d, sink)
    assert len(sink.copies(msgid)) == 1
    assert status(d, h["id"]) == "approved"


# ---------------------------------------------------------------- the poster

def test_withdraw_by_the_poster(d, sink):
    add(d, addr("m1"))
    poster = addr("poster")
    subject, msgid = post(d, "Pat <%s>" % poster)
    h = wait_held(d, subject)
    told = wait_mail(sink, poster, "awaits moderation")[0].message()
    withdraw = re.search(r"dialogue-withdraw\+%s@%s" % (TOKEN, re.escape(DOMAIN)),
                         text_of(told)).group(0)
    notice = wait_notice(sink, subject)
    m = EmailMessage()
    m["From"] = poster
    m["To"] = withdraw
    m["Subject"] = "withdraw"
    m["Message-ID"] = email.utils.make_msgid(domain="client.example.net")
    m.set_content("Please drop it.\n")
    send(d, poster, withdraw, m)
    done = wait_mail(sink, poster, "withdrawn")[0].message()
    assert subject in text_of(done)
    assert status(d, h["id"]) == "withdrawn"
    # The moderators can no longer approve it.
    approve, _ = reply_addresses(notice, subject)
    reply(d, notice, MOD, approve, top="ok\n")
    assert "already withdrawn" in text_of(wait_mail(sink, MOD, "did not work")[0].message())
    sentinel(d, sink)
    assert sink.copies(msgid) == []


def test_automatic_mail_is_never_told(d, sink):
    bot, bulk = addr("bot"), addr("bulk")
    s1, _ = post(d, bot, mail_from="")
    s2, _ = post(d, bulk, headers=["Precedence: bulk"])
    wait_held(d, s1)
    wait_held(d, s2)
    sentinel(d, sink)
    assert mails_to(sink, bot) == [] and mails_to(sink, bulk) == []
    # the moderators hear of both all the same
    wait_notice(sink, s1)
    wait_notice(sink, s2)
    d.wait_log(r"the poster is not told \(null sender\)")
    d.wait_log(r"the poster is not told \(bulk precedence\)")


MARKER = "POISON-5e1d-CRASH-HERE"


def test_an_auto_submitted_post_held_unparsed_is_not_answered(daemons, sink, monkeypatch):
    """An Auto-Submitted post is never held while it can be read (it is
    dropped), but one the parser crashed on is held unread: its header is
    still checked, without the parser, before the poster is told."""
    monkeypatch.setenv("DIALOGUE_FAULT_PARSE_CRASH", MARKER)
    d = daemons.make(relay_port=sink.port, lists=LISTS)
    add(d, addr("m1"))
    bot, person = addr("autobot"), addr("person")
    for who, headers in ((bot, ["Auto-Submitted: auto-replied"]), (person, [])):
        with harness.SMTPClient(d.conf.port, timeout=T(10)) as c:
            assert c.reply().code == 220
            c.ehlo()
            r = c.transaction(who, ["%s@%s" % (LIST, DOMAIN)],
                              make_message(new_msgid("poison"), frm=who,
                                           to="%s@%s" % (LIST, DOMAIN), subject="poison",
                                           body="%s\r\n" % MARKER, headers=headers))
        assert r.code == 250, r
        wait_for(lambda: not d.running(), 15, what="dialogued to crash in the parser")
        d.start()
    rows = wait_for(lambda: (lambda r: r if len(r) == 2 else None)(held(d)), 30, interval=0.2,
                    what="both poison posts held")
    assert all(r["reason"] == "message could not be parsed" for r in rows)
    wait_mail(sink, person, "awaits moderation")
    sentinel(d, sink)
    assert mails_to(sink, bot) == []
    d.wait_log(r"the poster is not told \(auto-submitted\)")
    # The moderators get it, attached as it came, never parsed.
    def both():
        ns = [t.message() for t in mails_to(sink, MOD, "moderation")]
        ids = {p.get_content()["From"] for n in ns for p in n.walk()
               if p.get_content_type() == "message/rfc822"}
        return ids if {bot, person} <= ids else None
    sink.wait(both, 30, what="the poison posts attached to notices")


# ---------------------------------------------------------------- batching

def test_posts_held_together_share_one_notice(d, sink):
    posters = [addr("b%d" % i) for i in range(5)]
    subjects = []
    with harness.SMTPClient(d.conf.port, timeout=T(30)) as c:
        assert c.reply().code == 220
        c.ehlo()
        for p in posters:
            subject = "batch " + uuid.uuid4().hex[:8]
            subjects.append(subject)
            r = c.transaction(p, ["batch@" + DOMAIN],
                              make_message(new_msgid("b"), subject=subject, frm=p,
                                           to="batch@" + DOMAIN))
            assert r.code == 250, r
        c.cmd("QUIT")
    t0 = time.monotonic()
    notice = sink.wait(lambda: [t for t in mails_to(sink, MOD, "5 posts to Batch")],
                       60, what="one notice listing 5 posts")[0]
    assert time.monotonic() - t0 < T(30)
    n = notice.message()
    for s in subjects:
        assert s in text_of(n)
        reply_addresses(n, s)
    assert len([p for p in n.walk() if p.get_content_type() == "message/rfc822"]) == 5
    for p in posters:
        wait_mail(sink, p, "awaits moderation")
    assert len([t for t in mails_to(sink, MOD) if "Batch" in str(t.message()["Subject"])]) == 1
    # Two more right after wait for the next minute. One is decided from
    # the command line meanwhile: the next notice is about the other alone.
    sixth, _ = post(d, addr("b6"), lst="batch")
    seventh, _ = post(d, addr("b7"), lst="batch")
    h7 = wait_held(d, seventh)
    assert ctl_ok(d.conf, "held", "discard", h7["id"])[0]["result"] == "done"
    sent_at = notice.when
    late = sink.wait(lambda: notices_about(sink, MOD, sixth), 90,
                     what="the next notice")[0]
    assert late.when - sent_at >= 55, late.when - sent_at
    assert "Held for moderation: %s" % sixth in str(late.message()["Subject"])
    assert seventh not in text_of(late.message())
    assert notices_about(sink, MOD, seventh) == []


# ---------------------------------------------------------------- expiry

def test_held_posts_expire_and_the_poster_is_told(d, sink):
    poster = addr("slow")
    subject, msgid = post(d, poster, lst="brief")
    h = wait_held(d, subject)
    m = wait_mail(sink, poster, "expired")[0].message()
    assert subject in text_of(m) and "2 seconds" in text_of(m)
    assert status(d, h["id"]) == "expired"
    assert ctl_ok(d.conf, "held", "show", h["id"])["decided_by"] == "expiry"
    # hold_expire = 14d: a post received long ago, expired once the daemon
    # looks again (SIGHUP makes it look at once).
    poster2 = addr("old")
    subject2, msgid2 = post(d, poster2)
    h2 = wait_held(d, subject2)
    with db(d) as con:
        con.execute("UPDATE held SET received = received - 15 * 86400 WHERE id = ?",
                    (h2["id"],))
    d.hup()
    m2 = wait_mail(sink, poster2, "expired")[0].message()
    assert "14 days" in text_of(m2)
    assert status(d, h2["id"]) == "expired"
    sentinel(d, sink)
    assert sink.copies(msgid) == [] and sink.copies(msgid2) == []
