"""The website against a hostile archive: mail whose subjects, bodies,
display names, encodings, HTML parts and attachment names carry markup,
script URLs and broken bytes, posted over SMTP into a real dialogued.

Every page that shows them (/, /L/, each /L/m/ID, search results, the
month page, the feed, error pages that echo what was asked) is read with
html.parser (xml.etree for the feed) and walked tag by tag: no <script>,
no <img> but our own, no on* attribute, no javascript:/data: URL, every
page valid UTF-8, and the payloads present as text where they are shown.
Attachments come back as application/octet-stream attachments whatever
they claim to be, and their names cannot inject response headers.
"""

import base64
import email.utils
import re
import sys
import urllib.parse
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402
from harness import (assert_security_headers, http_get, http_post, parse_page,  # noqa: E402
                     resolve, wait_for)
from sink import Sink  # noqa: E402

DOMAIN = harness.HOSTNAME
LIST = "dialogue"
WORD = "hostilecorpus"
ATOM_NS = "http://www.w3.org/2005/Atom"
XHTML_NS = "http://www.w3.org/1999/xhtml"

SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'
JSURL = "javascript:alert(1)"

BAD_TAGS = {"script", "iframe", "frame", "frameset", "object", "embed", "applet", "svg",
            "math", "base", "style", "template", "portal", "noscript", "xmp", "plaintext"}
URL_ATTRS = {"href", "src", "action", "formaction", "xlink:href", "data", "poster",
             "background", "srcset", "ping", "codebase", "cite", "manifest", "lowsrc"}
BAD_SCHEMES = ("javascript:", "data:", "vbscript:", "livescript:")

HTML_ATTACHMENT = b"<html><body><script>alert(9)</script><p onclick=alert(9)>x</p></body></html>\n"
EVIL_NAME = "<img onerror=x>.html"


# ---------------------------------------------------------------- the corpus

def raw(frm, subject, body, headers=(), ctype=b"text/plain; charset=utf-8", cte=b"8bit",
        msgid=None):
    """A message as bytes, header values taken as given (bytes or str)."""
    def b(x):
        return x if isinstance(x, bytes) else x.encode("utf-8")
    msgid = msgid or "<%s>" % harness.new_msgid("hostile")
    lines = [b"From: " + b(frm), b"To: " + b(LIST + "@" + DOMAIN), b"Subject: " + b(subject),
             b"Date: " + b(email.utils.formatdate(usegmt=True)), b"Message-ID: " + b(msgid),
             b"MIME-Version: 1.0"]
    if ctype is not None:
        lines.append(b"Content-Type: " + b(ctype))
    if cte is not None:
        lines.append(b"Content-Transfer-Encoding: " + b(cte))
    lines += [b(h) for h in headers]
    body = b(body).replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def b64word(text):
    return "=?utf-8?B?%s?=" % base64.b64encode(text.encode()).decode()


