"""Shared helpers for the integration tests: a real dialogued on free ports,
its config, dialoguectl, a byte-exact SMTP client and polling.

Not a test file. Nothing here synchronises with sleeps: wait_for() polls a
condition until a deadline, so every wait can fail with a message.
"""

import json
import os
import re
import signal
import socket
import ssl
import subprocess
import time
import uuid
from pathlib import Path

SRC = Path(os.environ.get("DIALOGUE_SRC", Path(__file__).resolve().parents[2]))
SANITIZE = os.environ.get("DIALOGUE_SANITIZE", "").strip().upper() in ("ON", "1", "TRUE", "YES")
# ASan/UBSan builds run several times slower; widen every deadline.
SCALE = 5.0 if SANITIZE else 1.0

HOSTNAME = "lists.example.org"
LISTS = ("dialogue", "steering")
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                   "SUMMARY: UndefinedBehaviorSanitizer", "ThreadSanitizer")


def T(seconds):
    """A deadline in seconds, widened under the sanitizer build."""
    return seconds * SCALE


def _find_binary(env, name):
    path = os.environ.get(env)
    if path:
        return path
    # Run by hand, outside ctest: take the usual build directory.
    for d in ("build", "build-itest"):
        cand = SRC / d / name
        if cand.exists():
            return str(cand)
    return None


DIALOGUED = _find_binary("DIALOGUED", "dialogued")
DIALOGUECTL = _find_binary("DIALOGUECTL", "dialoguectl")


class Timeout(AssertionError):
    pass


def wait_for(predicate, timeout=10, interval=0.05, what=None, ignore=()):
    """Poll PREDICATE until it returns something truthy and return that.
    TIMEOUT is scaled by T(). Exceptions listed in IGNORE count as "not yet".
    Raises Timeout (an AssertionError) naming WHAT and the last value."""
    deadline = time.monotonic() + T(timeout)
    last = None
    while True:
        try:
            last = predicate()
            if last:
                return last
        except ignore as e:  # noqa: PERF203 - polling
            last = e
        if time.monotonic() >= deadline:
            raise Timeout("timed out after %.1fs waiting for %s (last: %r)"
                          % (T(timeout), what or getattr(predicate, "__name__", "condition"),
                             _short(last)))
        time.sleep(interval)


def _short(v, n=300):
    s = repr(v)
    return s if len(s) <= n else s[:n] + "..."


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def new_msgid(tag="t"):
    return "%s.%s@test.example" % (tag, uuid.uuid4().hex)


# ---------------------------------------------------------------- config

DEFAULT_SERVER = {
    "hostname": HOSTNAME,
    "listen": None,  # filled with 127.0.0.1:<port>
    "database": "dialogue.db",
    "secret_file": "secret",
    "max_message_size": "25M",
    "max_connections": "500",
    "tls_certificate": "",
    "tls_key": "",
}

DEFAULT_DELIVERY = {
    "relay": None,  # filled with a port nobody listens on
    "verp": "yes",
    "max_recipients": "50",
    "connections": "4",
    "retry": "5m, 15m, 1h, 4h",
    "give_up_after": "5d",
}

# Both lists of the shipped config, but open to posts so that whatever the
# tests send is archived rather than held.
DEFAULT_LISTS = {
    "dialogue": {
        "address": "dialogue@" + HOSTNAME,
        "title": "Dialogue on Internet Cooperation Evolution",
        "subscribe_policy": "confirm",
        "post_policy": "open",
        "nonmember_action": "accept",
        "archive": "public",
        "subject_prefix": "[Dialogue]",
        "moderators": "mod@example.org",
        "max_members": "0",
        "stakeholder_groups": "",
        "term": "0",
    },
    "steering": {
        "address": "steering@" + HOSTNAME,
        "title": "Dialogue Steering Group",
        "subscribe_policy": "closed",
        "post_policy": "open",
        "nonmember_action": "accept",
        "archive": "public",
        "subject_prefix": "[Steering]",
        "moderators": "mod@example.org",
        "max_members": "25",
        "stakeholder_groups": "technical, civil-society, business, government, academia, other",
        "term": "730d",
    },
}


class Conf:
    """A written config: .path (usable as os.PathLike), .dir, .port (SMTP),
    .text, and the arguments that made it so it can be rewritten."""

    def __init__(self, path, port, text, params):
        self.path = Path(path)
        self.dir = self.path.parent
        self.port = port
        self.text = text
        self.params = params

    def __fspath__(self):
        return str(self.path)

    def __str__(self):
        return str(self.path)

    def line_of(self, needle):
        """1-based number of the first line containing NEEDLE."""
        for i, line in enumerate(self.text.split("\n"), 1):
            if needle in line:
                return i
        raise KeyError(needle)

    def rewrite(self, **overrides):
        """Write the same config again with OVERRIDES merged in (same ports)."""
        params = dict(self.params)
        params.update(overrides)
        new = write_config(self.dir, **params)
        self.text, self.params = new.text, new.params
        return self


def _section(name, kv):
    out = ["[%s]" % name]
    for k, v in kv.items():
        if v is None:
            continue
        out.append("%s = %s" % (k, v))
    return out


def render_config(server, delivery, http, lists, extra=""):
    lines = ["# written by tests/integration/harness.py"]
    lines += _section("server", server)
    lines.append("")
    lines += _section("delivery", delivery)
    lines.append("")
    if http is not None:
        lines += _section("http", http)
        lines.append("")
    for name, kv in lists.items():
        if kv is None:
            continue
        lines += _section("list %s" % name, kv)
        lines.append("")
    if extra:
        lines.append(extra.rstrip("\n"))
    return "\n".join(lines) + "\n"


def write_config(directory, filename="dialogue.conf", port=None, relay_port=None,
                 lists=None, delivery=None, http=None, extra="", **server):
    """Write a full config into DIRECTORY and return a Conf.

    Keyword arguments set [server] keys (None drops a key). LISTS maps a list
    name to a dict merged over the defaults (None drops that list; an unknown
    name adds a list at HOSTNAME). DELIVERY merges into [delivery]. HTTP is a
    dict for an [http] section (omitted by default). EXTRA is appended raw."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    params = dict(port=port, relay_port=relay_port, lists=lists, delivery=delivery,
                  http=http, extra=extra, filename=filename, **server)
    port = port or free_port()
    relay_port = relay_port or free_port()
    params["port"], params["relay_port"] = port, relay_port

    srv = dict(DEFAULT_SERVER)
    srv["listen"] = "127.0.0.1:%d" % port
    srv.update(server)
    dlv = dict(DEFAULT_DELIVERY)
    dlv["relay"] = "127.0.0.1:%d" % relay_port
    dlv.update(delivery or {})
    lst = {k: dict(v) for k, v in DEFAULT_LISTS.items()}
    for name, kv in (lists or {}).items():
        if kv is None:
            lst[name] = None
            continue
        base = lst.get(name) or {"address": "%s@%s" % (name, HOSTNAME), "post_policy": "open",
                                 "nonmember_action": "accept", "archive": "public"}
        base.update(kv)
        lst[name] = base
    text = render_config(srv, dlv, http, lst, extra)
    path = directory / filename
    path.write_text(text)
    return Conf(path, port, text, params)


def make_self_signed_cert(directory, cn=HOSTNAME):
    """A throwaway certificate and key made with openssl(1); returns (cert, key)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
                    "-subj", "/CN=" + cn, "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    return cert, key


def insecure_tls_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


# ---------------------------------------------------------------- daemon

