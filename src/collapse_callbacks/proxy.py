"""A proxy model for the two model dimensions when there is no training run.

Inside the Lightning / Hugging Face callbacks the user's model is probed. From the CLI
or ``CollapseGate`` there is no model, so a small one is trained on the candidate and
probed the same way (:func:`collapse_callbacks.probes.run_probes`):

* without a target, a denoising autoencoder of the encoded rows (what a generative model
  of the table learns: the data's manifold);
* with ``target``, a predictor of that column from the others (cross-entropy for a
  categorical or boolean column, MSE on the standardized value for a numeric one).

The proxy is trained on part of the candidate sample and probed on the *held-out* rest
against reference rows. Both are rows it never saw, so when the candidate is more real
data its loss, gradients and curvature on the two sides are equal in expectation;
training rows would be easier and would make every real candidate look collapsed.
What differs is what collapse does: a narrowed candidate is easier to model, so the
proxy's loss on its own (held-out) kind of rows falls below its loss on real rows.

With a target there is also *utility*: the proxy trained on candidate rows is tested on
reference rows (TSTR) against a twin trained on as many reference rows (TRTR); see
:func:`_utility_signal`. The signal joins the ``loss_landscape`` evidence, so the
false-alarm budget is split exactly as it is with the user's model.

Everything is deterministic for a seed: numpy generators for the row splits, a forked
torch RNG and seeded torch generators for the model, one torch thread (a model this
small gains nothing from threads, and fixed threading keeps results identical).
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import stats

from collapse_callbacks.adamw import AdamW
from collapse_callbacks.comparison import MAX_CATEGORIES_ENCODED, Comparison, Part
from collapse_callbacks.data.roles import ColumnRole
from collapse_callbacks.dimensions import gradients, landscape
from collapse_callbacks.dimensions.base import DimensionEvidence, Signal, SignalKind
from collapse_callbacks.errors import DataError

if TYPE_CHECKING:
    from collapse_callbacks.gate import CollapseGate, Progress
    from collapse_callbacks.report import GateReport

# Probe size. The probe signals are Welch tests on per-batch values, judged at a share
# of alpha near 1e-4, where a t-test's critical value depends strongly on its degrees of
# freedom (4.4 at 14, 3.4 at infinity): 16 batches a side detected more recursive
# generations than 8 at the same false-alarm rate (benchmarks/quality/proxy_calibration.py).
# Batches shrink (to MIN_BATCH_ROWS) before their number does, so a table of a few
# hundred rows still gets 16 batches.
PROBE_BATCHES = 16
PROBE_BATCH_ROWS = 64
MIN_BATCH_ROWS = 4
# The proxy trains on the candidate rows that are not held out for the probe, up to this
# many (a 64-unit MLP learns a table's structure from a few thousand rows).
MAX_TRAIN_ROWS = 5_000
# The reference rows that test utility; enough for a sharp estimate, bounded for time.
MAX_TEST_ROWS = 5_000
HIDDEN = 64
BATCH = 256
EPOCHS = 40
# A table of a hundred rows is one batch per epoch: 40 steps would leave the proxy
# untrained, so a minimum number of optimizer steps applies as well.
MIN_STEPS = 300
LEARNING_RATE = 3e-3
WEIGHT_DECAY = 1e-3
# Input corruption of the denoising autoencoder, in reference standard deviations: large
# enough that copying the input does not solve the task, small enough to keep the rows
# recognizable.
DENOISING_NOISE = 0.5
# Utility tolerance: a candidate that costs a model more than a tenth of the accuracy or
# R^2 a real training set of the same size gives is a practical failure for whoever
# trains on it, and the order of loss that TSTR studies of synthetic tables call poor.
# Two real samples of a few hundred rows rarely differ by that much (the 5th percentile
# of the ratio on real splits is 0.93 or above in benchmarks/quality/proxy_calibration.py),
# so a real candidate does not sit at the edge of the tolerance.
UTILITY_TOLERANCE = 0.10
# R^2 below this on real data means the target is barely predictable from the other
# columns: a relative loss of almost nothing is noise, so utility is not tested.
MIN_UTILITY = 0.05
# Test-row bootstrap resamples (for a standard error, not a percentile p-value).
BOOTSTRAP = 2_000
BOOTSTRAP_CHUNK = 250
# Models refitted per side to measure training noise: 14 degrees of freedom together;
# each costs one proxy fit (about 0.3 s on 5,000 rows on one CPU thread).
REFITS = 8


@dataclass(frozen=True)
class Task:
    """What the proxy learns: its inputs (encoded column indices), and its output."""

    kind: str  # "reconstruct", "classify" or "regress"
    inputs: np.ndarray  # indices into the encoded columns
    target: str | None = None
    classes: int = 0  # classify: number of classes

    @property
    def outputs(self) -> int:
        if self.kind == "reconstruct":
            return len(self.inputs)
        return self.classes if self.kind == "classify" else 1

    def describe(self) -> str:
        if self.kind == "reconstruct":
            return (
                f"a denoising autoencoder ({len(self.inputs)} encoded columns, "
                f"{HIDDEN}-{_bottleneck(len(self.inputs))}-{HIDDEN} MLP)"
            )
        what = f"a {self.classes}-class classifier" if self.kind == "classify" else "a regressor"
        return (
            f"{what} of `{self.target}` from {len(self.inputs)} encoded columns "
            f"({HIDDEN}-{HIDDEN} MLP)"
        )


@dataclass(frozen=True)
class Design:
    """Model-ready rows: standardized inputs and, with a target, the outputs."""

    x: np.ndarray  # float32 [rows, inputs]
    y: np.ndarray | None  # int64 codes or float32 values; None for the autoencoder

    def __len__(self) -> int:
        return len(self.x)

    def take(self, rows: np.ndarray) -> Design:
        return Design(self.x[rows], None if self.y is None else self.y[rows])


# -- public API -------------------------------------------------------------------------


def proxy_evidence(
    comparison: Comparison, *, target: str | None = None, seed: int
) -> list[DimensionEvidence]:
    """Evidence for ``gradient_health`` and ``loss_landscape`` from a proxy model trained
    on the candidate sample; with ``target``, ``loss_landscape`` also holds the
    ``utility_ratio`` signal and the utility statistics. Raises :class:`DataError` when
    ``target`` is not a shared numeric, boolean or categorical column."""
    task = make_task(comparison, target)
    if len(task.inputs) == 0:
        other = "other " if target is not None else ""
        return _not_run(f"no {other}numeric or categorical columns to train a proxy model on")
    split = _split(comparison, task, seed)
    if split.reason is not None:
        return _not_run(split.reason)
    scaling = _standardization(comparison)
    reference = _design(comparison, task, scaling, Part(comparison.reference_view, split.reference))
    candidate = _design(comparison, task, scaling, Part(comparison.candidate_view, split.candidate))
    return _with_torch(lambda torch: _evidence(torch, task, split, reference, candidate, seed))


def check_with_proxy(
    gate: CollapseGate,
    candidate: Any,
    *,
    target: str | None = None,
    progress: Progress | None = None,
) -> GateReport:
    """``gate.check(candidate)`` with the model dimensions measured on a proxy model."""
    from threadpoolctl import threadpool_limits

    if gate.reference is None:
        raise ValueError("the proxy model compares with reference rows: give the gate a reference")
    started = time.perf_counter()
    if target is not None:
        # Before reading anything whole: the schemas alone say whether the target exists.
        check_target(gate.align(gate._open(candidate, columns=gate.columns)).roles, target)
    # One BLAS thread, as gate.check runs: see gate.run_dimensions.
    with threadpool_limits(limits=1):
        comparison, alignment = gate.compare(candidate, progress=progress)
        evidence = proxy_evidence(comparison, target=target, seed=gate.seed)
        return gate.judge(
            comparison,
            alignment,
            extra_evidence=evidence,
            notes=[proxy_note(comparison, target, evidence)],
            started=started,
        )


def proxy_note(
    comparison: Comparison, target: str | None, evidence: Sequence[DimensionEvidence]
) -> str:
    """One sentence for the report: which proxy was trained and how it was probed."""
    task = make_task(comparison, target)
    statistics = next((e.statistics for e in evidence if e.name == landscape.NAME), {})
    if "proxy_train_rows" not in statistics:
        return f"no model given: a proxy, {task.describe()}, could not be trained"
    note = (
        f"no model given: the model dimensions probe a proxy, {task.describe()}, trained on "
        f"{statistics['proxy_train_rows']:.0f} candidate rows and probed on "
        f"{statistics['probe_batches']:.0f} batches of {statistics['probe_batch_rows']:.0f} "
        "held-out candidate rows against as many reference rows"
    )
    if "utility_reference" in statistics:
        note += (
            f"; utility: trained on candidate vs on {statistics['utility_train_rows']:.0f} "
            f"reference rows, tested on {statistics['utility_test_rows']:.0f} other reference rows"
        )
    return note


# -- the task and the rows ---------------------------------------------------------------


def check_target(roles: dict, target: str) -> ColumnRole:
    """The target's role; a DataError when it is not a shared, predictable column."""
    role = roles.get(target)
    if role is None:
        shared = ", ".join(roles) or "none"
        raise DataError(
            f"--target: not a column of both the reference and the candidate (shared: {shared})",
            column=target,
        )
    if role not in (ColumnRole.NUMERIC, ColumnRole.CATEGORICAL, ColumnRole.BOOLEAN):
        raise DataError(
            f"--target: a {role} column cannot be predicted; choose a numeric, boolean or "
            "categorical column",
            column=target,
        )
    return role


