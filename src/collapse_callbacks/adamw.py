"""AdamW for the small networks the checks train (the classifier test's MLP, the proxy).

``torch.optim``'s optimizers import ``torch._dynamo`` when they are built (torch wraps
their methods to keep the compiler out of them): about a second, a quarter of the time
of a whole check on a small table, to train a network of a few thousand weights that
is never compiled. This is the same update (decoupled weight decay, bias-corrected
moments; Loshchilov & Hutter 2019) written with plain tensor ops. Training steps cost
the same as torch's fused kernel to within a few percent here.
"""

from __future__ import annotations


class AdamW:
    def __init__(
        self,
        parameters,
        lr: float,
        weight_decay: float,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ) -> None:
        import torch

        self._torch = torch
        self.parameters = [p for p in parameters if p.requires_grad]
        self.lr = lr
        self.weight_decay = weight_decay
        self.beta1, self.beta2 = betas
        self.eps = eps
        self.steps = 0
        self._first = [torch.zeros_like(p) for p in self.parameters]
        self._second = [torch.zeros_like(p) for p in self.parameters]

    def zero_grad(self) -> None:
        for parameter in self.parameters:
            parameter.grad = None

    def step(self) -> None:
        self.steps += 1
        correction1 = 1 - self.beta1**self.steps
        correction2 = 1 - self.beta2**self.steps
        with self._torch.no_grad():
            for parameter, first, second in zip(self.parameters, self._first, self._second):
                grad = parameter.grad
                if grad is None:
                    continue
                parameter.mul_(1 - self.lr * self.weight_decay)
                first.lerp_(grad, 1 - self.beta1)
                second.mul_(self.beta2).addcmul_(grad, grad, value=1 - self.beta2)
                denominator = (second / correction2).sqrt_().add_(self.eps)
                parameter.addcdiv_(first, denominator, value=-self.lr / correction1)
