"""Crash safety of the fan-out: kill -9 dialogued in the middle of sending a
post to 2,000 members (VERP: one transaction each), restart it, and check
that every member gets the post and that the only copies sent twice are
ones that were in flight at the kill (rows left 'sending', which the restart
queues again)."""

import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402
from harness import deliver, make_message, new_msgid, wait_for  # noqa: E402
from sink import Sink  # noqa: E402

MEMBERS = 2000
KILL_AFTER = 200
LIST = "dialogue"
ADDR = "dialogue@" + harness.HOSTNAME
POSTER = "m0000@example.org"


def ctl_ok(conf, *args, timeout=60):
    """harness.ctl_ok with the longer wait a 2,000-member fan-out needs."""
    return harness.ctl_ok(conf, *args, timeout=timeout)


@pytest.mark.slow
def test_kill9_mid_fanout_loses_nothing_and_repeats_only_in_flight(daemons, monkeypatch,
                                                                      tmp_path):
    monkeypatch.setenv("DIALOGUE_SMTP_TIMEOUT_MS", "5000")
    # A little latency per DATA keeps the fan-out running for a few seconds,
    # so the kill lands in the middle of it, with copies in flight.
    with Sink(data_delay=0.003) as sink:
        members = ["m%04d@example.org" % i for i in range(MEMBERS)]
        d = daemons.make(relay_port=sink.port,
                         lists={LIST: {"post_policy": "members", "nonmember_action": "hold"}},
                         delivery={"verp": "yes", "connections": "4"})
        csv = tmp_path / "members.csv"
        csv.write_text("address,name,stakeholder\n" +
                       "".join("%s,Member %d,other\n" % (m, i) for i, m in enumerate(members)))
        ctl_ok(d.conf, "members", "import", LIST, str(csv))
        assert sum(1 for _ in ctl_ok(d.conf, "members", "list", LIST)) == MEMBERS

        msgid = new_msgid("crash")
        r = deliver(d.conf.port, [ADDR], make_message(msgid, frm=POSTER, to=ADDR,
                                                      subject="crash test"),
                    mail_from=POSTER)
        assert r.code == 250, r

        sink.wait_copies(KILL_AFTER, msgid, timeout=60)
        d.kill9()
        before = sink.recipients(msgid)
        assert sum(before.values()) < MEMBERS, (
            "all %d copies arrived before the kill; nothing was in flight to test "
            "(the sink is too fast for this machine)" % MEMBERS)

        # The daemon is down; the CLI reads the store on its own.
        rows = ctl_ok(d.conf, "queue", "list")
        sending = [r for r in rows if r["status"] == "sending"]
        statuses = {}
        for r in rows:
            statuses[r["status"]] = statuses.get(r["status"], 0) + 1

        # Connections made by the killed process: a copy arriving on one of
        # them (even late, after the kill) was sent by the first life.
        first_life = sink.peers()
        log_offset = len(d.log())
        d.start()
        if sending:
            d.wait_log(r"were being sent when the daemon stopped", timeout=15, start=log_offset)

        def everyone():
            got = sink.recipients(msgid)
            return got if len(got) == MEMBERS else None
        try:
            got = wait_for(everyone, 60, interval=0.2, what="all %d members' copies" % MEMBERS)
        except harness.Timeout as e:
            got = sink.recipients(msgid)
            missing = sorted(set(members) - set(got))
            raise AssertionError("%s; %d member(s) never got the post, e.g. %s\n"
                                 "queue after restart: %r" % (
                                     e, len(missing), missing[:5], ctl_ok(d.conf, "queue",
                                                                          "list")[:5])) from None

        def drained():
            return ctl_ok(d.conf, "queue", "list") == []
        wait_for(drained, 30, interval=0.2, what="the queue to drain after the restart")

        got = sink.recipients(msgid)
        first, second = {}, {}
        for c in sink.copies(msgid):
            side = first if c.txn.peer in first_life else second
            side[c.rcpt.lower()] = side.get(c.rcpt.lower(), 0) + 1
        copies = sum(got.values())
        dups = sorted(m for m, n in got.items() if n > 1)
        sending_rcpts = {r["recipient"].lower() for r in sending}
        # A copy the relay took whose 'sent' was not committed before the kill.
        unrecorded = sorted(m for m in first if m in sending_rcpts)
        print("\nfan-out crash: %d members; rows at the kill: %r; in flight ('sending'): %d; "
              "copies sent before the kill: %d (%d not yet recorded as sent); after the "
              "restart: %d; duplicates: %d"
              % (MEMBERS, statuses, len(sending), sum(first.values()), len(unrecorded),
                 sum(second.values()), len(dups)))

        assert set(got) == set(members), "copies went to non-members: %r" % (
            sorted(set(got) - set(members))[:5])
        assert max(first.values(), default=1) == 1, "the first life sent someone two copies: %r" % (
            [m for m, n in first.items() if n > 1][:5])
        assert max(second.values(), default=1) == 1, "the restart sent someone two copies: %r" % (
            [m for m, n in second.items() if n > 1][:5])
        resent = sorted(m for m in second if m in first and m not in sending_rcpts)
        assert not resent, ("%d member(s) whose row was not 'sending' at the kill got the post "
                            "again after the restart, e.g. %s" % (len(resent), resent[:5]))
        not_in_flight = sorted(set(dups) - sending_rcpts)
        assert not not_in_flight, (
            "%d duplicate(s) to members whose row was not 'sending' at the kill, e.g. %s "
            "(in flight: %d)" % (len(not_in_flight), not_in_flight[:5], len(sending)))
        assert copies - MEMBERS <= len(sending), "%d duplicates > %d rows in flight" % (
            copies - MEMBERS, len(sending))
        assert dups == unrecorded, ("duplicates should be exactly the copies sent before the "
                                    "kill whose row was still 'sending': %d vs %d (e.g. %s / %s)"
                                    % (len(dups), len(unrecorded), dups[:3], unrecorded[:3]))
        # Every member's row ends 'sent', once.
        all_rows = ctl_ok(d.conf, "queue", "list", "--all")
        assert len(all_rows) == MEMBERS and all(r["status"] == "sent" for r in all_rows), \
            {s: sum(1 for r in all_rows if r["status"] == s) for s in {r["status"] for r in all_rows}}


