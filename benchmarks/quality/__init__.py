"""Quality harness: how well collapse detectors separate collapse from real data and shift.

Run it as a module from the repository root so that this package's ``datasets`` module
never shadows Hugging Face's ``datasets``::

    .venv/bin/python -m benchmarks.quality.run_quality --quick
"""
