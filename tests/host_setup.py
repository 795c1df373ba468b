"""Installing what a test needs on the host: one apt/dpkg user at a time across test processes."""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator

_LOCK = "/tmp/kit-host-setup.lock"


@contextlib.contextmanager
def host_setup_lock() -> Iterator[None]:
    """Hold an exclusive lock while installing: two xdist workers running apt-get at once
    fight over dpkg's lock and one fails."""
    with open(_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield
