"""Stochastic gradient descent with momentum, dampening, weight decay and Nesterov momentum.

For each parameter p with gradient g (PyTorch's formulation)::

    g = g + weight_decay * p
    b = g                                    (first step)
    b = momentum * b + (1 - dampening) * g   (later steps)
    g = g + momentum * b   if nesterov else   b
    p = p - lr * g
"""
from .. import backend
from .optimizer import Optimizer, check_hyper


class SGD(Optimizer):
    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False, *,
                 maximize=False, foreach=None, differentiable=False, fused=None):
        check_hyper("learning rate", lr)
        check_hyper("momentum value", momentum)
        check_hyper("weight_decay value", weight_decay)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: Nesterov momentum requires a momentum and zero dampening")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov, maximize=maximize))

    def _update(self, p, g, group, state):
        wd, mom = group["weight_decay"], group["momentum"]
        fused = getattr(backend.kernels(p.array), "sgd_step", None)  # the CPU has a one-pass kernel
        if fused is not None:
            buf = state.get("momentum_buffer")
            first = mom != 0 and buf is None
            if first:
                buf = backend.array_module(p.array).empty_like(p.array)
            if fused(p.array, g, buf, group["lr"], wd, mom, group["dampening"], group["nesterov"], first):
                if first:
                    state["momentum_buffer"] = buf
                return
        if wd != 0:
            g = g + wd * p.array
        if mom != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = g.copy()
            else:
                buf *= mom
                buf += (1 - group["dampening"]) * g
            g = g + mom * buf if group["nesterov"] else buf
        p.array -= group["lr"] * g
