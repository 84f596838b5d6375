"""pytest fixtures: a started dialogued per test (or per module for the
read-only protocol tests), stopped with SIGTERM at teardown (exit 0 asserted),
and its log attached to the report of a failing test."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: takes more than a few seconds")


@pytest.fixture(scope="session", autouse=True)
def binaries():
    if not harness.DIALOGUED or not Path(harness.DIALOGUED).exists():
        pytest.skip("dialogued not built (set DIALOGUED)")
    if not harness.DIALOGUECTL or not Path(harness.DIALOGUECTL).exists():
        pytest.skip("dialoguectl not built (set DIALOGUECTL)")


class DaemonPool:
    """Daemons made by one test (or module); all torn down together."""

    def __init__(self, base):
        self.base = Path(base)
        self.daemons = []

    def make(self, conf=None, start=True, **overrides):
        if conf is None:
            conf = harness.write_config(self.base / ("d%d" % len(self.daemons)), **overrides)
        d = harness.Daemon(conf)
        self.daemons.append(d)
        if start:
            d.start()
        return d

    def teardown(self):
        errors = []
        for d in self.daemons:
            try:
                if d.running():
                    d.stop()
                elif d.proc is not None and d.proc.returncode not in (0, -9):
                    errors.append("dialogued %s died with %s:\n%s"
                                  % (d.conf.path, d.proc.returncode, d.log_tail()))
                else:
                    d.check_sanitizer()
            except AssertionError as e:
                errors.append(str(e))
            finally:
                d.cleanup()
        if errors:
            pytest.fail("\n\n".join(errors), pytrace=False)


@pytest.fixture
def daemons(request, tmp_path):
    """A factory: daemons.make(**config_overrides) -> started Daemon."""
    pool = DaemonPool(tmp_path)
    request.node._dialogue_pools = getattr(request.node, "_dialogue_pools", []) + [pool]
    yield pool
    pool.teardown()


@pytest.fixture
def daemon(daemons):
    """A dialogued with the default test config."""
    return daemons.make()


@pytest.fixture(scope="module")
def shared_daemon(request, tmp_path_factory):
    """One dialogued for a module's tests that leave no state others see."""
    pool = DaemonPool(tmp_path_factory.mktemp("shared"))
    request.module._dialogue_shared_pool = pool
    d = pool.make()
    yield d
    pool.teardown()


@pytest.fixture
def live_shared(shared_daemon):
    """shared_daemon, asserted alive before and after the test."""
    assert shared_daemon.running(), "shared dialogued died earlier:\n" + shared_daemon.log_tail()
    yield shared_daemon
    assert shared_daemon.running(), "dialogued died during this test:\n" + shared_daemon.log_tail()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if not rep.failed:
        return
    pools = list(getattr(item, "_dialogue_pools", []))
    shared = getattr(item.module, "_dialogue_shared_pool", None)
    if shared is not None and "live_shared" in getattr(item, "fixturenames", ()):
        pools.append(shared)
    for pool in pools:
        for d in pool.daemons:
            rep.sections.append(("dialogued log (%s)" % d.log_path, d.log_tail(80)))
