"""Model probes: they leave the model, its gradients, buffers, optimizer and random state
exactly as they were, and they see what a broken model does."""

from __future__ import annotations

import copy
import math

import torch

from collapse_callbacks.dimensions import gradients, landscape
from collapse_callbacks.probes import ProbeMeasurements, ProbeTarget, run_probes
from training_task import loaders


def batches(loader, n=4):
    out = []
    for batch in loader:
        out.append(batch)
        if len(out) == n:
            break
    return out


class Net(torch.nn.Module):
    """BatchNorm (running buffers) and dropout (random) make restoring non-trivial."""

    def __init__(self) -> None:
        super().__init__()
        self.body = torch.nn.Sequential(
            torch.nn.Linear(4, 16),
            torch.nn.BatchNorm1d(16),
            torch.nn.ReLU(),
            torch.nn.Dropout(0.2),
            torch.nn.Linear(16, 3),
        )

    def forward(self, x):
        return self.body(x)


def target_for(model):
    return ProbeTarget(
        model=model, loss=lambda b: torch.nn.functional.cross_entropy(model(b[0]), b[1])
    )


def test_probes_restore_weights_grads_buffers_optimizer_and_rng():
    reference, real, _ = loaders()
    torch.manual_seed(0)
    model = Net()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    x, y = next(iter(real))
    torch.nn.functional.cross_entropy(model(x), y).backward()
    optimizer.step()  # optimizer state and .grad are non-empty, as mid-run
    state = copy.deepcopy(model.state_dict())  # parameters and BatchNorm buffers
    grads = [p.grad.clone() for p in model.parameters()]
    optim_state = copy.deepcopy(optimizer.state_dict())
    rng = torch.get_rng_state()
    expected_next = torch.rand(3)
    torch.set_rng_state(rng)

    measured = run_probes(target_for(model), batches(reference), batches(real), seed=3)

    assert measured.reference.losses and measured.candidate.sharpness
    after = model.state_dict()
    assert all(torch.equal(state[k], after[k]) for k in state)
    assert all(torch.equal(g, p.grad) for g, p in zip(grads, model.parameters()))
    after_optim = optimizer.state_dict()
    for key, value in optim_state["state"].items():
        for name, tensor in value.items():
            assert torch.equal(
                torch.as_tensor(tensor), torch.as_tensor(after_optim["state"][key][name])
            )
    assert torch.equal(torch.rand(3), expected_next)


class NanLayer(torch.nn.Module):
    """sqrt of a value that is negative for some inputs: NaN forward and backward."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(4))

    def forward(self, x):
        return torch.sqrt(x * self.scale)


def test_a_nan_producing_layer_fails_gradient_health():
    reference, real, _ = loaders()
    torch.manual_seed(0)
    model = torch.nn.Sequential(NanLayer(), torch.nn.Linear(4, 3))
    measured = run_probes(target_for(model), batches(reference), batches(real))
    evidence = gradients.run([measured])
    (signal,) = [s for s in evidence.signals if s.name == "nonfinite_gradients"]
    assert signal.fires(1e-6)
    assert "`0.scale`" in signal.sentence and "NaN" in signal.sentence


def test_a_healthy_model_on_real_data_passes_both_model_dimensions():
    reference, real, _ = loaders()
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    measured = run_probes(target_for(model), batches(reference), batches(real))
    for module in (gradients, landscape):
        evidence = module.run([measured])
        assert evidence.not_run is None
        assert not [s for s in evidence.signals if s.fires(0.01)], module.NAME
    stats = gradients.run([measured]).statistics
    assert 0.5 < stats["gradient_norm_ratio"] < 2
    assert stats["mean_gradient_cosine"] > 0.5  # real halves pull the weights alike


def test_measurements_travel_as_bytes():
    reference, real, _ = loaders()
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3))
    measured = run_probes(target_for(model), batches(reference, 2), batches(real, 2))
    back = ProbeMeasurements.from_bytes(measured.to_bytes())
    assert back == measured
    assert all(math.isfinite(v) for v in back.candidate.losses)


def test_no_reference_batches_means_not_run():
    _, real, _ = loaders()
    model = torch.nn.Sequential(torch.nn.Linear(4, 3))
    measured = run_probes(target_for(model), [], batches(real, 2))
    assert "reference batches" in gradients.run([measured]).not_run
    assert "reference batches" in landscape.run([measured]).not_run


def test_per_layer_gradient_ratios_are_reported():
    reference, real, _ = loaders()
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    measured = run_probes(target_for(model), batches(reference), batches(real))
    stats = gradients.run([measured]).statistics
    layers = {k: v for k, v in stats.items() if k.startswith("layer_norm_ratio[")}
    assert set(layers) == {f"layer_norm_ratio[{n}]" for n, _ in model.named_parameters()}
    assert all(0.2 < v < 5 for v in layers.values())  # real halves: same order of size
