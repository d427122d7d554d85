"""Real example tables that installed packages ship, named ``example:NAME``.

They let the demo and the docs run on real data with nothing to download:
``collapse-gate profile example:penguins``.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass

from collapse_callbacks.errors import DataError, MissingDependencyError

PREFIX = "example:"


@dataclass(frozen=True)
class Example:
    package: str
    resource: str
    extra: str
    about: str


EXAMPLES = {
    "penguins": Example(
        "palmerpenguins",
        "data/penguins.csv",
        "examples",
        "Palmer Station penguins: 344 birds, 3 species, measurements (CC0)",
    ),
    "penguins-raw": Example(
        "palmerpenguins",
        "data/penguins-raw.csv",
        "examples",
        "Palmer Station penguins, raw field records with comments (CC0)",
    ),
}


def is_example(source: object) -> bool:
    return isinstance(source, str) and source.startswith(PREFIX)


def example_path(source: str) -> str:
    name = source[len(PREFIX) :]
    if name not in EXAMPLES:
        raise DataError(f"no example {name!r}; examples: {', '.join(EXAMPLES)}", path=source)
    example = EXAMPLES[name]
    # find_spec locates the package without importing it (palmerpenguins imports pandas).
    spec = importlib.util.find_spec(example.package)
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError(f"the example {name!r}", example.package, example.extra)
    return os.path.join(spec.submodule_search_locations[0], *example.resource.split("/"))
