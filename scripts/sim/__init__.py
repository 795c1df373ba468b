"""The template simulator: read templates, run one day, report (see scripts/simulate.py)."""
