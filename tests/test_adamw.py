"""The checks' own AdamW takes the same steps as torch.optim.AdamW."""

from __future__ import annotations

import pytest

from collapse_callbacks.adamw import AdamW

torch = pytest.importorskip("torch")


def _network(seed: int):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))


@pytest.mark.parametrize("weight_decay", [0.0, 1e-2])
def test_steps_match_torch_adamw(weight_decay):
    ours, theirs = _network(0), _network(0)
    optimizer = AdamW(ours.parameters(), lr=1e-2, weight_decay=weight_decay)
    reference = torch.optim.AdamW(theirs.parameters(), lr=1e-2, weight_decay=weight_decay)
    generator = torch.Generator().manual_seed(1)
    for _ in range(30):
        x = torch.randn(16, 5, generator=generator)
        y = torch.randn(16, 1, generator=generator)
        for model, opt in ((ours, optimizer), (theirs, reference)):
            opt.zero_grad()
            torch.nn.functional.mse_loss(model(x), y).backward()
            opt.step()
    for mine, torchs in zip(ours.parameters(), theirs.parameters()):
        assert torch.allclose(mine, torchs, atol=1e-6)
    assert not torch.allclose(next(ours.parameters()), next(_network(0).parameters()))


def test_parameters_without_a_gradient_stay_put():
    network = _network(0)
    frozen = network[0].weight.detach().clone()
    optimizer = AdamW(network.parameters(), lr=1e-2, weight_decay=0.0)
    network[0].weight.grad = None
    network(torch.ones(2, 5)).sum().backward()
    network[0].weight.grad = None  # as if the loss did not depend on it
    optimizer.step()
    assert torch.equal(network[0].weight, frozen)
