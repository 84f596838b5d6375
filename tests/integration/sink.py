"""An SMTP sink for the delivery tests: the "relay" dialogued sends its
copies to. Not a test file.

Built on aiosmtpd (Debian's python3-aiosmtpd 1.4.3): a Controller on
127.0.0.1 runs the server in a thread. The sink records every transaction
(envelope sender, accepted recipients, content, peer), can answer chosen
recipients with a 4xx or 5xx at RCPT (answer()) or the next messages with
one after their data (refuse_data()), can slow every message down
(data_delay), can be stopped and started again on the same port (relay
down, then up), and waits for copies by condition variable with a deadline:
never a fixed sleep.

aiosmtpd 1.4.3 does not advertise PIPELINING in its EHLO reply, but it
reads commands from a stream in order, so a pipelining client works with it
too. The sink adds "250-PIPELINING" by default; Sink(pipelining=False)
leaves it out so the client's unpipelined path is exercised as well.
"""

import asyncio
import email
import email.header
import email.policy
import re
import threading
import time
from collections import Counter

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP

import harness


def _unfold(value):
    return re.sub(r"\r?\n(?=[ \t])", "", value)


class Transaction:
    """One completed SMTP transaction (the sink answered the data)."""

    def __init__(self, mail_from, rcpt_tos, content, peer, conn):
        self.mail_from = mail_from
        self.rcpt_tos = list(rcpt_tos)
        self.content = content
        self.peer = peer
        self.conn = conn  # a number per SMTP connection
        self.when = time.monotonic()
        self._msg = None
        self._parsed = None

    def message(self):
        """The content parsed with the default (decoding) policy."""
        if self._parsed is None:
            self._parsed = email.message_from_bytes(self.content, policy=email.policy.default)
        return self._parsed

    def raw(self):
        """The content parsed with compat32: header values exactly as sent."""
        if self._msg is None:
            self._msg = email.message_from_bytes(self.content, policy=email.policy.compat32)
        return self._msg

    def headers(self, name):
        """Every value of header NAME, raw but unfolded."""
        return [_unfold(v) for v in (self.raw().get_all(name) or [])]

    def header(self, name):
        """The one value of NAME (unfolded, raw); asserts there is exactly one."""
        vals = self.headers(name)
        assert len(vals) == 1, "expected one %s header, got %r" % (name, vals)
        return vals[0]

    def decoded(self, name):
        """The one value of NAME after RFC 2047 decoding (email.header)."""
        raw = self.header(name)
        return str(email.header.make_header(email.header.decode_header(raw)))

    @property
    def message_id(self):
        vals = self.raw().get_all("Message-ID") or []
        return harness.strip_brackets(_unfold(vals[0])) if vals else None

    def __repr__(self):
        return "Transaction(from=%r, to=%r, %d bytes, conn %d)" % (
            self.mail_from, self.rcpt_tos, len(self.content), self.conn)


class Copy:
    """One recipient's copy: a recipient of a transaction."""

    def __init__(self, rcpt, txn):
        self.rcpt = rcpt
        self.txn = txn

    def __repr__(self):
        return "Copy(%r, %r)" % (self.rcpt, self.txn)


class _Handler:
    def __init__(self, sink):
        self.sink = sink

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        self.sink._greeted(session.peer)
        if self.sink.pipelining:
            responses.insert(len(responses) - 1, "250-PIPELINING")
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        reply = self.sink._rcpt_reply(address)
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.sink.data_delay:
            await asyncio.sleep(self.sink.data_delay)
        reply = self.sink._data_reply(envelope)
        if reply is not None:
            return reply
        self.sink._record(envelope, session)
        return "250 2.0.0 OK queued"


class _Controller(Controller):
    """A Controller that remembers its connections so stop() closes them
    (asyncio's Server.close() leaves accepted connections open)."""

    def __init__(self, sink, *args, **kw):
        super().__init__(*args, **kw)
        self.sink = sink
        self.protocols = []

    def factory(self):
        smtp = SMTP(self.handler, **self.SMTP_kwargs)
        self.protocols.append(smtp)
        return smtp

    def stop(self, no_assert=False):
        def close_all():
            for p in self.protocols:
                t = getattr(p, "transport", None)
                if t is not None:
                    t.abort()
        if self._thread is not None:
            done = threading.Event()
            self.loop.call_soon_threadsafe(lambda: (close_all(), done.set()))
            done.wait(5)
        super().stop(no_assert)


