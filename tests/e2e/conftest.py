"""Harness for the end-to-end tests: a real etrnd (the sanitizer build) on
loopback ports with a temporary queue, talked to over real sockets.

Every daemon started here is stopped with SIGTERM at the end of its test;
the test fails if etrnd did not exit cleanly or if AddressSanitizer or
UndefinedBehaviorSanitizer reported anything on its stderr."""

import os
import signal
import socket
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from etrnd_harness import Etrnd, free_port  # noqa: E402

BUILD = os.environ.get("ETRND_BUILD") or os.path.join(
    os.path.dirname(__file__), "..", "..", "build-asan")


@pytest.fixture
def etrnd_factory(tmp_path):
    started = []

    def make(extra="", domains=None, start=True, **kw):
        d = Etrnd(BUILD, tmp_path / f"d{len(started)}", extra=extra,
                  domains=domains, **kw)
        started.append(d)
        if start:
            d.start()
        return d

    yield make
    errors = []
    for d in started:
        errors.extend(d.stop())
    assert not errors, "\n".join(errors)


@pytest.fixture
def etrnd(etrnd_factory):
    return etrnd_factory()
