"""collapse-gate: the command line.

Exit codes: 0 success, 2 bad input or an internal error (one line on stderr, no
traceback unless ``COLLAPSE_GATE_DEBUG=1``). Heavy libraries are imported inside the
commands so that ``--help`` stays instant.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

EXIT_OK = 0
EXIT_COLLAPSE = 1
EXIT_BAD_INPUT = 2


def _parser() -> argparse.ArgumentParser:
    from collapse_callbacks._version import __version__

    parser = argparse.ArgumentParser(
        prog="collapse-gate",
        description="Check a training set against real reference data before training on it.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    profile = commands.add_parser(
        "profile",
        help="summarize a dataset: rows, columns, roles, missing values, statistics",
        description="Summarize a dataset in one streaming pass.",
    )
    profile.add_argument(
        "source",
        help="a path, URL (s3://, gs://, memory://, file://), glob, directory, or example:penguins",
    )
    profile.add_argument(
        "--json", metavar="OUT", help="also write the profile as JSON to OUT ('-' for stdout)"
    )
    _add_read_options(profile)

    check = commands.add_parser(
        "check",
        help="check a candidate training set against real reference data",
        description="Exit 0 = pass, 1 = collapse detected, 2 = bad input or internal error.",
    )
    check.add_argument("reference", help="real data: a path, URL, glob, directory or example:NAME")
    check.add_argument("candidate", help="the data you intend to train on")
    _add_gate_options(check)
    _add_proxy_options(check)
    _add_read_options(check)

    demo = commands.add_parser(
        "demo",
        help="watch the gate catch recursively generated data (real penguins, no download)",
        description=(
            "Fits a generative model to real data, samples from it, refits on the samples, "
            "and checks each generation against held-out real data."
        ),
    )
    demo.add_argument("--generations", type=_positive_int, default=5, metavar="N")
    demo.add_argument(
        "--rows",
        type=_positive_int,
        metavar="N",
        help="rows per generation (default: as many as the real half)",
    )
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument(
        "--temperature",
        type=float,
        default=0.9,
        help="sampling temperature of the generator (default 0.9)",
    )
    demo.add_argument("--alpha", type=_probability, default=0.01)
    return parser


def _add_gate_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("gate")
    group.add_argument(
        "--json", metavar="OUT", help="write the full report as JSON to OUT ('-' for stdout)"
    )
    group.add_argument(
        "--alpha", type=_probability, default=0.01, help="false-alarm rate (default 0.01)"
    )
    group.add_argument(
        "--seed", type=int, default=0, help="seed for sampling and splits (default 0)"
    )
    group.add_argument(
        "--real-fraction",
        type=_probability,
        metavar="F",
        help="share of real data in the candidate, if known",
    )
    group.add_argument(
        "--lineage", choices=("replace", "accumulate"), help="how generations were combined"
    )
    group.add_argument("--quiet", action="store_true", help="no progress on stderr")
    group.add_argument(
        "--tokenizer",
        metavar="DIR",
        help="a Hugging Face tokenizer saved in DIR (save_pretrained; nothing is "
        "downloaded): token columns leave its special and padding tokens out, reports "
        "name tokens as text, and ids beyond its vocabulary are an error",
    )


def _load_tokenizer(path: str | None):
    if path is None:
        return None
    from collapse_callbacks.errors import DataError

    try:
        from transformers import AutoTokenizer
    except ImportError:
        raise DataError(
            "--tokenizer needs the transformers package: pip install 'collapse-callbacks[hf]'"
        ) from None
    try:
        return AutoTokenizer.from_pretrained(path, local_files_only=True)
    except (OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"cannot load a tokenizer from {path!r}: {first}") from None


def _add_proxy_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("model dimensions")
    # Off by default: training takes seconds, and the two model dimensions take two
    # shares of alpha from the data dimensions.
    group.add_argument(
        "--proxy-model",
        action="store_true",
        help="train a small proxy model on the candidate and probe its gradients and loss "
        "landscape on held-out candidate rows against reference rows",
    )
    group.add_argument(
        "--target",
        metavar="COL",
        help="the proxy predicts COL from the other columns (implies --proxy-model) and "
        "also compares train-on-candidate with train-on-reference utility on real rows",
    )


def _probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {value}")
    return value


def _add_read_options(parser: argparse.ArgumentParser) -> None:
    from collapse_callbacks.data.location import FORMATS

    group = parser.add_argument_group("reading")
    group.add_argument("--format", choices=FORMATS, help="file format, when the name does not say")
    group.add_argument("--columns", nargs="+", metavar="COL", help="read only these columns")
    group.add_argument("--exclude", nargs="+", metavar="COL", help="leave these columns out")
    group.add_argument(
        "--role",
        action="append",
        default=[],
        metavar="COL=ROLE",
        help="override a column's role (numeric, boolean, categorical, text, tokens, vector)",
    )
    group.add_argument("--max-rows", type=_positive_int, metavar="N", help="read at most N rows")
    group.add_argument("--sheet", help="Excel sheet name (default: the first)")
    group.add_argument("--key", help="HDF5 group holding the columns (default: the root)")
    group.add_argument("--encoding", help="text encoding of CSV/TSV/JSON (default: utf-8)")
    group.add_argument(
        "--delimiter",
        metavar="C",
        help="field separator of CSV/TSV (default: ',' or tab; ';' or '|' when the header "
        "line holds those and not the default)",
    )


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _roles(pairs: list[str]) -> dict[str, str]:
    roles = {}
    for pair in pairs:
        name, sep, role = pair.rpartition("=")
        if not sep or not name:
            raise ValueError(f"--role takes COL=ROLE, got {pair!r}")
        roles[name] = role
    return roles


def _open(args: argparse.Namespace, source: str):
    from collapse_callbacks.data.source import open_source

    return open_source(source, columns=args.columns, max_rows=args.max_rows, **_read_options(args))


def _read_options(args: argparse.Namespace) -> dict:
    return dict(
        format=args.format,
        exclude=args.exclude,
        roles=_roles(args.role),
        sheet=args.sheet,
        key=args.key,
        encoding=args.encoding,
        delimiter=args.delimiter,
    )


class _Progress:
    """Rows read so far, on one stderr line, only when stderr is a terminal."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled and sys.stderr.isatty()

    def __call__(self, label: str, rows: int) -> None:
        if self.enabled:
            sys.stderr.write(f"\rprofiling {label}: {rows:,} rows ")
            sys.stderr.flush()

    def done(self) -> None:
        if self.enabled:
            sys.stderr.write("\r\033[K")


