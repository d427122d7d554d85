"""Text quality harness: does a detector tell recursively generated text from real text?

Real documents come from installed Debian packages (the King James Bible and the
fortune files); nothing is downloaded at run time. Run from the repository root::

    .venv/bin/python -m benchmarks.quality.text.run_text --quick
"""
