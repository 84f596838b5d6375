"""ESMTP intake of a real dialogued: real clients (smtplib, swaks) and
byte-exact conversations over a raw socket."""

import signal
import smtplib
import socket
import re
import ssl
import struct
import subprocess
import threading
import time

import pytest

import harness
from harness import (HOSTNAME, T, SMTPClient, check, deliver, make_message, new_msgid,
                     wait_archived, wait_for)

D = "@" + HOSTNAME
POST = "dialogue" + D
STEER = "steering" + D


def session(d):
    """A raw session on daemon D, past the banner and EHLO."""
    c = d.smtp()
    check(c.reply(), 220, None, "banner")
    c.ehlo()
    return c


def ehlo_keywords(reply):
    return {line.split()[0].upper(): line for line in reply.lines[1:] if line.strip()}


# ---------------------------------------------------------------- greeting

def test_banner_and_ehlo(live_shared):
    with live_shared.smtp() as c:
        r = c.reply()
        check(r, 220, None, "banner")
        assert r.lines[0].split()[0] == HOSTNAME, r
        r = c.ehlo()
        assert r.lines[0].split()[0] == HOSTNAME, r
        kw = ehlo_keywords(r)
        for k in ("PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES", "HELP", "SIZE"):
            assert k in kw, "EHLO lacks %s: %r" % (k, r)
        assert kw["SIZE"].split()[1:] == [str(25 * 1024 * 1024)], kw["SIZE"]
        assert "STARTTLS" not in kw, "STARTTLS offered without a certificate"
        c.expect("QUIT", 221)
        assert c.wait_closed(), "no close after QUIT"


def test_helo_and_simple_verbs(live_shared):
    with live_shared.smtp() as c:
        c.reply()
        c.expect("HELO client.example.com", 250)
        c.expect("NOOP", 250)
        c.expect("RSET", 250)
        c.expect("VRFY dialogue", 252)
        c.expect("HELP", 214)
        c.expect("QUIT", 221)
        assert c.wait_closed()


def test_ehlo_twice_resets_transaction(live_shared):
    with session(live_shared) as c:
        c.expect("MAIL FROM:<a@example.com>", 250)
        c.ehlo()
        c.expect("RCPT TO:<%s>" % POST, 503, "5.5.1")


# ---------------------------------------------------------------- delivery

def test_smtplib_session(daemon):
    mid = new_msgid("smtplib")
    with smtplib.SMTP("127.0.0.1", daemon.conf.port, timeout=T(30)) as s:
        s.ehlo("client.example.com")
        assert s.has_extn("pipelining")
        refused = s.sendmail("alice@example.com", [POST], make_message(mid, "via smtplib"))
        assert refused == {}
    got = wait_archived(daemon.conf, "dialogue", [mid])
    assert got[mid] == 1


def test_archive_fields(daemon):
    mid = new_msgid("fields")
    parent = new_msgid("parent")
    r = deliver(daemon.conf.port, [POST], make_message(parent, "first"))
    check(r, 250, None, "end of data")
    msg = make_message(mid, "Re: first", frm="Bob Example <bob@example.net>",
                       headers=["In-Reply-To: <%s>" % parent])
    check(deliver(daemon.conf.port, [POST], msg), 250, None, "end of data")
    wait_archived(daemon.conf, "dialogue", [mid, parent])
    entries = {harness.strip_brackets(e["message_id"]): e
               for e in harness.archive_list(daemon.conf, "dialogue")}
    e = entries[mid]
    for field in ("id", "list", "message_id", "from", "subject", "date", "thread_id",
                  "in_reply_to"):
        assert field in e, "archive entry lacks %r: %r" % (field, e)
    assert e["list"] == "dialogue"
    assert "bob@example.net" in e["from"]
    assert "first" in e["subject"]
    assert harness.strip_brackets(e["in_reply_to"]) == parent
    assert e["thread_id"] == entries[parent]["thread_id"]


def test_raw_pipelined_two_lists(daemon):
    """MAIL/RCPT/RCPT/DATA in one write; one post per list; the end of data
    pipelined with QUIT."""
    mid = new_msgid("pipe")
    with session(daemon) as c:
        c.send("MAIL FROM:<alice@example.com>\r\nRCPT TO:<%s>\r\nRCPT TO:<%s>\r\nDATA\r\n"
               % (POST, STEER))
        rs = c.replies(4)
        assert [r.code for r in rs] == [250, 250, 250, 354], rs
        assert rs[1].enh == "2.1.5" and rs[2].enh == "2.1.5", rs
        c.send(harness.dot_stuff(make_message(mid, "pipelined", to=POST + ", " + STEER))
               + b"QUIT\r\n")
        check(c.reply(), 250, None, "end of data")
        check(c.reply(), 221, None, "QUIT")
        assert c.wait_closed()
    a = wait_archived(daemon.conf, "dialogue", [mid])
    b = wait_archived(daemon.conf, "steering", [mid])
    assert a[mid] == 1 and b[mid] == 1


def test_pipelined_transactions_back_to_back(daemon):
    """Two transactions on one session, the second pipelined with RSET."""
    ids = [new_msgid("b2b"), new_msgid("b2b")]
    with session(daemon) as c:
        check(c.transaction("a@example.com", [POST], make_message(ids[0])), 250, None, "first")
        c.send("RSET\r\nMAIL FROM:<a@example.com> BODY=8BITMIME SIZE=900\r\n"
               "RCPT TO:<%s>\r\nDATA\r\n" % POST)
        assert [r.code for r in c.replies(4)] == [250, 250, 250, 354]
        body = "Caf\u00e9 \u2014 eight bits.\r\n..leading dot\r\n.\r\n"
        c.send(harness.dot_stuff(make_message(ids[1], body=body)))
        check(c.reply(), 250, None, "second")
    wait_archived(daemon.conf, "dialogue", ids)


def test_dot_unstuffing(daemon):
    mid = new_msgid("dots")
    body = ".hidden\r\n..two\r\n.\r\n"
    check(deliver(daemon.conf.port, [POST], make_message(mid, "dots", body=body)), 250)
    got = wait_archived(daemon.conf, "dialogue", [mid])
    assert got[mid] == 1
    entry = [e for e in harness.archive_list(daemon.conf, "dialogue")
             if harness.strip_brackets(e["message_id"]) == mid][0]
    raw = subprocess.run([harness.DIALOGUECTL, "-c", str(daemon.conf), "archive", "show",
                          str(entry["id"]), "--raw"], capture_output=True, timeout=T(30))
    assert raw.returncode == 0, raw.stderr
    assert b"\n.hidden\n..two\n.\n" in raw.stdout.replace(b"\r\n", b"\n"), raw.stdout[-200:]


def test_swaks_plain(daemon):
    mid = new_msgid("swaks")
    p = subprocess.run(["swaks", "--server", "127.0.0.1", "--port", str(daemon.conf.port),
                        "--helo", "client.example.com", "--from", "alice@example.com",
                        "--to", POST, "--header", "Message-Id: <%s>" % mid,
                        "--header", "Subject: swaks plain"],
                       capture_output=True, timeout=T(60))
    assert p.returncode == 0, p.stdout.decode(errors="replace")[-2000:]
    wait_archived(daemon.conf, "dialogue", [mid])


def test_swaks_pipeline(daemon):
    mid = new_msgid("swakspipe")
    p = subprocess.run(["swaks", "--pipeline", "--server", "127.0.0.1", "--port",
                        str(daemon.conf.port), "--from", "alice@example.com",
                        "--to", "%s,%s" % (POST, STEER), "--header", "Message-Id: <%s>" % mid,
                        "--header", "Subject: swaks pipelined"],
                       capture_output=True, timeout=T(60))
    out = p.stdout.decode(errors="replace")
    assert p.returncode == 0, out[-2000:]
    assert "PIPELINING" in out
    wait_archived(daemon.conf, "dialogue", [mid])
    wait_archived(daemon.conf, "steering", [mid])


# ---------------------------------------------------------------- STARTTLS

@pytest.fixture
def tls_daemon(daemons, tmp_path):
    cert, key = harness.make_self_signed_cert(tmp_path / "tls")
    return daemons.make(tls_certificate=cert, tls_key=key)


def test_starttls_smtplib(tls_daemon):
    mid = new_msgid("tls")
    with smtplib.SMTP("127.0.0.1", tls_daemon.conf.port, timeout=T(30)) as s:
        s.ehlo("client.example.com")
        assert s.has_extn("starttls")
        code, _ = s.starttls(context=harness.insecure_tls_context())
        assert code == 220
        s.ehlo("client.example.com")
        assert not s.has_extn("starttls"), "STARTTLS offered again inside TLS"
        assert s.has_extn("pipelining")
        s.sendmail("alice@example.com", [POST], make_message(mid, "over TLS"))
    wait_archived(tls_daemon.conf, "dialogue", [mid])