def _check(args: argparse.Namespace) -> int:
    from collapse_callbacks.gate import CollapseGate

    gate = CollapseGate(
        args.reference,
        alpha=args.alpha,
        seed=args.seed,
        max_rows=args.max_rows,
        columns=args.columns,
        real_fraction=args.real_fraction,
        lineage=args.lineage,
        read_options=_read_options(args),
        tokenizer=_load_tokenizer(args.tokenizer),
    )
    progress = _Progress(not args.quiet)
    try:
        report = gate.check(
            args.candidate, progress=progress, proxy_model=args.proxy_model, target=args.target
        )
    finally:
        progress.done()
    _emit(report.render(), report.to_json(), args.json)
    return EXIT_COLLAPSE if report.collapsed else EXIT_OK


def _emit(text: str, json_text: str, destination: str | None) -> None:
    if destination == "-":
        sys.stdout.write(json_text + "\n")
        return
    sys.stdout.write(text)
    if destination:
        with open(destination, "w", encoding="utf-8") as out:
            out.write(json_text + "\n")


def _demo(args: argparse.Namespace) -> int:
    from collapse_callbacks.demo import run_demo

    sys.stdout.write(
        run_demo(
            generations_count=args.generations, rows=args.rows, seed=args.seed, alpha=args.alpha
        )
    )
    return EXIT_OK


def _profile(args: argparse.Namespace) -> int:
    from collapse_callbacks.profile.render import render_profile
    from collapse_callbacks.profile.table import build_profile

    stream = _open(args, args.source)
    summary = build_profile(stream, stream.roles, source=args.source).result()
    _emit(render_profile(summary), json.dumps(summary.to_dict(), indent=2), args.json)
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (the console script exits with it)."""
    args = _parser().parse_args(argv)
    from collapse_callbacks.errors import CollapseCallbacksError

    try:
        return {"profile": _profile, "check": _check, "demo": _demo}[args.command](args)
    except BrokenPipeError:
        # The reader (e.g. `| head`) went away: not an error of ours.
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silence the flush at exit
        return EXIT_OK
    except (CollapseCallbacksError, ValueError, OSError) as exc:
        if os.environ.get("COLLAPSE_GATE_DEBUG"):
            raise
        print(f"collapse-gate: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Exception as exc:  # an internal error must still be one readable line
        if os.environ.get("COLLAPSE_GATE_DEBUG"):
            raise
        print(
            f"collapse-gate: internal error ({type(exc).__name__}): {exc}; "
            "rerun with COLLAPSE_GATE_DEBUG=1 for a traceback",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT
