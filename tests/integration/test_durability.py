"""Acknowledged means durable: kill -9 dialogued while 20 clients send, restart
it, and every message that got a 250 must be archived exactly once; messages
whose reply was lost may be there at most once; refused ones never."""

import random
import threading

import harness
from harness import HOSTNAME, T, check, deliver, make_message, new_msgid, wait_for

POST = "dialogue@" + HOSTNAME
STEER = "steering@" + HOSTNAME
CLIENTS = 20
ROUNDS = 3
ACKED_PER_ROUND = 300  # kill once this many 250s came back in the round


class Ledger:
    """What each Message-ID's client saw."""

    def __init__(self):
        self.lock = threading.Lock()
        self.acked = {}    # msgid -> lists it was sent to
        self.maybe = {}    # end of data sent, reply lost
        self.refused = {}  # 4xx/5xx after the data
        self.errors = []

    def add(self, kind, mid, lists):
        with self.lock:
            getattr(self, kind)[mid] = lists

    def n_acked(self):
        with self.lock:
            return len(self.acked)


def sender(port, stop, ledger, tag, seed):
    rng = random.Random(seed)
    conn = None
    while not stop.is_set():
        in_flight = None
        try:
            if conn is None:
                conn = harness.SMTPClient(port, timeout=T(30))
                check(conn.reply(), 220, None, "banner")
                conn.ehlo()
            mid = new_msgid(tag)
            lists = ["dialogue", "steering"] if rng.random() < 0.2 else ["dialogue"]
            rcpts = [POST if name == "dialogue" else STEER for name in lists]
            data = make_message(mid, "durability %s" % mid, to=", ".join(rcpts),
                                size=rng.choice((600, 2000, 8000, 40000)))
            group = ["MAIL FROM:<%s@example.com>" % tag] + ["RCPT TO:<%s>" % r for r in rcpts]
            conn.send("".join(c + "\r\n" for c in group + ["DATA"]))
            rs = conn.replies(len(group) + 1)
            if [r.code for r in rs] != [250] * len(group) + [354]:
                # Refused before the data: never stored. Start again cleanly.
                if rs[-1].code == 354:
                    raise AssertionError("354 after a refused envelope: %r" % rs)
                conn.cmd("RSET")
                continue
            in_flight = (mid, lists)
            conn.send(harness.dot_stuff(data))
            r = conn.reply()
            ledger.add("acked" if r.code == 250 else "refused", mid, lists)
            in_flight = None
        except (OSError, EOFError, AssertionError) as e:
            if in_flight:
                ledger.add("maybe", *in_flight)
            if conn is not None:
                conn.close()
                conn = None
            if not stop.is_set() and not isinstance(e, (OSError, EOFError)):
                ledger.errors.append(repr(e))
    if conn is not None:
        conn.close()


def run_round(daemon, ledger, rnd):
    stop = threading.Event()
    start_acked = ledger.n_acked()
    threads = [threading.Thread(target=sender, daemon=True,
                                args=(daemon.conf.port, stop, ledger, "r%dc%02d" % (rnd, i),
                                      rnd * 1000 + i))
               for i in range(CLIENTS)]
    for t in threads:
        t.start()
    try:
        wait_for(lambda: ledger.n_acked() - start_acked >= ACKED_PER_ROUND, 120,
                 interval=0.01, what="%d acknowledged messages in round %d"
                 % (ACKED_PER_ROUND, rnd))
        daemon.kill9()  # mid-stream: twenty sessions are in some state right now
    finally:
        stop.set()
        for t in threads:
            t.join(T(60))
    assert not any(t.is_alive() for t in threads), "a sender thread hung"


def test_kill9_keeps_every_acknowledged_message(daemon):
    ledger = Ledger()
    for rnd in range(ROUNDS):
        run_round(daemon, ledger, rnd)
        daemon.start()
    assert not ledger.errors, ledger.errors[:5]

    per_list = {"dialogue": set(), "steering": set()}
    for mid, lists in ledger.acked.items():
        for name in lists:
            per_list[name].add(mid)
    for name, ids in per_list.items():
        harness.wait_archived(daemon.conf, name, ids, timeout=120)
    # Processing is oldest first: once a message sent now is archived, what
    # was stored before the kills has been processed too.
    sentinel = new_msgid("sentinel")
    check(deliver(daemon.conf.port, [POST, STEER], make_message(sentinel, to="%s, %s" % (POST, STEER))), 250)
    harness.wait_archived(daemon.conf, "dialogue", [sentinel], timeout=60)
    harness.wait_archived(daemon.conf, "steering", [sentinel], timeout=60)

    for name in per_list:
        have = harness.archive_ids(daemon.conf, name)
        dup_acked = {m: have.get(m, 0) for m, ls in ledger.acked.items()
                     if name in ls and have.get(m, 0) != 1}
        assert not dup_acked, "%s: acknowledged but archived != once: %r" % (
            name, list(dup_acked.items())[:10])
        dup_maybe = {m: have[m] for m, ls in ledger.maybe.items()
                     if name in ls and have.get(m, 0) > 1}
        assert not dup_maybe, "%s: unacknowledged message archived twice: %r" % (
            name, list(dup_maybe.items())[:10])
        stored_refused = [m for m, ls in ledger.refused.items() if m in have]
        assert not stored_refused, "%s: refused but archived: %r" % (name, stored_refused[:10])
        known = set(ledger.acked) | set(ledger.maybe) | {sentinel}
        phantom = [m for m in have if m not in known]
        assert not phantom, "%s: archived but never sent: %r" % (name, phantom[:10])
        wrong_list = [m for m in have if m in ledger.acked and name not in ledger.acked[m]]
        assert not wrong_list, "%s: archived on a list it was not sent to: %r" % (
            name, wrong_list[:10])

    n = len(ledger.acked)
    assert n >= ROUNDS * ACKED_PER_ROUND
    have = harness.archive_ids(daemon.conf, "dialogue")
    kept = sum(1 for m, ls in ledger.maybe.items() if "dialogue" in ls and m in have)
    print("durability: %d acknowledged, %d reply lost (%d of them stored), %d refused,"
          " %d kills" % (n, len(ledger.maybe), kept, len(ledger.refused), ROUNDS))
