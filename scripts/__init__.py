"""The operator scripts: one command, `queue-worker VERB` (alias `python -m scripts VERB`; see
scripts/__main__.py).

The worker runtime's names (``worker.contract``) are shared with the scripts, so
``worker_image/`` joins the import path here, as pytest's ``pythonpath`` and mypy's
``mypy_path`` do.
"""

import sys
from pathlib import Path

_WORKER_IMAGE = str(Path(__file__).resolve().parents[1] / "worker_image")
if _WORKER_IMAGE not in sys.path:
    sys.path.append(_WORKER_IMAGE)