class Sink:
    """An SMTP sink on 127.0.0.1:PORT (a free port unless given).

    Created stopped: call start(). The port stays the same across
    stop()/start(), so a dialogued configured with relay_port=sink.port sees
    the relay go down and come back."""

    def __init__(self, port=None, pipelining=True, data_delay=0.0):
        self.port = port or harness.free_port()
        self.pipelining = pipelining
        self.data_delay = data_delay
        self._cond = threading.Condition()
        self._txns = []
        self._rejected = []  # (address, reply)
        self._replies = {}  # lowercased address -> reply line
        self._data_queue = []  # replies for the next DATA ends, instead of 250
        self._data_refused = []  # (rcpt_tos, reply) of messages refused after the data
        self._connections = 0
        self._peers = []  # (peer, time) of every EHLO
        self._ctl = None

    # -- lifecycle

    def start(self):
        assert self._ctl is None, "sink already running"
        # SMTPUTF8 on (as Controller does by default); no size limit, as a relay
        # for a list would have a large one; a generous line timeout.
        ctl = _Controller(self, _Handler(self), hostname="127.0.0.1", port=self.port,
                          enable_SMTPUTF8=True, data_size_limit=None, timeout=300,
                          ready_timeout=harness.T(10))
        ctl.start()
        self._ctl = ctl
        return self

    def stop(self):
        if self._ctl is not None:
            ctl, self._ctl = self._ctl, None
            ctl.stop()

    @property
    def running(self):
        return self._ctl is not None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def relay(self):
        return "127.0.0.1:%d" % self.port

    # -- behaviour

    def answer(self, address, reply):
        """Answer RCPT TO:<ADDRESS> with REPLY (e.g. "451 4.3.0 later")."""
        with self._cond:
            self._replies[address.lower()] = reply

    def clear(self, address=None):
        """Stop answering ADDRESS (or everyone) specially."""
        with self._cond:
            if address is None:
                self._replies.clear()
            else:
                self._replies.pop(address.lower(), None)

    def refuse_data(self, reply, times=1):
        """Answer the next TIMES messages (after their data) with REPLY
        instead of 250; they are not recorded as transactions."""
        with self._cond:
            self._data_queue.extend([reply] * times)

    def _data_reply(self, envelope):
        with self._cond:
            if not self._data_queue:
                return None
            reply = self._data_queue.pop(0)
            self._data_refused.append((list(envelope.rcpt_tos), reply))
            self._cond.notify_all()
            return reply

    def data_refused(self):
        """Messages refused after their data: [(rcpt_tos, reply)]."""
        with self._cond:
            return list(self._data_refused)

    def data_refusals_left(self):
        with self._cond:
            return len(self._data_queue)

    def _rcpt_reply(self, address):
        with self._cond:
            reply = self._replies.get(address.lower())
            if reply is not None:
                self._rejected.append((address, reply))
                self._cond.notify_all()
            return reply

    def _greeted(self, peer):
        with self._cond:
            self._peers.append((peer, time.monotonic()))

    def _record(self, envelope, session):
        content = envelope.content
        if isinstance(content, str):
            content = content.encode("utf-8", "surrogateescape")
        with self._cond:
            conn = getattr(session, "_sink_conn", None)
            if conn is None:
                self._connections += 1
                conn = session._sink_conn = self._connections
            # aiosmtpd keeps the null sender as "<>": record it as "".
            mail_from = "" if envelope.mail_from in ("<>", None) else envelope.mail_from
            self._txns.append(Transaction(mail_from, envelope.rcpt_tos, content,
                                          session.peer, conn))
            self._cond.notify_all()

    # -- observation

    def transactions(self, pred=None):
        with self._cond:
            txns = list(self._txns)
        return [t for t in txns if pred is None or pred(t)]

    def rejected(self, address=None):
        """RCPTs the sink refused: [(address, reply)], optionally for ADDRESS."""
        with self._cond:
            rej = list(self._rejected)
        return [r for r in rej if address is None or r[0].lower() == address.lower()]

    def copies(self, msgid=None):
        """Every recipient's copy, optionally only of Message-ID MSGID."""
        want = harness.strip_brackets(msgid) if msgid else None
        out = []
        for t in self.transactions():
            if want is not None and t.message_id != want:
                continue
            out.extend(Copy(r, t) for r in t.rcpt_tos)
        return out

    def recipients(self, msgid=None):
        """Counter: recipient (lowercased) -> copies received."""
        return Counter(c.rcpt.lower() for c in self.copies(msgid))

    def wait(self, predicate, timeout=30, what="condition"):
        """Until PREDICATE() is truthy (re-checked whenever something
        arrives, and at least every 0.1 s); returns its value."""
        deadline = time.monotonic() + harness.T(timeout)
        with self._cond:
            while True:
                self._cond.release()
                try:
                    v = predicate()
                finally:
                    self._cond.acquire()
                if v:
                    return v
                left = deadline - time.monotonic()
                if left <= 0:
                    raise harness.Timeout(
                        "sink: timed out after %.1fs waiting for %s; it has %d "
                        "transaction(s), %d refused RCPT(s): %s" % (
                            harness.T(timeout), what, len(self._txns), len(self._rejected),
                            harness._short(self._txns[-5:])))
                self._cond.wait(min(left, 0.1))

    def wait_copies(self, n, msgid=None, timeout=30):
        """Until at least N copies (of MSGID, if given) arrived; returns them."""
        def enough():
            c = self.copies(msgid)
            return c if len(c) >= n else None
        return self.wait(enough, timeout, what="%d cop%s%s" % (
            n, "y" if n == 1 else "ies", " of <%s>" % msgid if msgid else ""))

    def wait_rejected(self, address, n=1, timeout=30):
        return self.wait(lambda: len(self.rejected(address)) >= n, timeout,
                         what="%d refused RCPT(s) of %s" % (n, address))

    def peers(self):
        """The peers (host, port) of every connection that sent EHLO so far."""
        with self._cond:
            return {p for p, _ in self._peers}

    @property
    def connections(self):
        with self._cond:
            return self._connections