def test_starttls_resets_session(tls_daemon):
    with session(tls_daemon) as c:
        c.expect("MAIL FROM:<a@example.com>", 250)
        r = c.expect("STARTTLS", 220, "2.0.0")
        c.starttls()
        # The transaction and the EHLO before TLS are forgotten.
        c.expect("MAIL FROM:<a@example.com>", 503, "5.5.1")
        r = c.ehlo()
        assert "STARTTLS" not in ehlo_keywords(r)
        c.expect("STARTTLS", 503, "5.5.1")
        c.expect("NOOP", 250)


def test_starttls_discards_pipelined_plaintext(tls_daemon):
    """Commands after STARTTLS in the same packet must not be answered or
    executed (the CVE-2011-0411 class of command injection)."""
    with session(tls_daemon) as c:
        c.send("STARTTLS\r\nRSET\r\n")
        check(c.reply(), 220, "2.0.0", "STARTTLS")
        assert c.pending() == b"", "plaintext reply after STARTTLS: %r" % c.pending()
        # A plaintext "250" for the RSET would break the handshake here.
        c.starttls()
        r = c.ehlo()  # the first reply inside TLS must be the EHLO's own
        assert "PIPELINING" in ehlo_keywords(r), r
        c.expect("NOOP", 250)
        c.expect("QUIT", 221)


def test_starttls_injected_mail_from_ignored(tls_daemon):
    with session(tls_daemon) as c:
        c.send("STARTTLS\r\nMAIL FROM:<evil@example.com>\r\n")
        check(c.reply(), 220, "2.0.0", "STARTTLS")
        c.starttls()
        c.ehlo()
        # Had the injected MAIL run, this RCPT would be accepted.
        c.expect("RCPT TO:<%s>" % POST, 503, "5.5.1")


def test_swaks_starttls(tls_daemon):
    mid = new_msgid("swakstls")
    p = subprocess.run(["swaks", "--tls", "--server", "127.0.0.1", "--port",
                        str(tls_daemon.conf.port), "--from", "alice@example.com", "--to", POST,
                        "--header", "Message-Id: <%s>" % mid],
                       capture_output=True, timeout=T(60))
    assert p.returncode == 0, p.stdout.decode(errors="replace")[-2000:]
    wait_archived(tls_daemon.conf, "dialogue", [mid])


# ---------------------------------------------------------------- routing

LIST_FORMS = ["{L}", "{L}-join", "{L}-subscribe", "{L}-leave", "{L}-unsubscribe",
              "{L}-confirm+abcdef0123456789abcdef0123456789", "{L}-request", "{L}-owner",
              "{L}-bounces", "{L}-bounces+user=example.net",
              "{L}-approve+abcdef0123456789abcdef0123456789",
              "{L}-reject+abcdef0123456789abcdef0123456789",
              "{L}-withdraw+abcdef0123456789abcdef0123456789"]


@pytest.mark.parametrize("lst", ["dialogue", "steering"])
def test_routing_accepts_list_addresses(live_shared, lst):
    with session(live_shared) as c:
        c.expect("MAIL FROM:<a@example.com>", 250)
        for form in LIST_FORMS:
            c.expect("RCPT TO:<%s%s>" % (form.format(L=lst), D), 250, "2.1.5")
        c.expect("RCPT TO:<%s@LISTS.Example.ORG>" % lst, 250, "2.1.5")
        c.expect("RSET", 250)


def test_postmaster_accepted(live_shared):
    # RFC 5321 4.5.1 and 4.1.1.3: postmaster at our domain, and bare.
    with session(live_shared) as c:
        c.expect("MAIL FROM:<a@example.com>", 250)
        c.expect("RCPT TO:<postmaster%s>" % D, 250, "2.1.5")
        c.expect("RCPT TO:<Postmaster>", 250, "2.1.5")
        c.expect("RCPT TO:<postmaster@example.org>", 550, "5.7.1")
        c.expect("RSET", 250)


@pytest.mark.parametrize("local", ["nobody", "dialogue-nothing", "dialoguex", "steering-",
                                   "dialogue-confirm", "postmaster-dialogue", "x-dialogue"])
def test_unknown_local_part(live_shared, local):
    with session(live_shared) as c:
        c.expect("MAIL FROM:<a@example.com>", 250)
        c.expect("RCPT TO:<%s%s>" % (local, D), 550, "5.1.1")
        c.expect("NOOP", 250)


