"""A message that crashes the parser is committed before parsing, so nothing
is lost; after the crash and a restart it is archived raw and flagged, and
never takes the daemon down a second time. The crash is injected with the
DIALOGUE_FAULT_PARSE_CRASH test hook (abort() on a marker)."""

import harness
from harness import HOSTNAME, T, deliver, make_message, new_msgid, wait_archived, wait_for

MARKER = "POISON-7f3a9c-CRASH-HERE"
LIST = "dialogue@" + HOSTNAME


def test_poison_message_survived(daemons, monkeypatch):
    monkeypatch.setenv("DIALOGUE_FAULT_PARSE_CRASH", MARKER)
    d = daemons.make()

    good = new_msgid("good")
    assert deliver(d.conf.port, [LIST], make_message(good)).code == 250
    wait_archived(d.conf, "dialogue", [good])

    bad = new_msgid("poison")
    # 250 comes back: the message is committed before the parser runs.
    # The daemon may die before QUIT is answered, so no QUIT here.
    with harness.SMTPClient(d.conf.port, timeout=T(10)) as c:
        assert c.reply().code == 220
        c.ehlo()
        r = c.transaction("alice@example.com", [LIST],
                          make_message(bad, subject="evil", body="%s\r\n" % MARKER))
    assert r.code == 250, r
    wait_for(lambda: not d.running(), 15, what="dialogued to crash in the parser")
    assert d.proc.returncode != 0

    # Restart: the poison is archived raw, the daemon keeps running.
    d.start()
    after = new_msgid("after")
    assert deliver(d.conf.port, [LIST], make_message(after)).code == 250
    counts = wait_archived(d.conf, "dialogue", [good, bad, after])
    assert counts == {good: 1, bad: 1, after: 1}, counts
    assert d.running(), d.log_tail()
    entry = [e for e in harness.archive_list(d.conf, "dialogue")
             if harness.strip_brackets(e["message_id"]) == bad][0]
    assert entry["subject"].startswith("(unparsed)"), entry
    d.wait_log("archived raw", timeout=T(5))

    # And once more: a second restart does not crash on it again.
    d.stop()
    d.start()
    assert deliver(d.conf.port, [LIST], make_message(new_msgid())).code == 250
    assert d.running()
