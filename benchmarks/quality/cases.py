"""Cases: a reference table and a candidate table, with what the candidate really is.

Kinds (``Case.kind``):

- ``real``: disjoint random splits of one dataset. Nothing is wrong; a flag is a false
  alarm.
- ``generation``: Shumailov's recursive setup. The real candidate (generation 0) is fed
  to a generator, whose n samples are generation 1, which is fed to a fresh fit, and so
  on. Generation 0 is emitted too, so a chain's score can be traced from real data.
- ``mixture``: the real candidate with a fraction of its rows replaced by generation-g
  rows of the same chain.
- ``shift``: a real subpopulation (rows above a column's 30th percentile) or a real
  reweighted sample (exponential tilt on one column). Not collapse: the honest answer is
  "shift", not "collapsed".

Everything is deterministic from ``(base seed, the case's key)``: the same case comes out
whatever else is run, in whatever order.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .datasets import numeric_columns
from .generators import FAMILIES, run_chain

# The shift cases: keep rows above this percentile of one column.
FILTER_PERCENTILE = 30
# The shift cases: sampling weight exp(TILT * z) on one standardized column.
TILT = 0.5


@dataclass(frozen=True)
class Plan:
    """How many cases of each kind, and how large."""

    real_sizes: tuple[int, ...]  # candidate rows; the reference has ratio x as many
    real_ratios: tuple[int, ...]
    real_repeats: int
    generation_rows: int  # candidate rows in a chain (capped at half the dataset)
    generations: tuple[int, ...]  # the generations turned into cases (0 is added)
    chains: int  # chains per dataset and family
    families: tuple[str, ...]
    mixture_fractions: tuple[float, ...]
    mixture_generations: tuple[int, ...]
    mixture_families: tuple[str, ...]
    mixture_chains: int  # how many of the chains also give mixture cases
    shift_rows: int
    shift_repeats: int
    # Reference rows per candidate row in the chains and their mixtures.
    reference_ratio: int = 1


QUICK = Plan(
    real_sizes=(250, 2500),
    real_ratios=(1,),
    real_repeats=4,
    generation_rows=1000,
    generations=(1, 3, 5),
    chains=1,
    families=tuple(FAMILIES),
    mixture_fractions=(0.1, 0.3, 0.5),
    mixture_generations=(1, 3, 5),
    mixture_families=("gmm",),
    mixture_chains=1,
    shift_rows=1000,
    shift_repeats=2,
)

FULL = Plan(
    real_sizes=(250, 1000, 5000, 25_000, 100_000),
    real_ratios=(1, 4),
    real_repeats=10,
    generation_rows=5000,
    generations=tuple(range(1, 11)),
    chains=3,
    families=tuple(FAMILIES),
    mixture_fractions=(0.1, 0.3, 0.5),
    mixture_generations=(1, 3, 5),
    mixture_families=tuple(FAMILIES),
    mixture_chains=1,
    shift_rows=5000,
    shift_repeats=5,
)


@dataclass(frozen=True)
class Case:
    id: str
    kind: str
    dataset: str
    seed: int  # handed to the detector
    reference: pd.DataFrame = field(repr=False)
    candidate: pd.DataFrame = field(repr=False)
    family: str | None = None
    generation: int | None = None
    fraction: float | None = None
    shift: str | None = None
    chain: int | None = None

    @property
    def expect_collapse(self) -> bool:
        if self.kind == "generation":
            return bool(self.generation)
        return self.kind == "mixture"

    def labels(self) -> dict:
        """Everything but the frames: what the results file keeps."""
        return {
            "id": self.id,
            "kind": self.kind,
            "dataset": self.dataset,
            "seed": self.seed,
            "n_ref": len(self.reference),
            "n_cand": len(self.candidate),
            "family": self.family,
            "generation": self.generation,
            "fraction": self.fraction,
            "shift": self.shift,
            "chain": self.chain,
            "expect_collapse": self.expect_collapse,
        }


def _rng(base_seed: int, key: str) -> np.random.Generator:
    # crc32 of the key, not hash(): Python salts str hashes per process.
    return np.random.default_rng([base_seed, zlib.crc32(key.encode())])


def _seed_for(base_seed: int, key: str) -> int:
    return int(_rng(base_seed, key + "/detector").integers(0, 2**31 - 1))


def _take(df: pd.DataFrame, rows: np.ndarray) -> pd.DataFrame:
    return df.iloc[rows].reset_index(drop=True)


def real_sizes(n_rows: int, plan: Plan, ratio: int) -> list[int]:
    """Planned candidate sizes that fit twice (ratio+1 times) in the dataset; if none
    does, the largest that fits, so small datasets still get their one split."""
    sizes = [n for n in plan.real_sizes if n * (1 + ratio) <= n_rows]
    return sizes or [n_rows // (1 + ratio)]


def real_cases(name: str, df: pd.DataFrame, plan: Plan, base_seed: int) -> Iterator[Case]:
    for ratio in plan.real_ratios:
        for n in real_sizes(len(df), plan, ratio):
            for repeat in range(plan.real_repeats):
                key = f"real/{name}/{n}x{ratio}/{repeat}"
                order = _rng(base_seed, key).permutation(len(df))
                yield Case(
                    id=key,
                    kind="real",
                    dataset=name,
                    seed=_seed_for(base_seed, key),
                    reference=_take(df, order[: n * ratio]),
                    candidate=_take(df, order[n * ratio : n * (ratio + 1)]),
                )


def generation_cases(name: str, df: pd.DataFrame, plan: Plan, base_seed: int) -> Iterator[Case]:
    """Chains per family; each chain also yields its mixture cases."""
    ratio = plan.reference_ratio
    n = min(plan.generation_rows, len(df) // (ratio + 1))
    last = max([*plan.generations, *plan.mixture_generations])
    for family_name in plan.families:
        family = FAMILIES[family_name]
        for chain_index in range(plan.chains):
            key = f"chain/{name}/{family_name}/{chain_index}"
            rng = _rng(base_seed, key)
            order = rng.permutation(len(df))
            reference = _take(df, order[: ratio * n])
            chain = run_chain(_take(df, order[ratio * n : (ratio + 1) * n]), family, last, rng)
            for g in (0, *plan.generations):
                case_key = f"{key}/g{g}"
                yield Case(
                    id=case_key,
                    kind="generation",
                    dataset=name,
                    seed=_seed_for(base_seed, case_key),
                    reference=reference,
                    candidate=chain[g],
                    family=family_name,
                    generation=g,
                    chain=chain_index,
                )
            if family_name in plan.mixture_families and chain_index < plan.mixture_chains:
                yield from _mixtures(key, name, reference, chain, plan, base_seed, family_name)


def _mixtures(key, name, reference, chain, plan, base_seed, family_name) -> Iterator[Case]:
    real = chain[0]
    for g in plan.mixture_generations:
        for fraction in plan.mixture_fractions:
            case_key = f"{key}/mix{fraction:g}/g{g}"
            rng = _rng(base_seed, case_key)
            m = round(fraction * len(real))
            keep = rng.choice(len(real), size=len(real) - m, replace=False)
            synthetic = rng.choice(len(chain[g]), size=m, replace=False)
            mixed = pd.concat([real.iloc[keep], chain[g].iloc[synthetic]], ignore_index=True)
            # Shuffle so row order gives nothing away.
            mixed = _take(mixed, rng.permutation(len(mixed)))
            yield Case(
                id=case_key,
                kind="mixture",
                dataset=name,
                seed=_seed_for(base_seed, case_key),
                reference=reference,
                candidate=mixed,
                family=family_name,
                generation=g,
                fraction=fraction,
            )


def shift_cases(name: str, df: pd.DataFrame, plan: Plan, base_seed: int) -> Iterator[Case]:
    # Columns with at least 10 distinct values: a percentile of a binary column does not
    # make a subpopulation.
    columns = [c for c in numeric_columns(df) if df[c].nunique() >= 10]
    if not columns:
        return
    n = min(plan.shift_rows, len(df) // 3)
    for kind in ("filter", "reweight"):
        for repeat in range(plan.shift_repeats):
            key = f"shift/{name}/{kind}/{repeat}"
            rng = _rng(base_seed, key)
            column = columns[int(rng.integers(len(columns)))]
            order = rng.permutation(len(df))
            reference = _take(df, order[:n])
            rest = _take(df, order[n:])
            values = rest[column].to_numpy(dtype=float)
            if kind == "filter":
                pool = np.flatnonzero(values > np.percentile(values, FILTER_PERCENTILE))
                rows = rng.choice(pool, size=min(n, len(pool)), replace=False)
            else:
                z = (values - values.mean()) / values.std()
                weights = np.exp(TILT * z)
                rows = rng.choice(len(rest), size=n, replace=False, p=weights / weights.sum())
            yield Case(
                id=key,
                kind="shift",
                dataset=name,
                seed=_seed_for(base_seed, key),
                reference=reference,
                candidate=_take(rest, np.sort(rows)),
                shift=f"{kind}:{column}",
            )


def all_cases(name: str, df: pd.DataFrame, plan: Plan, base_seed: int) -> Iterator[Case]:
    yield from real_cases(name, df, plan, base_seed)
    yield from generation_cases(name, df, plan, base_seed)
    yield from shift_cases(name, df, plan, base_seed)