@pytest.mark.slow
def test_sigterm_mid_fanout_requeues_and_loses_nothing(daemons, monkeypatch, tmp_path):
    """A clean stop in the middle of a fan-out: dialogued exits 0 within
    10 s, leaves no row 'sending', and after a start every member has the
    post; only transactions cut off at the stop (at most one per
    connection) may be repeated."""
    monkeypatch.setenv("DIALOGUE_SMTP_TIMEOUT_MS", "5000")
    n, conns = 400, 4
    with Sink(data_delay=0.01) as sink:
        members = ["t%04d@example.org" % i for i in range(n)]
        d = daemons.make(relay_port=sink.port,
                         lists={LIST: {"post_policy": "open", "nonmember_action": "accept"}},
                         delivery={"verp": "yes", "connections": str(conns)})
        csv = tmp_path / "members.csv"
        csv.write_text("".join("%s,,\n" % m for m in members))
        ctl_ok(d.conf, "members", "import", LIST, str(csv))
        msgid = new_msgid("term")
        r = deliver(d.conf.port, [ADDR], make_message(msgid, frm="x@example.net", to=ADDR),
                    mail_from="x@example.net")
        assert r.code == 250, r

        sink.wait_copies(50, msgid, timeout=60)
        t_stop = time.monotonic()
        took = d.stop()  # SIGTERM; asserts exit 0
        rows = ctl_ok(d.conf, "queue", "list")
        statuses = {}
        for row in rows:
            statuses[row["status"]] = statuses.get(row["status"], 0) + 1
        before = sum(sink.recipients(msgid).values())
        assert before < n, "every copy went out before the stop; nothing was tested"
        assert "sending" not in statuses, "rows left 'sending' after a clean stop: %r" % statuses

        d.start()
        got = wait_for(lambda: (lambda g: g if len(g) == n else None)(sink.recipients(msgid)),
                       60, interval=0.2, what="all %d members' copies" % n)
        wait_for(lambda: ctl_ok(d.conf, "queue", "list") == [], 30, interval=0.2,
                 what="the queue to drain")
        got = sink.recipients(msgid)
        dups = sorted(m for m, k in got.items() if k > 1)
        print("\nSIGTERM mid fan-out: stopped in %.2f s; %d copies before; unsent rows at the "
              "stop: %r; duplicates: %d" % (took, before, statuses, len(dups)))
        assert set(got) == set(members)
        # A clean stop lets transactions already talking to the relay finish
        # and queues the rest again: nobody gets a second copy.
        if dups:
            detail = []
            for m in dups[:8]:
                detail.append("%s: %s" % (m, ["%s %+.3fs" % (c.txn.peer[1], c.txn.when - t_stop)
                                              for c in sink.copies(msgid) if c.rcpt == m]))
            first_life = {t.peer for t in sink.transactions() if t.when < t_stop}
            raise AssertionError(
                "%d duplicates after a clean stop (none expected; %d connections); "
                "the first process used %d connection(s); copies (peer port, time from the "
                "SIGTERM):\n  %s\n--- dialogued log:\n%s" % (
                    len(dups), conns, len(first_life), "\n  ".join(detail),
                    "\n".join(l for l in d.log().splitlines()
                              if "delivery: t" not in l)[-6000:]))