@pytest.mark.parametrize("rcpt", ["someone@example.com", "dialogue@example.org",
                                  "dialogue@lists.example.org.evil.example",
                                  "dialogue@sub.lists.example.org",
                                  "dialogue%lists.example.org@evil.example",
                                  "user@[127.0.0.1]"])
def test_no_open_relay(live_shared, rcpt):
    with session(live_shared) as c:
        c.expect("MAIL FROM:<a@example.com>", 250)
        c.expect("RCPT TO:<%s>" % rcpt, 550, "5.7.1")
        c.expect("NOOP", 250)


def test_source_route_not_relayed(live_shared):
    with session(live_shared) as c:
        c.expect("MAIL FROM:<a@example.com>", 250)
        r = c.cmd("RCPT TO:<@%s:someone@evil.example>" % HOSTNAME)
        assert r.code in (501, 550, 553), r
        c.expect("NOOP", 250)


# ---------------------------------------------------------------- limits

def test_size_limit(daemons):
    d = daemons.make(max_message_size="10K")
    big, ok = new_msgid("big"), new_msgid("fits")
    with session(d) as c:
        r = c.cmd("EHLO client.example.com")
        assert ehlo_keywords(r)["SIZE"].split()[1:] == ["10240"], r
        c.expect("MAIL FROM:<a@example.com> SIZE=20000", 552, "5.3.4")
        c.expect("NOOP", 250)
        c.expect("MAIL FROM:<a@example.com> SIZE=9000", 250)
        c.expect("RSET", 250)
        # No SIZE= declared: refused at the end of the data instead.
        c.send("MAIL FROM:<a@example.com>\r\nRCPT TO:<%s>\r\nDATA\r\n" % POST)
        assert [r.code for r in c.replies(3)] == [250, 250, 354]
        c.send(harness.dot_stuff(make_message(big, "too big", size=30000)))
        check(c.reply(), 552, "5.3.4", "end of oversized data")
        c.expect("NOOP", 250)
        check(c.transaction("a@example.com", [POST], make_message(ok, "fits", size=5000)),
              250, None, "message under the limit")
    have = wait_archived(d.conf, "dialogue", [ok])
    assert big not in have, "an oversized message was archived"


def test_too_many_recipients(live_shared):
    with session(live_shared) as c:
        c.expect("MAIL FROM:<a@example.com>", 250)
        rcpts = ["dialogue-bounces+u%d=example.net%s" % (i, D) for i in range(101)]
        c.send("".join("RCPT TO:<%s>\r\n" % r for r in rcpts))
        rs = c.replies(101)
        assert all(r.code == 250 for r in rs[:100]), [r for r in rs[:100] if r.code != 250][:3]
        check(rs[100], 452, "4.5.3", "101st RCPT")
        c.expect("NOOP", 250)
        c.expect("RSET", 250)


def test_max_rcpts_setting(daemons):
    d = daemons.make(max_rcpts=3)
    with session(d) as c:
        c.expect("MAIL FROM:<a@example.com>", 250)
        for i in range(3):
            c.expect("RCPT TO:<dialogue-bounces+u%d=example.net%s>" % (i, D), 250)
        c.expect("RCPT TO:<%s>" % POST, 452, "4.5.3")


def test_max_connections(daemons):
    d = daemons.make(max_connections=5)
    held = []
    try:
        for _ in range(5):
            c = d.smtp()
            check(c.reply(), 220, None, "banner within the limit")
            held.append(c)
        with d.smtp() as extra:
            check(extra.reply(), 421, "4.7.0", "connection over max_connections")
            assert extra.wait_closed(), "not closed after 421"
        held.pop().close()

        def admitted():
            with d.smtp() as c:
                r = c.reply()
                if r.code == 220:
                    c.expect("NOOP", 250)
                    return True
                return False
        wait_for(admitted, 10, what="a slot to be freed after a close", ignore=(EOFError,
                                                                                  OSError))
        for c in held:  # the others were never disturbed
            c.expect("NOOP", 250)
    finally:
        for c in held:
            c.close()


def test_idle_timeout(daemons):
    d = daemons.make(command_timeout="2s")
    with d.smtp() as c:
        check(c.reply(), 220, None, "banner")
        c.ehlo()
        start = time.monotonic()
        c.sock.settimeout(T(20))
        check(c.reply(), 421, "4.4.2", "idle timeout")
        assert time.monotonic() - start >= 1.5, "timed out too early"
        assert c.wait_closed(), "not closed after the timeout"
    with session(d) as c:  # the daemon itself goes on
        c.expect("NOOP", 250)