def make_task(comparison: Comparison, target: str | None) -> Task:
    columns = encoded_columns(comparison)
    width = comparison.encoder.width
    if target is None:
        return Task("reconstruct", np.arange(width))
    role = check_target(comparison.roles, target)
    # The target's own encoded columns (value, missing flag, one-hot) would give it away.
    inputs = np.setdiff1d(np.arange(width), columns[target])
    if role is ColumnRole.NUMERIC:
        return Task("regress", inputs, target)
    # The reference's most frequent categories; rarer ones share the last class.
    classes = max(2, min(len(comparison.categories[target]), MAX_CATEGORIES_ENCODED + 1))
    return Task("classify", inputs, target, classes)


def encoded_columns(comparison: Comparison) -> dict[str, np.ndarray]:
    """Each data column's indices in ``comparison.encoder``'s output (a numeric column's
    value and missing flag, a categorical column's one-hot block)."""
    sources = np.asarray(comparison.encoder.sources(comparison), dtype=object)
    return {name: np.flatnonzero(sources == name) for name in dict.fromkeys(sources)}


@dataclass(frozen=True)
class Split:
    """Sample row indices: the reference rows then the candidate rows the proxy uses.

    ``reference`` is [probe/test rows, then TRTR training rows]; ``candidate`` is
    [held-out probe rows, then training rows]. The counts say where each part ends.
    """

    reference: np.ndarray
    candidate: np.ndarray
    probe_rows: int
    test_rows: int  # reference rows that test utility (the probe's rows are the first)
    train_rows: int  # candidate training rows
    reference_train_rows: int
    reason: str | None = None


def _split(comparison: Comparison, task: Task, seed: int) -> Split:
    rng = _rng(seed, "proxy rows")
    reference = _usable(comparison.reference_view, task, rng)
    candidate = _usable(comparison.candidate_view, task, rng)
    # Half the candidate at most is held out, and no more than the probe batches use:
    # the rest trains the proxy.
    probe = min(PROBE_BATCHES * PROBE_BATCH_ROWS, len(candidate) // 2)
    if task.target is None:
        probe = min(probe, len(reference))
        test = train_reference = 0
    else:
        # Utility: half the reference tests, the other half trains the TRTR twin.
        test = min(len(reference) // 2, MAX_TEST_ROWS)
        probe = min(probe, test)
    train = min(len(candidate) - probe, MAX_TRAIN_ROWS)
    if task.target is not None:
        # Never more real training rows than candidate ones: a larger real training set
        # would make the candidate look worse for its size alone (fewer is conservative).
        train_reference = min(len(reference) - test, train)
    reason = None
    if probe < 2 * MIN_BATCH_ROWS:
        reason = (
            f"too few rows for a proxy model ({len(candidate)} candidate and "
            f"{len(reference)} reference rows usable; 2 probe batches of {MIN_BATCH_ROWS} a side "
            "and as many training rows are needed)"
        )
    elif train < 2 * MIN_BATCH_ROWS:
        reason = f"too few candidate rows left to train a proxy model ({train})"
    return Split(
        reference=reference[: max(probe, test) + train_reference],
        candidate=candidate[: probe + train],
        probe_rows=probe,
        test_rows=test,
        train_rows=train,
        reference_train_rows=train_reference,
        reason=reason,
    )


def _usable(view, task: Task, rng: np.random.Generator) -> np.ndarray:
    """The view's rows in random order, without those missing the target."""
    order = rng.permutation(view.rows)
    if task.kind == "classify":
        return order[view.codes(task.target)[order] >= 0]
    if task.kind == "regress":
        return order[np.isfinite(view.numeric(task.target)[order])]
    return order


def _design(comparison: Comparison, task: Task, scaling, part: Part) -> Design:
    mean, sd = scaling
    x = ((comparison.encoder.encode(part) - mean) / sd)[:, task.inputs].astype(np.float32)
    if task.kind == "classify":
        codes = part.codes(task.target)
        return Design(x, np.minimum(codes, task.classes - 1).astype(np.int64))
    if task.kind == "regress":
        center, scale = _target_scale(comparison, task.target)
        return Design(x, ((part.numeric(task.target) - center) / scale).astype(np.float32))
    return Design(x, None)


def _standardization(comparison: Comparison) -> tuple[np.ndarray, np.ndarray]:
    """Mean and SD of the encoded reference sample. Fitted on real data so that a
    narrowed candidate stays narrow in the proxy's inputs; a column constant in the
    reference keeps its scale (SD 1)."""
    view = comparison.reference_view
    encoded = comparison.encoder.encode(Part(view, np.arange(view.rows)))
    sd = encoded.std(axis=0)
    return encoded.mean(axis=0), np.where(sd > 1e-12, sd, 1.0)


def _target_scale(comparison: Comparison, target: str) -> tuple[float, float]:
    values = comparison.reference_view.numeric(target)
    values = values[np.isfinite(values)]
    sd = float(values.std()) if len(values) else 0.0
    return (float(values.mean()) if len(values) else 0.0), (sd if sd > 0 else 1.0)


def _rng(seed: int, purpose: str) -> np.random.Generator:
    """A generator per purpose, as Comparison.rng: one purpose's draws never shift another's."""
    digest = hashlib.sha256(f"{seed}:{purpose}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def _not_run(reason: str) -> list[DimensionEvidence]:
    return [
        DimensionEvidence(gradients.NAME, not_run=reason),
        DimensionEvidence(landscape.NAME, not_run=reason),
    ]


# -- torch -------------------------------------------------------------------------------


def _with_torch(work):
    """Run ``work(torch)`` on one torch thread with a forked RNG (restored after)."""
    import torch

    threads = torch.get_num_threads()
    devices = [torch.cuda.current_device()] if torch.cuda.is_available() else []
    # A 64-unit MLP is too small to gain from intra-op threads, and on a busy host their
    # spin-waiting makes each step many times slower.
    torch.set_num_threads(1)
    try:
        with torch.random.fork_rng(devices=devices):
            return work(torch)
    finally:
        torch.set_num_threads(threads)


def _evidence(torch, task: Task, split: Split, reference: Design, candidate: Design, seed: int):
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    p, t = split.probe_rows, split.train_rows
    train = candidate.take(np.arange(p, p + t))
    model = _fit(torch, device, task, train, _seed(seed, "proxy"))
    reference_batches, candidate_batches, batch_rows = _probe_batches(
        torch, device, task, reference.take(np.arange(p)), candidate.take(np.arange(p)), seed
    )
    from collapse_callbacks.probes import ProbeTarget, run_probes

    probe = ProbeTarget(model=model, loss=lambda batch: _loss(torch, task, model, *batch))
    measured = run_probes(probe, reference_batches, candidate_batches, seed=seed)
    health = gradients.run([measured])
    shape = landscape.run([measured])
    statistics = {
        **shape.statistics,
        "proxy_train_rows": float(t),
        "probe_batches": float(len(candidate_batches)),
        "probe_batch_rows": float(batch_rows),
    }
    signals = shape.signals
    if task.target is not None:
        rows = _utility_rows(split, reference, train)
        utility, utility_statistics = _utility(torch, device, task, rows, model, seed)
        statistics.update(utility_statistics)
        signals = signals + ((utility,) if utility is not None else ())
    if shape.not_run is not None and not signals:
        return [health, shape]
    # A utility signal keeps the dimension running even when the losses could not be
    # compared (its not_run reason would otherwise hide it).
    return [
        health,
        dataclasses.replace(shape, signals=signals, statistics=statistics, not_run=None),
    ]


def _utility_rows(split: Split, reference: Design, train: Design) -> UtilityRows:
    start = max(split.probe_rows, split.test_rows)
    return UtilityRows(
        real=reference.take(np.arange(start, start + split.reference_train_rows)),
        candidate=train,
        test=reference.take(np.arange(split.test_rows)),
    )


def _seed(seed: int, purpose: str) -> int:
    return int(_rng(seed, purpose).integers(2**31))


def _network(torch, task: Task):
    width = len(task.inputs)
    if task.kind == "reconstruct":
        code = _bottleneck(width)
        layers = [width, HIDDEN, code, HIDDEN]
    else:
        layers = [width, HIDDEN, HIDDEN]
    modules = []
    for a, b in itertools.pairwise(layers):
        modules += [torch.nn.Linear(a, b), torch.nn.ReLU()]
    return torch.nn.Sequential(*modules, torch.nn.Linear(layers[-1], task.outputs))


def _bottleneck(width: int) -> int:
    # Narrower than the input, so the autoencoder must learn the columns' dependence.
    return max(2, min(16, width // 2))


def _fit(torch, device, task: Task, rows: Design, seed: int):
    """Train a fresh proxy on ``rows`` (AdamW, shuffled minibatches, seeded)."""
    torch.manual_seed(seed)
    model = _network(torch, task).to(device)
    x = torch.from_numpy(rows.x).to(device)
    y = None if rows.y is None else torch.from_numpy(rows.y).to(device)
    optimizer = AdamW(model.parameters(), lr=LEARNING_RATE, weight_decay=WEIGHT_DECAY)
    autocast = torch.autocast(
        device_type="cuda", dtype=torch.bfloat16, enabled=device.type == "cuda"
    )
    generator = torch.Generator(device="cpu").manual_seed(seed)
    batch = min(BATCH, len(x))
    per_epoch = math.ceil(len(x) / batch)
    steps = max(EPOCHS * per_epoch, MIN_STEPS)
    step = 0
    while step < steps:
        order = torch.randperm(len(x), generator=generator).to(device)
        for start in range(0, len(x) - batch + 1, batch):
            index = order[start : start + batch]
            inputs, outputs = _training_pair(torch, task, x[index], y, index, generator)
            optimizer.zero_grad()
            with autocast:
                loss = _loss(torch, task, model, inputs, outputs, cast=True)
            loss.backward()
            optimizer.step()
            step += 1
            if step == steps:
                break
    model.eval()
    return model


def _training_pair(torch, task: Task, x, y, index, generator):
    if task.kind == "reconstruct":
        return _corrupt(torch, x, generator), x
    return x, y[index]


def _corrupt(torch, x, generator):
    noise = torch.randn(x.shape, generator=generator, dtype=torch.float32).to(x.device)
    return x + DENOISING_NOISE * noise


def _loss(torch, task: Task, model, inputs, outputs, cast: bool = False):
    predicted = model(inputs)
    if cast:
        predicted = predicted.float()
    if task.kind == "classify":
        return torch.nn.functional.cross_entropy(predicted, outputs)
    if task.kind == "regress":
        return torch.nn.functional.mse_loss(predicted.squeeze(-1), outputs)
    return torch.nn.functional.mse_loss(predicted, outputs)


def _probe_batches(torch, device, task: Task, reference: Design, candidate: Design, seed: int):
    """Equal numbers of equal batches a side: (reference, candidate, rows per batch).
    The autoencoder's input noise is drawn once per batch, so the repeated forward passes
    of the landscape probe see the same loss function."""
    rows = min(len(reference), len(candidate))
    size = max(MIN_BATCH_ROWS, min(PROBE_BATCH_ROWS, rows // PROBE_BATCHES))
    count = min(PROBE_BATCHES, rows // size)
    generator = torch.Generator(device="cpu").manual_seed(_seed(seed, "probe noise"))
    sides = []
    for design in (reference, candidate):
        batches = []
        for b in range(count):
            part = design.take(np.arange(b * size, (b + 1) * size))
            x = torch.from_numpy(part.x)
            if task.kind == "reconstruct":
                batches.append((_corrupt(torch, x, generator).to(device), x.to(device)))
            else:
                batches.append((x.to(device), torch.from_numpy(part.y).to(device)))
        sides.append(batches)
    return sides[0], sides[1], size


# -- utility (train on synthetic, test on real) -------------------------------------------


@dataclass(frozen=True)
class UtilityRows:
    """The rows utility needs: real training rows (TRTR), candidate training rows (the
    proxy's, TSTR), and the real test rows both are scored on."""

    real: Design
    candidate: Design
    test: Design


def _utility(torch, device, task, rows: UtilityRows, tstr, seed: int):
    """(signal or None, statistics): TSTR (the proxy) against TRTR (a twin trained on as
    many real rows) on the same held-out reference rows."""
    statistics = {
        "utility_train_rows": float(len(rows.real)),
        "utility_test_rows": float(len(rows.test)),
    }
    if len(rows.real) < 2 * MIN_BATCH_ROWS or len(rows.test) < 2 * MIN_BATCH_ROWS:
        return None, statistics
    trtr = _fit(torch, device, task, rows.real, _seed(seed, "trtr"))
    scores = [_row_scores(torch, task, model, rows.test) for model in (trtr, tstr)]
    y = rows.test.y.astype(np.float64)
    real, synthetic = (_metric(task, score, y) for score in scores)
    statistics.update({"utility_reference": real, "utility_candidate": synthetic})
    if not real > MIN_UTILITY:
        return None, statistics  # the target is barely predictable even from real rows
    refits = [
        _refit_utilities(torch, device, task, design, rows.test, seed, label)
        for design, label in ((rows.real, "trtr"), (rows.candidate, "tstr"))
    ]
    test_se = float(_bootstrap_differences(task, y, *scores, _rng(seed, "utility")).std(ddof=1))
    signal = _utility_signal(task, len(y), real, synthetic, test_se, refits)
    statistics.update(
        {
            "utility_ratio": signal.value,
            "utility_test_se": test_se,
            "utility_training_sd": float(np.sqrt(np.mean([r.var(ddof=1) for r in refits]))),
        }
    )
    return signal, statistics


def _refit_utilities(torch, device, task, rows: Design, test: Design, seed, label: str):
    """The utility of REFITS models, each trained on a bootstrap resample of ``rows``
    with its own seed: how much the utility moves with the training sample and the
    optimizer's randomness (bagging's resampling, for its spread alone)."""
    rng = _rng(seed, f"{label} refits")
    y = test.y.astype(np.float64)
    out = []
    for _ in range(REFITS):
        resample = rows.take(rng.integers(0, len(rows), size=len(rows)))
        model = _fit(torch, device, task, resample, int(rng.integers(2**31)))
        out.append(_metric(task, _row_scores(torch, task, model, test), y))
    return np.asarray(out)


def _row_scores(torch, task: Task, model, rows: Design) -> np.ndarray:
    """Per test row: 1/0 correct (classify), or squared error (regress)."""
    with torch.no_grad():
        device = next(model.parameters()).device
        predicted = model(torch.from_numpy(rows.x).to(device)).float().cpu().numpy()
    if task.kind == "classify":
        return (predicted.argmax(axis=1) == rows.y).astype(np.float64)
    return (predicted[:, 0] - rows.y).astype(np.float64) ** 2


def _metric(task: Task, scores: np.ndarray, y: np.ndarray) -> float:
    if task.kind == "classify":
        return float(scores.mean())
    total = float(((y - y.mean()) ** 2).sum())
    return 1.0 - float(scores.sum()) / total if total > 0 else math.nan


def _utility_signal(
    task: Task, test_rows: int, real: float, synthetic: float, test_se: float, refits
) -> Signal:
    """``utility_ratio`` = TSTR / TRTR, narrowing, one-sided (the candidate-trained model
    is worse on real rows), tested as TRTR - TSTR > 0.

    Two noises move the difference when the candidate is just more real data:
    * the test rows: a paired bootstrap over them (both models scored on the same
      resampled rows, so rows both get right or wrong cancel) gives ``test_se``;
    * the training: another real sample, or another seed, gives another model. The
      bootstrap over test rows cannot see this; alone it gave real splits p < 0.05 up to
      17% of the time (benchmarks/quality/proxy_calibration.py). Each side's refits
      estimate it, with 2 (REFITS - 1) degrees of freedom.
    The difference over their combined standard error is referred to a Student t with
    Welch-Satterthwaite degrees of freedom.
    """
    train_var = [float(r.var(ddof=1)) for r in refits]
    variance = test_se**2 + sum(train_var)
    difference = real - synthetic
    if variance > 0:
        df = variance**2 / (
            sum(v**2 / (REFITS - 1) for v in train_var) + test_se**4 / max(test_rows - 1, 1)
        )
        p_value = float(stats.t.sf(difference / math.sqrt(variance), df))
    else:
        p_value = float(difference <= 0)  # every model agrees on every test row
    ratio = synthetic / real
    metric = "accuracy" if task.kind == "classify" else "R^2"
    return Signal(
        name="utility_ratio",
        kind=SignalKind.NARROWING,
        column=task.target,
        value=ratio,
        reference_value=1.0,
        effect=1.0 - ratio,
        tolerance=UTILITY_TOLERANCE,
        noise=math.sqrt(variance) / real,
        p_value=p_value,
        sentence=(
            f"a model of `{task.target}` trained on candidate rows reaches {metric} "
            f"{synthetic:.3f} on real rows, against {real:.3f} when trained on as many real "
            f"rows ({ratio:.2f}x the utility; {test_rows} test rows)"
        ),
    )


def _bootstrap_differences(task: Task, y, trtr, tstr, rng: np.random.Generator) -> np.ndarray:
    n = len(y)
    out = []
    for start in range(0, BOOTSTRAP, BOOTSTRAP_CHUNK):
        rows = rng.integers(0, n, size=(min(BOOTSTRAP_CHUNK, BOOTSTRAP - start), n))
        if task.kind == "classify":
            out.append(trtr[rows].mean(axis=1) - tstr[rows].mean(axis=1))
            continue
        resampled = y[rows]
        total = ((resampled - resampled.mean(axis=1, keepdims=True)) ** 2).sum(axis=1)
        total = np.where(total > 0, total, np.nan)
        # R^2 difference on the same rows: (SSE_tstr - SSE_trtr) / SST.
        out.append((tstr[rows].sum(axis=1) - trtr[rows].sum(axis=1)) / total)
    differences = np.concatenate(out)
    return differences[np.isfinite(differences)]
