"""Fixtures of the end-to-end tests: each test gets its own Lab (tools/h2slab.py) — cgroup, pin
dir, listener, backends — and its teardown fails the test if the daemon crashed, did not exit 0
on SIGTERM, reported a sanitizer error, or left pins or cgroups behind.
"""
import os
import sys

import pytest

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# The sanitizer build of the daemon, unless told otherwise.
os.environ.setdefault("H2S_DAEMON", os.path.join(TOP, "build", "asan", "h2steerd"))
sys.path.insert(0, os.path.join(TOP, "tools"))

import h2slab  # noqa: E402


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


@pytest.fixture
def lab(request):
    if os.geteuid() != 0:
        pytest.fail("the end-to-end tests need root (sudo make test)")
    lab = h2slab.Lab(request.node.name[:24].replace("[", "-").replace("]", ""))
    try:
        yield lab
    finally:
        failed = getattr(request.node, "rep_call", None) and request.node.rep_call.failed
        problems = lab.close(keep_logs=True)
        if failed or problems:
            print(lab.logs())
        lab.remove_logs()
        assert not problems, "teardown: " + "; ".join(problems)
