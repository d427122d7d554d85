"""One JSON line per case: how ``calibration.py``, ``mixture_size.py`` and
``score_trend.py`` save a run (``--out``) and print the table of saved runs
(``--from-jsonl``)."""

from __future__ import annotations

import argparse
import contextlib
import json
from collections.abc import Callable


class Records(list):
    """A run's records; each is also written as a JSON line as it comes, when the run
    has an output file, so an interrupted run keeps what it measured."""

    def __init__(self, out=None) -> None:
        super().__init__()
        self._out = out

    def add(self, record: dict) -> None:
        self.append(record)
        if self._out is not None:
            self._out.write(json.dumps(record) + "\n")
            self._out.flush()


def add_arguments(parser: argparse.ArgumentParser, each: str) -> None:
    parser.add_argument("--out", help=f"write one JSON line per {each}")
    parser.add_argument("--from-jsonl", nargs="*", help="print the table of saved runs")


def saved_or_new(args: argparse.Namespace, run: Callable[[Records], None]) -> list[dict]:
    """The records of the ``--from-jsonl`` files, or those of a new ``run``."""
    if args.from_jsonl:
        records = []
        for path in args.from_jsonl:
            with open(path) as saved:
                records += [json.loads(line) for line in saved]
        return records
    with contextlib.ExitStack() as stack:
        records = Records(stack.enter_context(open(args.out, "w")) if args.out else None)
        run(records)
    return records