def test_data_timeout(daemons):
    d = daemons.make(data_timeout="2s")
    with session(d) as c:
        c.send("MAIL FROM:<a@example.com>\r\nRCPT TO:<%s>\r\nDATA\r\n" % POST)
        assert [r.code for r in c.replies(3)] == [250, 250, 354]
        c.send(b"Subject: half\r\n\r\nhalf a line")
        c.sock.settimeout(T(20))
        check(c.reply(), 421, "4.4.2", "data timeout")
        assert c.wait_closed()


# ---------------------------------------------------------------- bad input

BAD_COMMANDS = [
    # (name, setup commands, bytes sent, code, enhanced code)
    ("unknown", [], b"FROB\r\n", 500, "5.5.1"),
    ("mail-no-brackets", [], b"MAIL FROM:alice@example.com\r\n", 501, None),
    ("mail-bad-address", [], b"MAIL FROM:<alice@@example.com>\r\n", 501, "5.1.7"),
    ("rcpt-bad-address", ["MAIL FROM:<a@example.com>"], b"RCPT TO:<dialogue@>\r\n", 501,
     "5.1.3"),
    ("mail-garbage", [], b"MAIL TO:<a@example.com>\r\n", 501, "5.5.4"),
    ("helo-no-arg", [], b"HELO\r\n", 501, "5.5.4"),
    ("ehlo-no-arg", [], b"EHLO\r\n", 501, "5.5.4"),
    ("rcpt-before-mail", [], b"RCPT TO:<dialogue@lists.example.org>\r\n", 503, "5.5.1"),
    # RFC 5321 3.3: DATA without an accepted RCPT may get 503 or 554.
    ("data-before-rcpt", ["MAIL FROM:<a@example.com>"], b"DATA\r\n", (503, 554), "5.5.1"),
    ("data-before-mail", [], b"DATA\r\n", 503, "5.5.1"),
    ("nested-mail", ["MAIL FROM:<a@example.com>"], b"MAIL FROM:<b@example.com>\r\n", 503,
     "5.5.1"),
    ("long-line", [], b"NOOP " + b"x" * 600 + b"\r\n", 500, "5.5.2"),
    ("huge-line", [], b"NOOP " + b"x" * 200000 + b"\r\n", 500, "5.5.2"),
    ("nul", [], b"NO\x00OP\r\n", 500, "5.5.2"),
    ("bare-cr", [], b"NOOP\rNOOP\r\n", 500, "5.5.2"),
    ("bare-lf", [], b"NOOP\nNOOP\r\n", 500, "5.5.2"),
    ("non-ascii", [], b"NOOP caf\xc3\xa9\r\n", 500, "5.5.2"),
    ("non-ascii-ehlo", [], b"EHLO \xff\xfe.example\r\n", 500, "5.5.2"),
    ("non-ascii-mail", [], b"MAIL FROM:<j\xc3\xa9@example.com>\r\n", 500, "5.5.2"),
]


@pytest.mark.parametrize("name,setup,data,code,enh", BAD_COMMANDS,
                         ids=[b[0] for b in BAD_COMMANDS])
def test_bad_command(live_shared, name, setup, data, code, enh):
    with session(live_shared) as c:
        for cmd in setup:
            c.expect(cmd, 250)
        c.send(data)
        r = c.reply()
        if isinstance(code, tuple):
            assert r.code in code, "%s: expected one of %r, got %r" % (name, code, r)
            check(r, r.code, enh, name)
        else:
            check(r, code, enh, name)
        # Exactly one reply: nothing else queued up behind it.
        r = c.cmd("NOOP")
        check(r, 250, None, "NOOP after " + name)
        assert c.pending() == b"", c.pending()


def test_mail_before_helo(live_shared):
    with live_shared.smtp() as c:
        c.reply()
        c.expect("MAIL FROM:<a@example.com>", 503, "5.5.1")
        c.expect("NOOP", 250)


def test_command_line_limit_boundary(live_shared):
    """512 octets including CRLF are allowed; 513 are not (RFC 5321 4.5.3.1.4)."""
    with session(live_shared) as c:
        c.expect(b"NOOP " + b"x" * (512 - 7), 250)
        c.expect(b"NOOP " + b"x" * (513 - 7), 500, "5.5.2")
        c.expect("NOOP", 250)


