"""The queue-worker kit's CDK stacks, constructs and typed configuration.

The worker runtime's names (``worker.contract``: message attributes, log fields, metric names)
are shared with the monitoring construct, so ``worker_image/`` joins the import path here, as
pytest's ``pythonpath`` and mypy's ``mypy_path`` do.
"""

import sys
from pathlib import Path

_WORKER_IMAGE = str(Path(__file__).resolve().parents[1] / "worker_image")
if _WORKER_IMAGE not in sys.path:
    sys.path.append(_WORKER_IMAGE)
