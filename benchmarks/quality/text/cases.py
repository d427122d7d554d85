"""Text cases: a reference and a candidate list of documents, with what the candidate is.

Kinds (``TextCase.kind``):

- ``real``: disjoint random splits of one corpus; a flag is a false alarm.
- ``generation``: Shumailov's recursive setup. A chain draws a reference and a disjoint
  real training split (generation 0, emitted as a case too) of ``chain_docs`` documents;
  generation g is sampled from a model fitted on generation g-1 (``generators.py``).
- ``mixture``: the chain's real candidate with a fraction of its documents replaced by
  generation-g documents of the same chain.

``TextCase.loader`` marks the smaller set of cases that also go through the DataLoader
path (token ids instead of strings). Everything is deterministic from ``(base seed, the
case's key)``, as in the tabular harness.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from .generators import FAMILIES, TEMPERATURES, family_label, run_chains


@dataclass(frozen=True)
class Plan:
    real_sizes: tuple[int, ...]  # candidate documents; the reference has ratio x as many
    real_ratios: tuple[int, ...]
    real_repeats: int
    chain_docs: int  # reference and real candidate of a chain (capped at half the corpus)
    generations: int  # generations 1..G are sampled (0, the real candidate, is added)
    chains: int  # per corpus and model family
    families: tuple[str, ...]
    temperatures: tuple[float, ...]
    low_temperature_families: tuple[str, ...]  # the others are sampled at 1.0 only
    mixture_fractions: tuple[float, ...]
    mixture_generations: tuple[int, ...]
    mixture_temperatures: tuple[float, ...]  # which temperatures' chains give mixtures
    loader_real_repeats: int  # real cases per (corpus, size, ratio) also run as tokens
    loader_generations: tuple[int, ...]  # first chain, temperature 1.0


QUICK = Plan(
    real_sizes=(250, 1000),
    real_ratios=(1,),
    real_repeats=4,
    chain_docs=1000,
    generations=3,
    chains=1,
    families=tuple(FAMILIES),
    temperatures=TEMPERATURES,
    low_temperature_families=("ngram",),  # an LSTM chain costs ~1 min; the n-gram ~5 s
    mixture_fractions=(0.1, 0.3),
    mixture_generations=(1, 3),
    mixture_temperatures=(1.0,),
    loader_real_repeats=1,
    loader_generations=(1, 3),
)

FULL = Plan(
    real_sizes=(250, 1000, 4000),
    real_ratios=(1, 4),
    real_repeats=20,
    chain_docs=1000,
    generations=5,
    chains=2,
    families=tuple(FAMILIES),
    temperatures=TEMPERATURES,
    low_temperature_families=tuple(FAMILIES),
    mixture_fractions=(0.1, 0.3),
    mixture_generations=(1, 3),
    mixture_temperatures=(1.0, 0.7),
    loader_real_repeats=5,
    loader_generations=(0, 1, 2, 3, 5),
)


@dataclass(frozen=True)
class TextCase:
    id: str
    kind: str
    dataset: str  # the corpus ("dataset" so the tabular report's tables read it)
    seed: int
    reference: list[str] = field(repr=False)
    candidate: list[str] = field(repr=False)
    family: str | None = None  # model family with temperature, e.g. "lstm@T0.7"
    model: str | None = None
    temperature: float | None = None
    generation: int | None = None
    fraction: float | None = None
    chain: int | None = None
    loader: bool = False

    @property
    def expect_collapse(self) -> bool:
        if self.kind == "generation":
            return bool(self.generation)
        return self.kind == "mixture"

    def labels(self) -> dict:
        return {
            "id": self.id,
            "kind": self.kind,
            "dataset": self.dataset,
            "seed": self.seed,
            "n_ref": len(self.reference),
            "n_cand": len(self.candidate),
            "family": self.family,
            "model": self.model,
            "temperature": self.temperature,
            "generation": self.generation,
            "fraction": self.fraction,
            "chain": self.chain,
            "loader": self.loader,
            "expect_collapse": self.expect_collapse,
        }


def _rng(base_seed: int, key: str) -> np.random.Generator:
    return np.random.default_rng([base_seed, zlib.crc32(key.encode())])


def _seed_for(base_seed: int, key: str) -> int:
    return int(_rng(base_seed, key + "/detector").integers(0, 2**31 - 1))


def _take(docs: list[str], rows: np.ndarray) -> list[str]:
    return [docs[int(i)] for i in rows]


def real_sizes(n_docs: int, plan: Plan, ratio: int) -> list[int]:
    sizes = [n for n in plan.real_sizes if n * (1 + ratio) <= n_docs]
    return sizes or [n_docs // (1 + ratio)]


def real_cases(name: str, docs: list[str], plan: Plan, base_seed: int) -> Iterator[TextCase]:
    for ratio in plan.real_ratios:
        for n in real_sizes(len(docs), plan, ratio):
            for repeat in range(plan.real_repeats):
                key = f"real/{name}/{n}x{ratio}/{repeat}"
                order = _rng(base_seed, key).permutation(len(docs))
                yield TextCase(
                    id=key,
                    kind="real",
                    dataset=name,
                    seed=_seed_for(base_seed, key),
                    reference=_take(docs, order[: n * ratio]),
                    candidate=_take(docs, order[n * ratio : n * (ratio + 1)]),
                    loader=repeat < plan.loader_real_repeats and n <= 1000,
                )


@dataclass
class GenerationLog:
    """Seconds spent fitting and sampling, per (corpus, model family)."""

    seconds: dict[str, list[float]] = field(default_factory=dict)

    def add(self, key: str, seconds: float) -> None:
        self.seconds.setdefault(key, []).append(seconds)


def generation_cases(
    name: str, docs: list[str], plan: Plan, base_seed: int, log: GenerationLog | None = None
) -> Iterator[TextCase]:
    """Chains per model family; each temperature is its own chain after generation 1.
    The first chain also yields the mixture cases."""
    n = min(plan.chain_docs, len(docs) // 2)
    for model in plan.families:
        for chain_index in range(plan.chains):
            key = f"chain/{name}/{model}/{chain_index}"
            rng = _rng(base_seed, key)
            order = rng.permutation(len(docs))
            reference = _take(docs, order[:n])
            real = _take(docs, order[n : 2 * n])
            temperatures = plan.temperatures if model in plan.low_temperature_families else (1.0,)
            start = time.perf_counter()
            chains = run_chains(real, FAMILIES[model], plan.generations, temperatures, rng)
            if log is not None:
                log.add(f"{name}/{model}", time.perf_counter() - start)
            for temperature, chain in chains.items():
                label = family_label(model, temperature)
                for g in range(plan.generations + 1):
                    case_key = f"{key}/{label}/g{g}"
                    yield TextCase(
                        id=case_key,
                        kind="generation",
                        dataset=name,
                        seed=_seed_for(base_seed, case_key),
                        reference=reference,
                        candidate=chain[g],
                        family=label,
                        model=model,
                        temperature=temperature,
                        generation=g,
                        chain=chain_index,
                        loader=(
                            chain_index == 0 and temperature == 1.0 and g in plan.loader_generations
                        ),
                    )
                if chain_index == 0 and temperature in plan.mixture_temperatures:
                    yield from _mixtures(key, name, reference, chain, plan, base_seed, label)


def _mixtures(key, name, reference, chain, plan, base_seed, label) -> Iterator[TextCase]:
    real = chain[0]
    for g in plan.mixture_generations:
        if g >= len(chain):
            continue
        for fraction in plan.mixture_fractions:
            case_key = f"{key}/{label}/mix{fraction:g}/g{g}"
            rng = _rng(base_seed, case_key)
            m = round(fraction * len(real))
            keep = rng.choice(len(real), size=len(real) - m, replace=False)
            synthetic = rng.choice(len(chain[g]), size=m, replace=False)
            mixed = _take(real, keep) + _take(chain[g], synthetic)
            mixed = _take(mixed, rng.permutation(len(mixed)))
            yield TextCase(
                id=case_key,
                kind="mixture",
                dataset=name,
                seed=_seed_for(base_seed, case_key),
                reference=reference,
                candidate=mixed,
                family=label,
                model=label.split("@")[0],
                temperature=chain_temperature(label),
                generation=g,
                fraction=fraction,
                chain=0,
                loader=fraction == max(plan.mixture_fractions) and chain_temperature(label) == 1.0,
            )


def chain_temperature(label: str) -> float:
    return float(label.split("@T")[1]) if "@T" in label else 1.0