def corpus():
    """[(tag, envelope sender, message bytes)]; TAG names what it tests and
    is the local part of its sender (h-TAG@evil.example)."""
    out = []

    def add(tag, data):
        out.append((tag, "h-%s@evil.example" % tag, data))

    add("script", raw("h-script@evil.example", "%s %s subject" % (SCRIPT, WORD),
                      "%s\n%s\n%s\n</textarea></title></pre>%s\n" % (SCRIPT, IMG, WORD, SCRIPT),
                      msgid="<script.%s@evil.example>" % uuid.uuid4().hex))
    add("img", raw("h-img@evil.example", "%s %s" % (IMG, WORD),
                   "Click %s or <a href=\"%s\">here</a>\n"
                   "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==\n"
                   "http://example.com/\"onmouseover=\"alert(1)\" and\n"
                   "https://example.com/<script>alert(1)</script>\n"
                   " JaVaScRiPt:alert(1)\n%s\n" % (JSURL, JSURL, WORD)))
    add("rfc2047", raw("%s <h-rfc2047@evil.example>" % b64word("<img src=x onerror=alert(4)>"),
                       "%s %s" % (b64word("<script>alert(2)</script>"), WORD),
                       "=3Cscript=3Ealert(11)=3C/script=3E %s\n" % WORD,
                       cte=b"quoted-printable"))
    add("qword", raw("=?utf-8?Q?=3Cscript=3Ealert(5)=3C/script=3E?= <h-qword@evil.example>",
                     "=?utf-8?Q?=22=3E=3Cimg_src=3Dx_onerror=3Dalert(6)=3E?= %s" % WORD,
                     "qword %s\n" % WORD))
    add("broken", raw("h-broken@evil.example",
                      b"Broken \xff\xfe \xc0\xbcscript\xc0\xbe \xe2\x28\xa1 \x01\x1b[31m "
                      + WORD.encode(),
                      b"\xc0\xbcscript\xc0\xbealert(3)\xc0\xbc/script\xc0\xbe\n"
                      b"\xed\xa0\x80 surrogate \xf4\x90\x80\x80 beyond\n"
                      b"\x01\x0b\x0c\x1b[31m controls \x7f\n" + WORD.encode() + b"\n"))
    add("latin1", raw("h-latin1@evil.example", b"Latin \xe9t\xe9 " + WORD.encode(),
                      b"\xe9t\xe9 <b>bold</b> " + WORD.encode() + b"\n",
                      ctype=b"text/plain; charset=iso-8859-1"))
    add("name", raw('"%s" <h-name@evil.example>' % SCRIPT, "display name %s" % WORD,
                    "name %s\n" % WORD))
    add("name2", raw('"\\"><img src=x onerror=alert(7)>" <h-name2@evil.example>',
                     "display name two %s" % WORD, "name2 %s\n" % WORD))
    add("html", raw("h-html@evil.example", "HTML only %s" % WORD,
                    "<html><head>"
                    "<meta http-equiv=\"refresh\" content=\"0;url=javascript:alert(1)\">"
                    "<base href=\"javascript:alert(1)//\">"
                    "<style>body{background:url(javascript:alert(1))}"
                    "</style></head><body onload=\"alert(1)\">"
                    "<script>alert(5)</script><p onclick=\"alert(6)\">Hi %s</p>"
                    "<a href=\"javascript:alert(7)\">x</a><img src=x onerror=alert(8)>"
                    "<iframe src=\"http://evil.example/\"></iframe>"
                    "<form action=\"http://evil.example/\"><input name=q></form>"
                    "<svg onload=alert(1)></svg>"
                    "<math><mi xlink:href=\"javascript:alert(1)\">m</mi></math>"
                    "</body></html>\n" % WORD, ctype=b"text/html; charset=utf-8"))
    boundary = "b" + uuid.uuid4().hex
    add("attach", raw("h-attach@evil.example", "attachment %s" % WORD,
                      "--%s\n"
                      "Content-Type: text/plain; charset=utf-8\n\n"
                      "See the attachment. %s\n"
                      "--%s\n"
                      "Content-Type: text/html; name=\"%s\"\n"
                      "Content-Disposition: attachment; filename=\"%s\"\n"
                      "Content-Transfer-Encoding: base64\n\n%s\n"
                      "--%s\n"
                      "Content-Type: text/html\n"
                      "Content-Disposition: attachment;\n"
                      " filename*=utf-8''evil%%0D%%0ASet-Cookie%%3A%%20pwned%%3D1%%0D%%0A.html\n"
                      "Content-Transfer-Encoding: base64\n\n%s\n"
                      "--%s\n"
                      "Content-Type: text/html\n"
                      "Content-Disposition: attachment; filename=\"q\\\"uote\\\\.html\"\n"
                      "Content-Transfer-Encoding: base64\n\n%s\n"
                      "--%s--\n" % (boundary, WORD, boundary, EVIL_NAME, EVIL_NAME,
                                    base64.b64encode(HTML_ATTACHMENT).decode(), boundary,
                                    base64.b64encode(HTML_ATTACHMENT).decode(), boundary,
                                    base64.b64encode(HTML_ATTACHMENT).decode(), boundary),
                      ctype="multipart/mixed; boundary=\"%s\"" % boundary, cte=None))
    add("msgid", raw("h-msgid@evil.example", "odd ids %s" % WORD, "ids %s\n" % WORD,
                     msgid='<"><script>alert(10)</script>@evil.example>',
                     headers=['In-Reply-To: <"><img src=x onerror=alert(10)>@evil.example>',
                              'References: <javascript:alert(10)@evil.example>']))
    return out


# ---------------------------------------------------------------- checking

def dangerous_url(v):
    """VALUE starts with a script-capable scheme, as a browser reads it
    (leading spaces and control characters ignored, tabs and newlines
    inside the scheme dropped)."""
    v = re.sub(r"[\x00-\x20]", "", v or "").lower()
    return v.startswith(BAD_SCHEMES)


def tag_problems(tags):
    """What is wrong with the start tags (tag, attrs, ...) of a page."""
    out = []
    for t in tags:
        tag, attrs = t[0].lower(), t[1]
        local = tag.split("}")[-1].split(":")[-1]
        if local in BAD_TAGS:
            out.append("<%s> %r" % (tag, attrs))
        if local == "img":
            src = attrs.get("src") or ""
            if not (src.startswith("/") and not src.startswith("//")):
                out.append("<img> not our own: %r" % attrs)
        if local == "meta" and (attrs.get("http-equiv") or "").lower() == "refresh":
            out.append("<meta refresh> %r" % attrs)
        if local == "form":
            action = attrs.get("action") or ""
            if re.match(r"^\s*([a-z][a-z0-9+.-]*:|//)", action, re.I):
                out.append("<form> posting elsewhere: %r" % attrs)
        for k, v in attrs.items():
            kl = k.lower().split("}")[-1]
            if kl.startswith("on"):
                out.append("<%s %s=%r>" % (tag, k, v))
            if kl in URL_ATTRS and dangerous_url(v):
                out.append("<%s %s=%r>" % (tag, k, v))
            if kl == "style" and re.search(r"(?i)url\s*\(|expression\s*\(", v or ""):
                out.append("<%s style=%r>" % (tag, v))
    return out


def check_page(r, where, status=200, expect=()):
    """R (a WebResponse) is a safe HTML page: returns the parsed page."""
    assert r.status == status, "%s: %r" % (where, r)
    assert_security_headers(r)
    ct = r.content_type.lower().replace(" ", "")
    assert ct.startswith("text/html") and "charset=utf-8" in ct, "%s: %s" % (where, ct)
    try:
        text = r.body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise AssertionError("%s is not UTF-8: %s near %r" % (where, e, r.body[max(0, e.start - 40):
                                                                          e.start + 40]))
    page = parse_page(text)
    bad = tag_problems(page.tags)
    assert not bad, "%s has live markup from mail:\n  %s" % (where, "\n  ".join(bad[:20]))
    low = text.lower()
    for needle in ("<script", "<iframe", "<svg", "<object", "<embed"):
        assert needle not in low, "%s contains %r" % (where, needle)
    shown = page.text()
    for e in expect:
        assert e in shown, "%s does not show %r as text" % (where, e)
    return page


def check_fragment(html_text, where):
    """An HTML fragment (the text of an Atom type="html" element) is safe."""
    page = parse_page(html_text or "")
    bad = tag_problems(page.tags)
    assert not bad, "%s: %s" % (where, bad[:10])


def check_atom(body, where):
    try:
        feed = ET.fromstring(body)
    except ET.ParseError as e:
        raise AssertionError("%s does not parse as XML: %s" % (where, e))
    assert feed.tag == "{%s}feed" % ATOM_NS
    for el in feed.iter():
        ns = el.tag[1:].split("}")[0] if el.tag.startswith("{") else ""
        assert ns in (ATOM_NS, XHTML_NS), "%s: foreign element %s" % (where, el.tag)
        if ns == XHTML_NS:
            bad = tag_problems([(el.tag.split("}")[1], dict(el.attrib))])
            assert not bad, "%s: %s" % (where, bad)
        local = el.tag.split("}")[-1]
        if local in ("title", "subtitle", "summary", "content", "rights") and ns == ATOM_NS:
            typ = el.get("type", "text")
            if typ == "html":
                check_fragment(el.text, "%s <%s type=html>" % (where, local))
            assert el.get("src") is None or not dangerous_url(el.get("src"))
        if local == "link":
            assert not dangerous_url(el.get("href")), "%s: link %r" % (where, el.attrib)
    return feed


# ---------------------------------------------------------------- fixture

class Site:
    pass