def test_long_text_line_in_data(daemons):
    d = daemons.make()
    long_id, ok = new_msgid("longline"), new_msgid("after")
    with session(d) as c:
        c.send("MAIL FROM:<a@example.com>\r\nRCPT TO:<%s>\r\nDATA\r\n" % POST)
        assert [r.code for r in c.replies(3)] == [250, 250, 354]
        c.send(harness.dot_stuff(make_message(long_id, body="y" * 1200 + "\r\n")))
        check(c.reply(), 554, "5.6.0", "text line over 1000 octets")
        c.expect("NOOP", 250)
        check(c.transaction("a@example.com", [POST], make_message(ok)), 250, None, "after")
    have = wait_archived(d.conf, "dialogue", [ok])
    assert long_id not in have, "a message with an overlong line was archived"


@pytest.mark.parametrize("name,body", [
    ("bare-lf", b"one\ntwo\r\nthree\n"),
    ("bare-cr", b"one\rtwo\r\n"),
    ("nul", b"a\x00b\r\n"),
    ("8bit", b"caf\xc3\xa9 \xff\xfe\r\n"),
    ("only-dot-stuffed", b"..\r\n"),
    ("no-header", b""),
])
def test_odd_data_session_goes_on(live_shared, name, body):
    with session(live_shared) as c:
        c.send("MAIL FROM:<a@example.com>\r\nRCPT TO:<%s>\r\nDATA\r\n" % POST)
        assert [r.code for r in c.replies(3)] == [250, 250, 354]
        head = b"" if name == "no-header" else b"Subject: odd\r\n\r\n"
        c.send(head + body + b"\r\n.\r\n")
        r = c.reply()
        assert r.code in (250, 550, 554, 500), r
        if r.code == 550 and name in ("bare-lf", "bare-cr"):
            assert r.enh in ("5.6.11", "5.6.0", "5.5.2"), r
        c.expect("NOOP", 250)


def test_too_many_errors_closes_only_that_session(live_shared):
    other = session(live_shared)
    try:
        with session(live_shared) as c:
            replies = []
            for i in range(12):
                try:
                    r = c.cmd("FROB%d" % i)
                except (EOFError, ConnectionResetError, BrokenPipeError):
                    break
                replies.append(r)
                if r.code == 421:
                    break
            codes = [r.code for r in replies]
            assert replies and replies[-1].code == 421, codes
            check(replies[-1], 421, "4.7.0", "too many errors")
            assert all(code == 500 for code in codes[:-1]), codes
            assert 10 <= len(codes) <= 11, "421 after %d errors, max_errors is 10" % len(codes)
            assert c.wait_closed(), "not closed after 421"
        other.expect("NOOP", 250)
        mid = new_msgid("survivor")
        check(other.transaction("a@example.com", [POST], make_message(mid)), 250, None,
              "delivery on the other session")
    finally:
        other.close()


def test_max_errors_setting(daemons):
    d = daemons.make(max_errors=3)
    with session(d) as c:
        codes = []
        for _ in range(5):
            try:
                codes.append(c.cmd("FROB").code)
            except (EOFError, ConnectionResetError, BrokenPipeError):
                break
            if codes[-1] == 421:
                break
        assert codes[-1] == 421 and 3 <= len(codes) <= 4, codes


# ---------------------------------------------------------------- load