class Daemon:
    """One dialogued process on a Conf. stderr and stdout go to LOG (appended
    across restarts) so failures can show what the daemon said."""

    def __init__(self, conf, binary=None, args=()):
        self.conf = conf
        self.binary = binary or DIALOGUED
        self.args = list(args)
        self.log_path = Path(conf.dir) / "dialogued.log"
        self.proc = None
        self.starts = 0

    # -- lifecycle

    def start(self, timeout=15):
        assert self.binary, "DIALOGUED is not set and no build directory has dialogued"
        assert not self.running(), "already running"
        env = dict(os.environ)
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
        env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
        log = open(self.log_path, "ab")
        log.write(b"---- harness: start #%d ----\n" % (self.starts + 1))
        log.flush()
        try:
            self.proc = subprocess.Popen([self.binary, "-c", str(self.conf.path)] + self.args,
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         env=env, cwd=str(self.conf.dir))
        finally:
            log.close()
        self.starts += 1
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout=15):
        """Until the SMTP port answers 220; fails early when the process dies."""
        def ready():
            if self.proc.poll() is not None:
                raise AssertionError("dialogued exited with %s during start-up:\n%s"
                                     % (self.proc.returncode, self.log_tail()))
            try:
                c = SMTPClient(self.conf.port, timeout=T(5))
            except OSError:
                return False
            try:
                r = c.reply()
                assert r.code == 220, "banner was %r" % (r,)
                c.cmd("QUIT")
                return True
            except (OSError, EOFError):
                return False
            finally:
                c.close()
        wait_for(ready, timeout, what="dialogued to answer 220 on port %d" % self.conf.port)

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self):
        return self.proc.pid

    def send_signal(self, sig):
        self.proc.send_signal(sig)

    def hup(self):
        self.proc.send_signal(signal.SIGHUP)

    def stop(self, sig=signal.SIGTERM, timeout=10):
        """SIGTERM (or SIG); the daemon must exit 0 within TIMEOUT seconds
        (plus a little slack: a daemon that gives stalled sessions exactly
        10 s exits just after that). Returns the seconds it took."""
        assert self.running(), "dialogued is not running (exit %r):\n%s" % (
            self.proc and self.proc.returncode, self.log_tail())
        start = time.monotonic()
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(T(timeout) + 3)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("dialogued did not exit within %ss of %s:\n%s"
                                 % (T(timeout), signal.Signals(sig).name, self.log_tail()))
        elapsed = time.monotonic() - start
        assert rc == 0, "dialogued exited %d after %s:\n%s" % (
            rc, signal.Signals(sig).name, self.log_tail())
        self.check_sanitizer()
        return elapsed

    def kill9(self):
        self.proc.kill()
        self.proc.wait()

    def restart(self, timeout=15):
        if self.running():
            self.stop()
        return self.start(timeout)

    def cleanup(self):
        """Test teardown: make sure nothing is left running."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    # -- observation

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, n=60):
        return "\n".join(self.log().splitlines()[-n:])

    def wait_log(self, pattern, timeout=10, start=0):
        """Until the log (from byte offset START) matches regex PATTERN."""
        rx = re.compile(pattern)

        def found():
            return rx.search(self.log()[start:])
        return wait_for(found, timeout, what="log line /%s/" % pattern)

    def check_sanitizer(self):
        text = self.log()
        for mark in SANITIZER_MARKS:
            assert mark not in text, "sanitizer report in dialogued log:\n%s" % self.log_tail(120)

    def proc_status(self, key):
        """A /proc/PID/status value in KiB (VmRSS, VmHWM, ...)."""
        with open("/proc/%d/status" % self.pid) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
        raise KeyError(key)

    # -- conveniences

    def smtp(self, timeout=10):
        return SMTPClient(self.conf.port, timeout=T(timeout))

    def ctl(self, *args, **kw):
        return ctl(self.conf, *args, **kw)


# ---------------------------------------------------------------- dialoguectl

class CtlError(Exception):
    def __init__(self, rc, stderr, args):
        super().__init__("dialoguectl %s: exit %d: %s" % (" ".join(args), rc, stderr.strip()))
        self.rc = rc
        self.stderr = stderr


class CtlBusy(CtlError):
    pass


def ctl(conf, *args, timeout=60):
    """Run dialoguectl -c CONF --json ARGS and return the parsed JSON.
    Raises CtlBusy on exit 75 (database busy) and CtlError on other failures."""
    assert DIALOGUECTL, "DIALOGUECTL is not set and no build directory has dialoguectl"
    args = [str(a) for a in args]
    p = subprocess.run([DIALOGUECTL, "-c", str(conf), "--json"] + args,
                       capture_output=True, timeout=T(timeout))
    if p.returncode != 0:
        cls = CtlBusy if p.returncode == 75 else CtlError
        raise cls(p.returncode, p.stderr.decode(errors="replace"), args)
    return json.loads(p.stdout)


def ctl_ok(conf, *args, timeout=30):
    """dialoguectl --json ARGS, retried while the database is busy (the
    daemon may be committing); any other failure raises CtlError."""
    box = []

    def attempt():
        box[:] = [ctl(conf, *args)]
        return True
    wait_for(attempt, timeout, interval=0.1, ignore=(CtlBusy,),
             what="dialoguectl " + " ".join(map(str, args)))
    return box[0]


def strip_brackets(mid):
    mid = (mid or "").strip()
    if mid.startswith("<") and mid.endswith(">"):
        mid = mid[1:-1]
    return mid


def archive_list(conf, lst):
    """Every archived post of LST (retrying while the database is busy)."""
    box = []

    def attempt():
        box[:] = [ctl(conf, "archive", "list", lst, "--limit", "1000000")]
        return True
    wait_for(attempt, 30, interval=0.1, what="dialoguectl archive list " + lst,
             ignore=(CtlBusy,))
    return box[0]


def archive_ids(conf, lst):
    """{message_id: count} of LST's archive, Message-IDs without <>."""
    counts = {}
    for e in archive_list(conf, lst):
        mid = strip_brackets(e["message_id"])
        counts[mid] = counts.get(mid, 0) + 1
    return counts


def wait_archived(conf, lst, msgids, timeout=30):
    """Until every Message-ID in MSGIDS is in LST's archive; returns the counts."""
    want = {strip_brackets(m) for m in msgids}

    def done():
        have = archive_ids(conf, lst)
        missing = want - set(have)
        done.missing = missing
        return have if not missing else None
    done.missing = want
    try:
        return wait_for(done, timeout, interval=0.2, what="%d message(s) archived in %s"
                        % (len(want), lst))
    except Timeout as e:
        raise Timeout("%s; still missing %d: %s" % (e, len(done.missing),
                                                     sorted(done.missing)[:5])) from None


# ---------------------------------------------------------------- SMTP

def make_message(msgid=None, subject="test message", frm="alice@example.com",
                 to="dialogue@" + HOSTNAME, body="Hello.\r\n", size=None, headers=()):
    """An RFC 5322 message as bytes with CRLF line ends. SIZE pads the body
    with 70-column lines up to about that many octets."""
    msgid = msgid or new_msgid()
    hdr = ["From: %s" % frm, "To: %s" % to, "Subject: %s" % subject,
           "Date: Mon, 30 Nov 2026 06:42:11 +0000", "Message-ID: <%s>" % msgid,
           "MIME-Version: 1.0", "Content-Type: text/plain; charset=us-ascii"]
    hdr += list(headers)
    text = "\r\n".join(hdr) + "\r\n\r\n" + body
    if not text.endswith("\r\n"):
        text += "\r\n"
    data = text.encode()
    if size is not None:
        line = b"x" * 68 + b"\r\n"
        need = max(0, size - len(data))
        data += line * (need // len(line)) + b"y" * max(0, need % len(line) - 2) + b"\r\n"
    return data


def dot_stuff(data):
    """DATA payload: dot-stuffed, CRLF-terminated, with the final '.' line."""
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    lines = data.split(b"\r\n")
    out = b"\r\n".join((b"." + line) if line.startswith(b".") else line for line in lines)
    return out + b".\r\n"


_ENH = re.compile(r"^([245])\.(\d{1,3})\.(\d{1,3})\b")


class Reply:
    def __init__(self, code, lines):
        self.code = code
        self.lines = lines  # texts after "NNN-" / "NNN "

    @property
    def text(self):
        return "\n".join(self.lines)

    @property
    def enh(self):
        """The enhanced status code of the first line ("5.5.1"), or None."""
        m = _ENH.match(self.lines[0]) if self.lines else None
        return "%s.%s.%s" % m.groups() if m else None

    def __repr__(self):
        return "Reply(%d, %r)" % (self.code, self.lines)


class SMTPClient:
    """A byte-exact SMTP client over one socket: send() writes what it is
    given, reply() reads exactly one (possibly multi-line) reply."""

    def __init__(self, port, host="127.0.0.1", timeout=10):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""
        self.timeout = timeout

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError("connection closed by dialogued")
        self.buf += chunk

    def readline(self):
        while b"\r\n" not in self.buf:
            if len(self.buf) > 65536:
                raise AssertionError("reply line without CRLF: %r" % self.buf[:200])
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def reply(self):
        lines, first = [], None
        while True:
            line = self.readline().decode("ascii", errors="replace")
            assert re.match(r"^[2-5]\d\d([ -]|$)", line), "malformed reply line %r" % line
            code = int(line[:3])
            assert first is None or code == first, "code changed inside a reply: %r" % line
            first = code
            lines.append(line[4:])
            if len(line) == 3 or line[3] == " ":
                return Reply(code, lines)

    def replies(self, n):
        return [self.reply() for _ in range(n)]

    def cmd(self, line):
        """Send LINE + CRLF and read one reply."""
        if isinstance(line, str):
            line = line.encode()
        self.send(line + b"\r\n")
        return self.reply()

    def expect(self, line, code, enh=None):
        r = self.cmd(line)
        check(r, code, enh, line)
        return r

    def ehlo(self, name="client.example.com"):
        r = self.cmd("EHLO " + name)
        check(r, 250, None, "EHLO")
        return r

    def pending(self):
        return self.buf

    def wait_closed(self, timeout=10):
        """True when the peer closes (EOF or reset) within TIMEOUT seconds;
        any bytes read meanwhile are kept in the buffer."""
        self.sock.settimeout(T(timeout))
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False
        finally:
            self.sock.settimeout(self.timeout)

    def starttls(self, ctx=None, server_hostname=HOSTNAME):
        """Wrap the socket in TLS (after a 220 to STARTTLS)."""
        assert not self.buf, "bytes after the STARTTLS reply: %r" % self.buf
        ctx = ctx or insecure_tls_context()
        self.sock = ctx.wrap_socket(self.sock, server_hostname=server_hostname)

    def transaction(self, mail_from, rcpts, data, pipelined=True):
        """MAIL, RCPT..., DATA, message. Returns the final reply; asserts the
        envelope replies were 250/354."""
        group = ["MAIL FROM:<%s>" % mail_from] + ["RCPT TO:<%s>" % r for r in rcpts] + ["DATA"]
        if pipelined:
            self.send("".join(c + "\r\n" for c in group))
            rs = self.replies(len(group))
        else:
            rs = [self.cmd(c) for c in group]
        for c, r in zip(group[:-1], rs[:-1]):
            check(r, 250, None, c)
        check(rs[-1], 354, None, "DATA")
        self.send(dot_stuff(data))
        return self.reply()


def check(reply, code, enh=None, what=""):
    assert reply.code == code, "%s: expected %d, got %r" % (what, code, reply)
    if enh is not None:
        assert reply.enh == enh, "%s: expected %d %s, got %r" % (what, code, enh, reply)


def deliver(port, rcpts, data, mail_from="alice@example.com", timeout=30):
    """One whole session: EHLO, transaction, QUIT. Returns the final reply."""
    with SMTPClient(port, timeout=T(timeout)) as c:
        check(c.reply(), 220, None, "banner")
        c.ehlo()
        r = c.transaction(mail_from, rcpts, data)
        c.cmd("QUIT")
        return r


# ---------------------------------------------------------------- HTTP (the website)
#
# The website dialogued serves over HTTP ([http] listen). Requests go through
# http.client (one connection per request, nothing cached or retried) or, for
# what http.client would hide or refuse (HEAD bodies, garbage, oversized
# requests), through a raw socket.

import html as _html  # noqa: E402
import html.parser as _html_parser  # noqa: E402
import http.client as _http_client  # noqa: E402
import urllib.parse as _urlparse  # noqa: E402

CSP = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'"
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


def web_config(directory, http_port=None, base_url=None, http=None, **kw):
    """write_config() with an [http] section listening on a free port of
    127.0.0.1 (base_url the same unless given) and, when the source tree has
    them, the shipped templates of config/web. The Conf gains .http_port
    and .base_url (no trailing slash)."""
    http_port = http_port or free_port()
    sec = {"listen": "127.0.0.1:%d" % http_port,
           "base_url": base_url or "http://127.0.0.1:%d" % http_port}
    web = SRC / "config" / "web"
    if web.is_dir():
        sec["web"] = str(web)
    sec.update(http or {})
    conf = write_config(directory, http=sec, **kw)
    conf.http_port = http_port
    conf.base_url = sec["base_url"].rstrip("/")
    return conf


class WebResponse:
    """status, reason, headers (an http.client.HTTPMessage: case-insensitive,
    get_all() for repeats), body (bytes)."""

    def __init__(self, status, reason, headers, body, method="GET", path=""):
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body
        self.method = method
        self.path = path

    def header(self, name, default=None):
        return self.headers.get(name, default)

    @property
    def content_type(self):
        return (self.headers.get("Content-Type") or "").strip()

    @property
    def text(self):
        """The body as UTF-8 (strict: a page that is not UTF-8 fails here)."""
        return self.body.decode("utf-8")

    def __repr__(self):
        return "<%s %s: %d %s, %d bytes: %r>" % (self.method, self.path, self.status,
                                                 self.reason, len(self.body),
                                                 self.body[:200])


def http_request(port, method, path, body=None, headers=None, timeout=10, host="127.0.0.1"):
    """One request on a fresh connection; returns a WebResponse. BODY is bytes
    or str; HEADERS a dict (Host is added by http.client)."""
    if isinstance(body, str):
        body = body.encode()
    conn = _http_client.HTTPConnection(host, port, timeout=T(timeout))
    try:
        conn.request(method, path, body=body, headers=dict(headers or {}))
        r = conn.getresponse()
        data = r.read()
        return WebResponse(r.status, r.reason, r.headers, data, method, path)
    finally:
        conn.close()


def http_get(port, path, headers=None, **kw):
    return http_request(port, "GET", path, headers=headers, **kw)


def http_post(port, path, fields=None, body=None, content_type="application/x-www-form-urlencoded",
              headers=None, **kw):
    """POST FIELDS (a dict or list of pairs, urlencoded) or a raw BODY."""
    if fields is not None:
        body = _urlparse.urlencode(fields)
    h = {"Content-Type": content_type} if content_type else {}
    h.update(headers or {})
    return http_request(port, "POST", path, body=body if body is not None else b"", headers=h, **kw)


class RawHTTPResponse:
    """What came back on a raw socket: status (None if nothing parseable),
    the header block (dict of lowercased name -> [values]), the bytes after
    it, and everything as received."""

    def __init__(self, data):
        self.raw = data
        self.status = None
        self.headers = {}
        self.body = b""
        head, sep, rest = data.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        m = re.match(rb"^HTTP/1\.[01] (\d{3})", lines[0]) if lines and lines[0] else None
        if m:
            self.status = int(m.group(1))
            for line in lines[1:]:
                k, _, v = line.partition(b":")
                self.headers.setdefault(k.strip().lower().decode("latin-1"), []).append(
                    v.strip().decode("latin-1"))
            self.body = rest

    def header(self, name):
        vals = self.headers.get(name.lower()) or []
        return vals[0] if vals else None

    def __repr__(self):
        return "RawHTTPResponse(%r, %d bytes: %r)" % (self.status, len(self.raw), self.raw[:300])


def http_raw(port, data, timeout=10, host="127.0.0.1", read_until_close=True):
    """Send DATA (bytes) on a fresh connection and read until the server
    closes it (or TIMEOUT passes). A reset while sending or reading ends the
    exchange; what arrived until then is parsed. Returns RawHTTPResponse."""
    got = b""
    with socket.create_connection((host, port), timeout=T(timeout)) as s:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        deadline = time.monotonic() + T(timeout)
        try:
            while time.monotonic() < deadline:
                s.settimeout(max(0.05, deadline - time.monotonic()))
                chunk = s.recv(65536)
                if not chunk:
                    break
                got += chunk
                if not read_until_close and b"\r\n\r\n" in got:
                    break
        except (ConnectionResetError, socket.timeout):
            pass
    return RawHTTPResponse(got)


def wait_http(port, timeout=15, proc=None):
    """Until something answers HTTP on PORT (any status); returns it."""
    def up():
        if proc is not None and proc.poll() is not None:
            raise AssertionError("dialogued exited with %s" % proc.returncode)
        try:
            return http_get(port, "/style.css", timeout=5)
        except (OSError, _http_client.HTTPException):
            return None
    return wait_for(up, timeout, interval=0.1, what="HTTP on 127.0.0.1:%d" % port)


def security_header_problems(r):
    """The security headers every response must carry, as a list of what is
    wrong with R (a WebResponse or RawHTTPResponse); empty when all is well."""
    out = []
    for k, v in SECURITY_HEADERS.items():
        got = r.header(k)
        if got != v:
            out.append("%s: %r (want %r)" % (k, got, v))
    return out


def assert_security_headers(r):
    bad = security_header_problems(r)
    assert not bad, "%r: %s" % (r, "; ".join(bad))


# ---- HTML reading (html.parser only)

class PageParser(_html_parser.HTMLParser):
    """Walks a page once and keeps what tests look at: every start tag with
    its attributes and the stack of open elements, links (href, rel, text,
    depth in lists), forms with their fields, and the text (with the stack
    of element names it sits in)."""

    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta",
            "param", "source", "track", "wbr"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags = []       # (tag, {attr: value}, [open tags])
        self.links = []      # dict(href, rel, text, list_depth, classes of open elements)
        self.forms = []      # dict(action, method, fields {name: value}, inputs [...], buttons)
        self.texts = []      # (text, [open tags with classes])
        self.stack = []      # [(tag, attrs)]
        self._a = None
        self._form = None
        self._select = None
        self._textarea = None
        self.list_depth = 0

    def handle_starttag(self, tag, attrs):
        a = {}
        for k, v in attrs:
            a.setdefault(k, v if v is not None else "")
        self.tags.append((tag, a, [t for t, _ in self.stack]))
        if tag in ("ul", "ol"):
            self.list_depth += 1
        if tag == "a":
            # A reply may be nested in <ul>s or indented by a dN class on
            # its <li>: either way its depth is deeper than its parent's.
            indent = 0
            for t, ta in reversed(self.stack):
                m = re.fullmatch(r"d(\d+)", (ta.get("class") or "").strip()) if t == "li" else None
                if m:
                    indent = int(m.group(1))
                    break
            self._a = {"href": a.get("href"), "rel": (a.get("rel") or "").split(),
                       "text": "", "list_depth": self.list_depth * 100 + indent, "attrs": a}
            self.links.append(self._a)
        elif tag == "link":
            self.links.append({"href": a.get("href"), "rel": (a.get("rel") or "").split(),
                               "text": "", "list_depth": self.list_depth, "attrs": a,
                               "tag": "link"})
        elif tag == "form":
            self._form = {"action": a.get("action"), "method": (a.get("method") or "get").lower(),
                          "enctype": a.get("enctype"), "fields": {}, "inputs": [], "selects": {},
                          "buttons": []}
            self.forms.append(self._form)
        elif tag == "input" and self._form is not None:
            self._form["inputs"].append(a)
            typ = (a.get("type") or "text").lower()
            if typ in ("submit", "button", "image"):
                self._form["buttons"].append(a)
                if a.get("name"):
                    self._form.setdefault("submit_fields", {})[a["name"]] = a.get("value", "")
            elif a.get("name") and (typ not in ("checkbox", "radio") or "checked" in a):
                self._form["fields"][a["name"]] = a.get("value", "")
        elif tag == "button" and self._form is not None:
            self._form["buttons"].append(a)
            if a.get("name"):
                self._form.setdefault("submit_fields", {})[a["name"]] = a.get("value", "")
        elif tag == "select" and self._form is not None:
            self._select = a.get("name")
            self._form["selects"][self._select] = []
            self._form["fields"].setdefault(self._select, "")
        elif tag == "option" and self._form is not None and self._select is not None:
            self._form["selects"][self._select].append(a.get("value"))
        elif tag == "textarea" and self._form is not None:
            self._textarea = a.get("name")
            self._form["fields"][self._textarea] = ""
        if tag not in self.VOID:
            self.stack.append((tag, a))

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in self.VOID and self.stack and self.stack[-1][0] == tag:
            self.stack.pop()

    def handle_endtag(self, tag):
        if tag in ("ul", "ol"):
            self.list_depth -= 1
        if tag == "a":
            self._a = None
        elif tag == "form":
            self._form = None
        elif tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None
        # Close up to the matching open element (tolerating omitted end tags).
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i][0] == tag:
                del self.stack[i:]
                break

    def handle_data(self, data):
        if self._a is not None:
            self._a["text"] += data
        if self._textarea is not None and self._form is not None:
            self._form["fields"][self._textarea] += data
        self.texts.append((data, [(t, (a.get("class") or "").split()) for t, a in self.stack]))

    def text(self):
        return "".join(t for t, _ in self.texts)

    def text_in(self, tag, cls=None):
        """Text inside elements TAG (with class CLS, if given)."""
        return "".join(t for t, st in self.texts
                       if any(n == tag and (cls is None or cls in c) for n, c in st))


