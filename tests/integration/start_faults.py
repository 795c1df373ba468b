"""A handler module for the start-up fault tests (tests/integration/test_crash_loop.py): what
its import does is chosen by START_FAULT, so a worker process fails the way a broken deploy
does.

- ``die_after:SECONDS``: the import sleeps SECONDS, then fails (a handler that dies after
  supervisord's `startsecs`, so supervisord alone never marks it FATAL);
- ``hang``: the import never returns (the process never receives);
- ``needs:PATH``: the import fails unless PATH exists (a deploy that worked, then breaks);
- unset: imports fine.
"""

from __future__ import annotations

import os
import time

_FAULT = os.environ.get("START_FAULT", "")
if _FAULT.startswith("die_after:"):
    time.sleep(float(_FAULT.partition(":")[2]))
    raise ImportError(f"START_FAULT={_FAULT}: the handler cannot start")
if _FAULT == "hang":
    time.sleep(3600)
if _FAULT.startswith("needs:") and not os.path.exists(_FAULT.partition(":")[2]):
    raise ImportError(f"START_FAULT={_FAULT}: the file it needs is gone")


def job(body: str, context: object) -> None:
    """Done at once."""