def test_200_concurrent_sessions(daemon):
    n = 200
    barrier = threading.Barrier(n, timeout=T(60))
    ids = [new_msgid("c%03d" % i) for i in range(n)]
    results = [None] * n

    def client(i):
        try:
            with smtplib.SMTP("127.0.0.1", daemon.conf.port, timeout=T(60)) as s:
                s.ehlo("c%d.example.com" % i)
                barrier.wait()  # every session open at once
                s.sendmail("user%d@example.com" % i, [POST], make_message(ids[i], "c%d" % i))
                results[i] = "ok"
        except Exception as e:  # noqa: BLE001 - reported below
            results[i] = repr(e)
    threads = [threading.Thread(target=client, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(T(120))
    bad = [(i, r) for i, r in enumerate(results) if r != "ok"]
    assert not bad, "%d sessions failed, e.g. %r" % (len(bad), bad[:3])
    have = wait_archived(daemon.conf, "dialogue", ids, timeout=60)
    assert all(have[m] == 1 for m in ids)


# ---------------------------------------------------------------- config & signals

def run_check(conf):
    return subprocess.run([harness.DIALOGUED, "-n", "-c", str(conf)], capture_output=True,
                          timeout=T(30))


def test_check_good_config(tmp_path):
    conf = harness.write_config(tmp_path)
    p = run_check(conf)
    assert p.returncode == 0, p.stderr.decode(errors="replace")


def bad_configs(tmp_path):
    """(name, Conf, 1-based line of the error)."""
    out = []
    c = harness.write_config(tmp_path / "a", colour="blue")
    out.append(("unknown-key", c, c.line_of("colour")))
    c = harness.write_config(tmp_path / "b", max_connections="many")
    out.append(("bad-number", c, c.line_of("max_connections")))
    c = harness.write_config(tmp_path / "c", command_timeout="5x")
    out.append(("bad-duration", c, c.line_of("command_timeout")))
    c = harness.write_config(tmp_path / "d", max_message_size="25Q")
    out.append(("bad-size", c, c.line_of("max_message_size")))
    c = harness.write_config(tmp_path / "e", lists={"steering": {"post_policy": "sometimes"}})
    out.append(("bad-policy", c, c.line_of("sometimes")))
    c = harness.write_config(tmp_path / "f", extra="[bogus]\nkey = value")
    out.append(("unknown-section", c, c.line_of("[bogus]")))
    return out


def test_check_bad_configs(tmp_path):
    for name, conf, line in bad_configs(tmp_path):
        p = run_check(conf)
        out = (p.stdout + p.stderr).decode(errors="replace")
        assert p.returncode == 78, "%s: exit %d: %s" % (name, p.returncode, out)
        assert "%s:%d:" % (conf.path, line) in out, "%s: no FILE:LINE in %r" % (name, out)


def test_refuses_to_start_with_bad_config(tmp_path):
    conf = harness.write_config(tmp_path, colour="blue")
    p = subprocess.run([harness.DIALOGUED, "-c", str(conf)], capture_output=True,
                       timeout=T(30))
    assert p.returncode == 78, p
    assert ("%s:%d:" % (conf.path, conf.line_of("colour"))).encode() in p.stderr


def test_version_and_help():
    for arg in ("--version", "-h"):
        p = subprocess.run([harness.DIALOGUED, arg], capture_output=True, timeout=T(30))
        assert p.returncode == 0, (arg, p)
        assert p.stdout or p.stderr


def rcpt_code(d, rcpt):
    with session(d) as c:
        c.expect("MAIL FROM:<a@example.com>", 250)
        return c.cmd("RCPT TO:<%s>" % rcpt).code


def test_sighup_bad_config_keeps_old(daemon):
    conf = daemon.conf
    good_text = conf.text
    start = len(daemon.log())
    conf.rewrite(colour="blue", lists={"dialogue": None})
    line = conf.line_of("colour")
    daemon.hup()
    daemon.wait_log(re.escape("%s:%d:" % (conf.path, line)), start=start)
    assert daemon.running()
    # The old config is still in force: dialogue@ still exists.
    assert rcpt_code(daemon, POST) == 250
    conf.path.write_text(good_text)


def test_sighup_adds_list(daemon):
    conf = daemon.conf
    new = "newlist" + D
    assert rcpt_code(daemon, new) == 550
    conf.rewrite(lists={"newlist": {"title": "A new list"}})
    daemon.hup()
    wait_for(lambda: rcpt_code(daemon, new) == 250, 10, what="newlist@ accepted after SIGHUP")
    mid = new_msgid("newlist")
    check(deliver(conf.port, [new], make_message(mid, to=new)), 250)
    wait_archived(conf, "newlist", [mid])


def test_sighup_removes_list(daemon):
    conf = daemon.conf
    assert rcpt_code(daemon, STEER) == 250
    conf.rewrite(lists={"steering": None})
    daemon.hup()
    wait_for(lambda: rcpt_code(daemon, STEER) == 550, 10, what="steering@ refused")
    assert rcpt_code(daemon, POST) == 250


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_exits_cleanly(daemon, sig):
    with session(daemon) as c:
        c.expect("NOOP", 250)
        elapsed = daemon.stop(sig)
        assert elapsed < 10
        assert c.wait_closed(5), "session left open after shutdown"


def test_sigterm_aborts_inflight_transaction(daemon):
    half = new_msgid("half")
    c = session(daemon)
    try:
        c.send("MAIL FROM:<a@example.com>\r\nRCPT TO:<%s>\r\nDATA\r\n" % POST)
        assert [r.code for r in c.replies(3)] == [250, 250, 354]
        c.send(make_message(half, "never finished")[:-10])
        daemon.stop()
        try:
            r = c.reply()
            assert r.code == 421, r
        except (EOFError, ConnectionResetError):
            pass
    finally:
        c.close()
    daemon.start()
    ok = new_msgid("after-restart")
    check(deliver(daemon.conf.port, [POST], make_message(ok)), 250)
    have = wait_archived(daemon.conf, "dialogue", [ok])
    assert half not in have


def test_restart_keeps_archive(daemon):
    mid = new_msgid("persist")
    check(deliver(daemon.conf.port, [POST], make_message(mid)), 250)
    wait_archived(daemon.conf, "dialogue", [mid])
    daemon.restart()
    assert harness.archive_ids(daemon.conf, "dialogue")[mid] == 1
    assert (daemon.conf.dir / "secret").exists()
    assert (daemon.conf.dir / "secret").stat().st_mode & 0o077 == 0, "secret not 0600"


def test_connection_reset_mid_data(daemon):
    """A client vanishing mid-message leaves the daemon serving others."""
    for _ in range(20):
        c = session(daemon)
        c.send("MAIL FROM:<a@example.com>\r\nRCPT TO:<%s>\r\nDATA\r\n" % POST)
        c.replies(3)
        c.send(b"Subject: x\r\n\r\n" + b"z" * 5000)
        # SO_LINGER 0: close with a RST, like a crashed client.
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        c.close()
    with session(daemon) as c:
        c.expect("NOOP", 250)


def test_tls_garbage_handshake(tls_daemon):
    """Garbage instead of a ClientHello fails that session only."""
    with session(tls_daemon) as c:
        c.expect("STARTTLS", 220)
        c.send(b"\x16\x03\x01\x00\x05hello" + b"\x00" * 100)
        c.wait_closed(10)
    with session(tls_daemon) as c:
        c.expect("NOOP", 250)
    ctx = harness.insecure_tls_context()
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    with session(tls_daemon) as c:
        c.expect("STARTTLS", 220)
        c.starttls(ctx)
        c.ehlo()


def test_listen_on_two_addresses(daemons):
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
            port6 = s.getsockname()[1]
    except OSError:
        pytest.skip("no IPv6 loopback")
    port4 = harness.free_port()
    d = daemons.make(port=port4, listen="127.0.0.1:%d, [::1]:%d" % (port4, port6))
    with SMTPClient(port6, host="::1", timeout=T(10)) as c:
        check(c.reply(), 220, None, "banner on [::1]")
        c.ehlo()
        mid = new_msgid("v6")
        check(c.transaction("a@example.com", [POST], make_message(mid)), 250, None, "over IPv6")
    wait_archived(d.conf, "dialogue", [mid])


def test_xforward_from_trusted_peer(daemon):
    """Behind an MTA (Postfix with smtp_send_xforward_command = yes), the
    forwarded client address is what dialogued records and rate-limits."""
    import sqlite3
    mid = new_msgid("xforward")
    with session(daemon) as c:
        r = c.ehlo()
        assert "XFORWARD" in r.text, r  # 127.0.0.1 is in xforward_hosts by default
        c.expect("XFORWARD NAME=client.example ADDR=192.0.2.7 PROTO=ESMTP HELO=client.example",
                 250)
        c.expect("XFORWARD FOO=bar", 501)
        r = c.transaction("a@example.com", [POST], make_message(mid))
        check(r, 250, None, "end of data")
        c.expect("MAIL FROM:<a@example.com>", 250)
        c.expect("XFORWARD ADDR=192.0.2.8", 503)  # not inside a transaction
        c.expect("RSET", 250)
    wait_archived(daemon.conf, "dialogue", [mid])
    db = sqlite3.connect(str(daemon.conf.dir / "dialogue.db"))
    try:
        ips = [row[0] for row in db.execute(
            "SELECT client_ip FROM messages WHERE CAST(raw AS TEXT) LIKE ?",
            ("%" + mid + "%",))]
    finally:
        db.close()
    assert ips == ["192.0.2.7"], ips


def test_xforward_refused_from_untrusted_peer(daemons):
    d = daemons.make(xforward_hosts="192.0.2.1")
    with session(d) as c:
        r = c.ehlo()
        assert "XFORWARD" not in r.text, r
        c.expect("XFORWARD ADDR=192.0.2.7", 550, "5.7.0")
        c.expect("NOOP", 250)