@pytest.fixture(scope="module")
def hostile(request, tmp_path_factory):
    from conftest import DaemonPool
    sink = Sink().start()
    tmp = tmp_path_factory.mktemp("hostile")
    pool = DaemonPool(tmp)
    request.module._dialogue_web_pool = pool
    try:
        conf = harness.web_config(tmp / "d", relay_port=sink.port,
                                  confirm_per_ip_per_hour=100000)
        d = pool.make(conf)
        harness.wait_http(conf.http_port, proc=d.proc)
        s = Site()
        s.sink, s.conf, s.d, s.port, s.base = sink, conf, d, conf.http_port, conf.base_url
        items = corpus()
        harness.post_messages(conf.port, [(frm, LIST + "@" + DOMAIN, data)
                                          for _, frm, data in items])

        def all_in():
            got = harness.archive_list(conf, LIST)
            return got if len(got) >= len(items) else None
        archived = wait_for(all_in, 30, interval=0.2, what="%d hostile posts archived" % len(items))
        s.ids = {}
        for e in archived:
            m = re.match(r"^h-(\w+)@evil\.example$", e["from"] or "")
            assert m, "an archived post with From %r" % e["from"]
            s.ids[m.group(1)] = e["id"]
        assert set(s.ids) == {t for t, _, _ in items}, s.ids
        yield s
    finally:
        try:
            pool.teardown()
        finally:
            sink.stop()


@pytest.fixture
def web(hostile, request):
    request.node._dialogue_pools = [request.module._dialogue_web_pool]
    assert hostile.d.running(), "dialogued died earlier:\n" + hostile.d.log_tail()
    yield hostile
    assert hostile.d.running(), "dialogued died during this test:\n" + hostile.d.log_tail()


def get(site, path, **kw):
    return http_get(site.port, path, **kw)


# ---------------------------------------------------------------- tests

def test_index_and_list_pages(web):
    check_page(get(web, "/"), "/")
    page = check_page(get(web, "/%s/" % LIST), "/%s/" % LIST,
                      expect=[SCRIPT, IMG.strip()])
    # every hostile post is listed (as a link to its page)
    hrefs = {l["href"] for l in page.links}
    for tag, mid in web.ids.items():
        assert "/%s/m/%d" % (LIST, mid) in hrefs, "post %s not on /%s/" % (tag, LIST)
    for l in page.links:
        if l.get("href") and "month=" in l["href"]:
            path = resolve("/%s/" % LIST, l["href"])
            check_page(get(web, path), path)
            break
    else:
        pytest.fail("no month link on /%s/" % LIST)


@pytest.mark.parametrize("tag", [t for t, _, _ in corpus()])
def test_message_page(web, tag):
    path = "/%s/m/%d" % (LIST, web.ids[tag])
    expect = {"script": [SCRIPT, IMG.strip()], "img": [IMG.strip(), JSURL],
              "name": [SCRIPT]}.get(tag, [])
    page = check_page(get(web, path), path, expect=expect)
    if tag == "html":
        # The subject (title, <h1>) carries WORD too: look only inside the
        # message body container for the text of the HTML-only part.
        body = page.text_in("div", "body")
        assert "Hi %s" % WORD in body, \
            "the HTML-only post's text is not shown in its body: %r" % body
    for rel in ("prev", "next"):
        href = harness.rel_link(page, rel)
        if href:
            check_page(get(web, resolve(path, href)), "%s of %s" % (rel, path))


def test_search_results(web):
    path = "/%s/search?q=%s" % (LIST, WORD)
    page = check_page(get(web, path), path)
    found = {int(m.group(1)) for l in page.links
             for m in [re.match(r"^/%s/m/(\d+)$" % LIST, l.get("href") or "")] if m}
    assert found, "search for %s found nothing" % WORD
    for q in (SCRIPT, IMG, JSURL, "alert", "script", "onerror", "img src", "<mark>",
              "</mark><script>alert(1)</script>", "\"'><", "%3Cscript%3E"):
        p = "/%s/search?q=%s" % (LIST, urllib.parse.quote(q))
        r = get(web, p)
        if r.status == 400:
            check_page(r, p, status=400)
        else:
            check_page(r, p)
    nxt = harness.rel_link(page, "next")
    if nxt:
        check_page(get(web, resolve(path, nxt)), "page 2 of " + path)


def test_error_pages_do_not_reflect_markup(web):
    for path in ("/%3Cscript%3Ealert(1)%3C/script%3E/",
                 "/%s/m/%%3Cscript%%3E" % LIST,
                 "/%s/m/1%%22%%3E%%3Cimg%%20src=x%%20onerror=alert(1)%%3E" % LIST,
                 "/confirm/%3Cscript%3Ealert(1)%3C/script%3E",
                 "/%s/unsubscribe/%%3Cscript%%3Ealert(1)%%3C/script%%3E" % LIST,
                 "/%s/?page=%%3Cscript%%3E" % LIST,
                 "/%s/?month=%%3Cscript%%3E" % LIST,
                 "/%s/subscribe?address=%%3Cscript%%3Ealert(1)%%3C/script%%3E" % LIST):
        r = get(web, path)
        assert r.status < 500, "%s: %r" % (path, r)
        if r.content_type.lower().startswith("text/html"):
            check_page(r, path, status=r.status)
        assert b"<script>alert(1)</script>" not in r.body
        assert_security_headers(r)


def test_subscribe_pages_with_markup(web):
    r = get(web, "/%s/subscribe" % LIST)
    form = [f for f in check_page(r, "subscribe").forms if f["method"] == "post"][0]
    # a bad address full of markup: 400, not reflected as markup
    fields = dict(form["fields"], address=SCRIPT + "@" + IMG, name=SCRIPT)
    r = http_post(web.port, "/%s/subscribe" % LIST, fields)
    check_page(r, "bad address", status=r.status)
    assert r.status == 400, r
    # a quoted local part is a valid address; whatever becomes of it, the page is safe
    fields = dict(form["fields"], address='"<img src=x onerror=alert(1)>"@example.net', name=IMG)
    r = http_post(web.port, "/%s/subscribe" % LIST, fields)
    check_page(r, "quoted local part", status=r.status)
    # a name with markup, all the way to the confirmation page
    who = "markup.%s@example.net" % uuid.uuid4().hex[:8]
    r = http_post(web.port, "/%s/subscribe" % LIST,
                  dict(form["fields"], address=who, name=SCRIPT + IMG))
    check_page(r, "join with a markup name")
    txn = web.sink.wait(lambda: [t for t in web.sink.transactions()
                                 if who in [x.lower() for x in t.rcpt_tos]], 30,
                        what="confirmation to " + who)[0]
    text = "\n".join(p.get_content() for p in txn.message().walk()
                     if p.get_content_type() == "text/plain")
    m = re.search(re.escape(web.base) + r"(/confirm/[A-Za-z0-9_-]+)", text)
    assert m, text
    check_page(get(web, m.group(1)), "the confirmation page")


def test_atom(web):
    r = get(web, "/%s/atom.xml" % LIST)
    assert r.status == 200, r
    assert r.content_type.lower().startswith("application/atom+xml"), r.content_type
    assert_security_headers(r)
    feed = check_atom(r.body, "atom.xml")
    entries = feed.findall("{%s}entry" % ATOM_NS)
    assert len(entries) == len(web.ids), "%d entries for %d posts" % (len(entries), len(web.ids))
    titles = " ".join("".join(e.find("{%s}title" % ATOM_NS).itertext()) for e in entries)
    assert SCRIPT in titles, "the <script> subject is not in the feed as text: %r" % titles[:500]


def test_attachment_downloads(web):
    path = "/%s/m/%d" % (LIST, web.ids["attach"])
    page = check_page(get(web, path), path)
    atts = [l for l in page.links
            if re.match(r"^%s/att/\d+$" % re.escape(path), l.get("href") or "")]
    assert len(atts) == 3, "attachments listed: %r" % atts
    # shown by its name, as text (as sent, or with the markup characters replaced)
    evil = [l for l in atts if re.fullmatch(r".img onerror=x.\.html", l["text"].strip())]
    assert evil, "the attachment named %r is not listed by its name: %r" % (EVIL_NAME, atts)
    for l in atts:
        r = get(web, l["href"])
        assert r.status == 200, r
        assert r.body == HTML_ATTACHMENT, (l, r)
        assert r.content_type.lower().split(";")[0].strip() == "application/octet-stream", \
            "%s: %s" % (l["href"], r.content_type)
        cds = r.headers.get_all("Content-Disposition") or []
        assert len(cds) == 1 and cds[0].lower().startswith("attachment"), cds
        cd_syntax = (r'^attachment(\s*;\s*(filename="([^"\\\r\n]|\\.)*"'
                     r'|filename\*=[^;\s]+))*\s*$')
        assert re.match(cd_syntax, cds[0], re.I), "unparseable Content-Disposition %r" % cds[0]
        assert r.header("X-Content-Type-Options") == "nosniff"
        assert not r.headers.get_all("Set-Cookie"), "header injected: %r" % dict(r.headers)
        assert_security_headers(r)
        raw = harness.http_raw(web.port, ("GET %s HTTP/1.1\r\nHost: x\r\nConnection: close"
                                          "\r\n\r\n" % l["href"]).encode())
        head = raw.raw.split(b"\r\n\r\n", 1)[0]
        assert not re.search(rb"(?im)^(set-cookie|pwned)", head), head