def parse_page(body):
    """A PageParser fed BODY (bytes as UTF-8, strictly, or str)."""
    if isinstance(body, bytes):
        body = body.decode("utf-8")
    p = PageParser()
    p.feed(body)
    p.close()
    return p


def links_to(page, pattern):
    """Links of PAGE whose href matches regex PATTERN (re.search)."""
    rx = re.compile(pattern)
    return [l for l in page.links if l.get("href") and rx.search(l["href"])]


def rel_link(page, rel):
    """The href of the (first) <a> or <link> with REL in its rel, or None."""
    for l in page.links:
        if rel in l["rel"] and l.get("href"):
            return l["href"]
    return None


def resolve(base_path, href):
    """HREF resolved against BASE_PATH, as a path with query (no scheme/host)."""
    u = _urlparse.urlsplit(_urlparse.urljoin("http://x" + base_path, _html.unescape(href)))
    return u.path + ("?" + u.query if u.query else "")


# ---- posting into the archive

def post_messages(port, messages, rcpt="dialogue@" + HOSTNAME, mail_from="alice@example.com"):
    """Submit each of MESSAGES (bytes, or (mail_from, rcpt, bytes)) in one
    SMTP session; every one must be accepted with 250."""
    with SMTPClient(port, timeout=T(60)) as c:
        check(c.reply(), 220, None, "banner")
        c.ehlo()
        for m in messages:
            frm, to, data = (mail_from, rcpt, m) if isinstance(m, bytes) else m
            r = c.transaction(frm, [to] if isinstance(to, str) else to, data)
            check(r, 250, None, "DATA of a post")
        c.cmd("QUIT")


def archive_by_msgid(conf, lst):
    """{Message-ID without <>: archive entry} of LST."""
    return {strip_brackets(e["message_id"]): e for e in archive_list(conf, lst)}
