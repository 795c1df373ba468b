"""The template simulator: read templates, run one day, report (scripts/capacity/simulate.py)."""
