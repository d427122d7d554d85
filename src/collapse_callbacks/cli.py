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
    return parser


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

    return open_source(
        source,
        format=args.format,
        columns=args.columns,
        exclude=args.exclude,
        roles=_roles(args.role),
        max_rows=args.max_rows,
        sheet=args.sheet,
        key=args.key,
        encoding=args.encoding,
    )


def _profile(args: argparse.Namespace) -> int:
    from collapse_callbacks.profile.render import render_profile
    from collapse_callbacks.profile.table import build_profile

    stream = _open(args, args.source)
    summary = build_profile(stream, stream.roles, source=args.source).result()
    if args.json == "-":
        json.dump(summary.to_dict(), sys.stdout, indent=2)
        sys.stdout.write("\n")
        return EXIT_OK
    sys.stdout.write(render_profile(summary))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump(summary.to_dict(), out, indent=2)
            out.write("\n")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (the console script exits with it)."""
    args = _parser().parse_args(argv)
    from collapse_callbacks.errors import CollapseCallbacksError

    try:
        return {"profile": _profile}[args.command](args)
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
