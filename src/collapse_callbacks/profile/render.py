"""Plain-text rendering of a profile summary for a terminal."""

from __future__ import annotations

from collapse_callbacks.profile.table import ProfileSummary


def render_profile(summary: ProfileSummary) -> str:
    names = list(summary.columns)
    width = max([len("column"), *map(len, names)])
    lines = [
        f"{summary.source or 'data'}: {summary.rows} rows, {len(names)} columns",
        "",
        f"{'column':<{width}}  {'role':<11}  {'nulls':>6}  {'NaN':>5}  summary",
    ]
    for name, column in summary.columns.items():
        nan = getattr(column, "nan", None)
        nan_text = "-" if nan is None else str(nan)
        lines.append(
            f"{name:<{width}}  {column.role:<11}  {column.nulls:>6}  {nan_text:>5}  {column.describe()}"
        )
    return "\n".join(lines) + "\n"
