"""The website end to end in a real browser: headless Chromium driven by
chromedriver through Debian's python3-selenium, against a real dialogued
relaying to a real SMTP sink.

A person opens /, follows the list, opens a message, searches, fills in
the join form and clicks its button; the confirmation mail captured at the
sink carries a link; they open it and click the confirm button; dialoguectl
then shows them an active member. Chromium's console must show no Content
Security Policy violation on any page (the stylesheet loads under the
CSP, nothing inline is refused), and the stylesheet must have applied.

Screenshots of the list page, a message page and the confirmation result
are saved as test artifacts: in $DIALOGUE_ARTIFACTS when set (ctest sets
it to the build directory's web-artifacts/), else in the test's tmp dir.

Skipped only when chromium, chromedriver or selenium are not installed
(scripts/install-deps.sh installs all three).
"""

import email.policy
import email.utils
import os
import re
import shutil
import sys
import uuid
from email.message import EmailMessage
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402
from harness import T, wait_for  # noqa: E402
from sink import Sink  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
DOMAIN = harness.HOSTNAME
LIST = "dialogue"
TITLE = harness.DEFAULT_LISTS[LIST]["title"]
WORD = "pomegranate"
SUBJECT = "Browsing the archive"

try:
    from selenium import webdriver
    from selenium.common.exceptions import NoSuchElementException, WebDriverException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    HAVE_SELENIUM = True
except ImportError:  # pragma: no cover - CI installs python3-selenium
    HAVE_SELENIUM = False

pytestmark = pytest.mark.skipif(
    not (HAVE_SELENIUM and os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)),
    reason="chromium, chromium-driver or python3-selenium not installed "
           "(scripts/install-deps.sh installs them)")


def mail(subject, body, frm, msgid, parents=()):
    m = EmailMessage()
    m["From"] = frm
    m["To"] = "%s@%s" % (LIST, DOMAIN)
    m["Subject"] = subject
    m["Date"] = email.utils.formatdate(usegmt=True)
    m["Message-ID"] = "<%s>" % msgid
    if parents:
        m["In-Reply-To"] = "<%s>" % parents[-1]
        m["References"] = " ".join("<%s>" % p for p in parents)
    m.set_content(body)
    return m.as_bytes(policy=email.policy.SMTP)


class Site:
    pass


@pytest.fixture
def site(daemons, tmp_path):
    sink = Sink().start()
    try:
        conf = harness.web_config(tmp_path / "d", relay_port=sink.port,
                                  lists={LIST: {"description": "Open discussion, in a browser."}})
        d = daemons.make(conf)
        harness.wait_http(conf.http_port, proc=d.proc)
        root, reply = harness.new_msgid("root"), harness.new_msgid("reply")
        harness.post_messages(conf.port, [
            ("ann@example.org", "%s@%s" % (LIST, DOMAIN),
             mail(SUBJECT, "Where is the archive?\nI heard of a %s tree.\n" % WORD,
                  "Ann Example <ann@example.org>", root)),
            ("ben@example.org", "%s@%s" % (LIST, DOMAIN),
             mail("Re: " + SUBJECT, "> Where is the archive?\n\nRight here.\n",
                  "ben@example.org", reply, parents=[root])),
        ])
        harness.wait_archived(conf, LIST, [root, reply])
        s = Site()
        s.sink, s.conf, s.d, s.base = sink, conf, d, conf.base_url
        s.ids = {k: v["id"] for k, v in harness.archive_by_msgid(conf, LIST).items()}
        s.root, s.reply = s.ids[root], s.ids[reply]
        yield s
    finally:
        sink.stop()


@pytest.fixture
def artifacts(tmp_path):
    d = Path(os.environ.get("DIALOGUE_ARTIFACTS") or tmp_path / "artifacts")
    d.mkdir(parents=True, exist_ok=True)
    return d


class Browser:
    """A headless Chromium whose console messages are all kept."""

    def __init__(self, profile):
        o = webdriver.ChromeOptions()
        o.binary_location = CHROMIUM
        for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                  "--window-size=1280,900", "--no-first-run", "--no-default-browser-check",
                  "--disable-extensions", "--disable-background-networking",
                  "--user-data-dir=%s" % profile):
            o.add_argument(a)
        o.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=o)
        self.driver.set_page_load_timeout(T(30))
        self.console = []  # (url, entry)

    def drain(self):
        url = self.driver.current_url
        for e in self.driver.get_log("browser"):
            self.console.append((url, e))

    def get(self, url):
        self.driver.get(url)
        self.drain()

    def mark(self):
        """Tag the current document, so that a new one can be told apart."""
        self.driver.execute_script("window.__dialogue_old_page = true;")

    def wait_new_page(self):
        """Until the tagged document is replaced by a loaded new one. (Not
        staleness_of(): chromedriver can fail on an element of a document
        being torn down instead of reporting it stale.)"""
        WebDriverWait(self.driver, T(15), ignored_exceptions=(WebDriverException,)).until(
            lambda d: d.execute_script("return !window.__dialogue_old_page && "
                                       "document.readyState === 'complete';"))
        self.drain()

    def click_and_wait(self, element):
        """Click ELEMENT and wait until the page it was on is replaced."""
        self.mark()
        element.click()
        self.wait_new_page()

    def text(self):
        return self.driver.find_element(By.TAG_NAME, "body").text

    def stylesheet_applied(self):
        """[(href, rule count)] of the page's style sheets."""
        return self.driver.execute_script(
            "return Array.from(document.styleSheets).map(function (s) {"
            "  var n = -1; try { n = s.cssRules.length; } catch (e) {}"
            "  return [s.href, n]; });")

    def csp_violations(self):
        return [(u, e["message"]) for u, e in self.console
                if "Content Security Policy" in e.get("message", "")
                or "Refused to" in e.get("message", "")]

    def quit(self):
        self.driver.quit()


@pytest.fixture
def browser(tmp_path):
    profile = tmp_path / "chromium-profile"
    profile.mkdir()
    b = Browser(profile)
    yield b
    b.quit()
    shutil.rmtree(profile, ignore_errors=True)


def is_active(conf, address):
    return any(m["address"].lower() == address.lower() and m["status"] == "active"
               for m in harness.ctl_ok(conf, "members", "list", LIST))


def find_link(b, href_pattern):
    for a in b.driver.find_elements(By.TAG_NAME, "a"):
        href = a.get_attribute("href") or ""
        if re.search(href_pattern, href):
            return a
    return None


def check_style(b, where):
    sheets = b.stylesheet_applied()
    assert any((h or "").endswith("/style.css") and n > 0 for h, n in sheets), \
        "%s: /style.css did not load under the CSP: %r" % (where, sheets)


def test_read_search_and_join_in_chromium(site, browser, artifacts):
    b, base = browser, site.base
    shots = []

    def shot(name):
        path = artifacts / ("test_web_browser-%s.png" % name)
        assert b.driver.save_screenshot(str(path)), "screenshot %s failed" % path
        shots.append(path)

    # / -> the list
    b.get(base + "/")
    assert TITLE in b.text(), b.text()[:500]
    check_style(b, "/")
    a = find_link(b, r"/%s/$" % LIST)
    assert a is not None, "no link to /%s/ on /" % LIST
    b.click_and_wait(a)
    assert b.driver.current_url == "%s/%s/" % (base, LIST), b.driver.current_url
    assert SUBJECT in b.text()
    check_style(b, "/%s/" % LIST)
    shot("list")

    # the list -> a message
    a = find_link(b, r"/%s/m/%d$" % (LIST, site.root))
    assert a is not None, "no link to message %d on the list page" % site.root
    b.click_and_wait(a)
    assert b.driver.current_url == "%s/%s/m/%d" % (base, LIST, site.root)
    text = b.text()
    assert SUBJECT in text and "Where is the archive?" in text, text[:800]
    assert "ann@example.org" not in text
    check_style(b, "message page")
    shot("message")

    # search, with the page's own search box when there is one
    b.get("%s/%s/" % (base, LIST))
    boxes = b.driver.find_elements(By.CSS_SELECTOR, "input[name=q]")
    if boxes:
        boxes[0].send_keys(WORD)
        form = boxes[0].find_element(By.XPATH, "./ancestor::form")
        buttons = form.find_elements(By.CSS_SELECTOR, "button, input[type=submit]")
        if buttons:
            b.click_and_wait(buttons[0])
        else:
            b.mark()
            boxes[0].submit()
            b.wait_new_page()
    else:
        b.get("%s/%s/search?q=%s" % (base, LIST, WORD))
    assert "/%s/search" % LIST in b.driver.current_url, b.driver.current_url
    marks = [m.text.strip().lower() for m in b.driver.find_elements(By.TAG_NAME, "mark")]
    assert WORD in marks, "search results show no <mark>%s</mark>: %r" % (WORD, marks)
    assert find_link(b, r"/%s/m/%d$" % (LIST, site.root)) is not None
    check_style(b, "search page")

    # join: the form, filled in and sent with its button
    b.get("%s/%s/" % (base, LIST))
    a = find_link(b, r"/%s/subscribe$" % LIST)
    if a is None:
        b.get(base + "/")
        a = find_link(b, r"/%s/subscribe$" % LIST)
    assert a is not None, "no join link on /%s/ or /" % LIST
    b.click_and_wait(a)
    who = "browser.%s@example.net" % uuid.uuid4().hex[:8]
    try:
        addr_in = b.driver.find_element(By.NAME, "address")
    except NoSuchElementException:
        pytest.fail("no address field on the join page: %s" % b.text()[:500])
    addr_in.send_keys(who)
    b.driver.find_element(By.NAME, "name").send_keys("Brow Ser")
    check_style(b, "join page")
    form = addr_in.find_element(By.XPATH, "./ancestor::form")
    b.click_and_wait(form.find_element(By.CSS_SELECTOR, "button, input[type=submit]"))
    assert not is_active(site.conf, who)

    txn = site.sink.wait(lambda: [t for t in site.sink.transactions()
                                  if who in [r.lower() for r in t.rcpt_tos]], 30,
                         what="the confirmation mail to " + who)[0]
    body = "\n".join(p.get_content() for p in txn.message().walk()
                     if p.get_content_type() == "text/plain")
    m = re.search(re.escape(base) + r"/confirm/[A-Za-z0-9_-]+", body)
    assert m, "no confirmation link in the mail:\n" + body
    b.get(m.group(0))
    check_style(b, "confirmation page")
    assert not is_active(site.conf, who), "opening the confirmation link subscribed"
    buttons = b.driver.find_elements(By.CSS_SELECTOR, 'form[method="post" i] button, '
                                     'form[method="post" i] input[type=submit]')
    assert buttons, "no button of a POST form on the confirmation page: %s" % b.text()[:500]
    b.click_and_wait(buttons[0])
    shot("confirmed")
    wait_for(lambda: is_active(site.conf, who), 10, interval=0.1,
             what="%s active after the confirm button" % who)

    b.drain()
    assert not b.csp_violations(), "CSP violations in Chromium's console:\n%s" % "\n".join(
        "%s: %s" % v for v in b.csp_violations())
    for p in shots:
        assert p.stat().st_size > 1000, p
    print("screenshots: " + ", ".join(str(p) for p in shots))
