"""Central-difference gradient checking.

For a random upstream gradient v, the analytic gradient of L(x) = sum(f(x) * v)
comes from ``backward``; the numeric one from (L(x + eps e_i) - L(x - eps e_i)) / 2 eps.
"""
import warnings

import numpy as np

from . import backend
from .autograd import no_grad
from .tensor import Tensor


class GradcheckError(AssertionError):
    """The analytic and numeric gradients disagree."""


def _outputs(fn, inputs):
    out = fn(*inputs)
    outs = out if isinstance(out, (tuple, list)) else (out,)
    return [o for o in outs if isinstance(o, Tensor) and o.dtype.kind == "f"]


def _objective(fn, inputs, vs):
    """sum_k <f_k(inputs), v_k> as a float (no graph)."""
    with no_grad():
        outs = _outputs(fn, inputs)
    return float(sum((backend.to_numpy(o.data).astype(np.float64) * v).sum() for o, v in zip(outs, vs)))


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, fast_mode=False, seed=0):
    """Check ``fn``'s gradient with respect to every input that requires grad.

    ``fn(*inputs)`` returns a Tensor or a tuple of Tensors. Returns True or raises
    ``GradcheckError`` naming the input, the worst element, and both values.
    ``fast_mode`` compares one random directional derivative per input instead of
    every element (for large inputs).
    """
    inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    checked = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input has requires_grad=True")
    if any(inputs[i].dtype != np.float64 for i in checked):
        warnings.warn("gradcheck: inputs are not float64; central differences will be imprecise", stacklevel=2)
    rng = np.random.default_rng(seed)

    saved = [inputs[i].grad for i in checked]
    for i in checked:
        inputs[i].grad = None
    outs = _outputs(fn, inputs)
    if not outs:
        raise ValueError("gradcheck: fn returned no floating point tensor")
    vs = [rng.standard_normal(o.shape) for o in outs]
    total = None
    for o, v in zip(outs, vs):
        if o.requires_grad:
            term = (o * Tensor(v, dtype=o.dtype, device=o.device)).sum()
            total = term if total is None else total + term
    analytic = {}
    if total is not None:
        total.backward()
    for i in checked:
        g = inputs[i].grad
        analytic[i] = np.zeros(inputs[i].shape) if g is None else backend.to_numpy(g.data).astype(np.float64)
    for i, g in zip(checked, saved):
        inputs[i].grad = g

    for i in checked:
        x = inputs[i]
        if fast_mode:
            u = rng.standard_normal(x.shape)
            u /= np.linalg.norm(u) or 1.0
            numeric = np.array([_directional(fn, inputs, x, u, eps, vs)])
            got = np.array([(analytic[i] * u).sum()])
        else:
            numeric, got = _numeric(fn, inputs, x, eps, vs), analytic[i]
        err = np.abs(got - numeric) - (atol + rtol * np.abs(numeric))
        if err.size and err.max() > 0:
            k = np.unravel_index(int(err.argmax()), err.shape)
            where = "the random direction" if fast_mode else f"element {tuple(int(j) for j in k)}"
            raise GradcheckError(
                f"gradcheck: gradient of input {i} (shape {x.shape}) is wrong at {where}: "
                f"analytic {got[k]:.10g}, numeric {numeric[k]:.10g} "
                f"(|diff| {abs(got[k] - numeric[k]):.3g} > atol {atol} + rtol {rtol} * |numeric|)"
            )
    return True


def _numeric(fn, inputs, x, eps, vs):
    grad = np.zeros(x.shape)
    x.data = backend.array_module(x.data).ascontiguousarray(x.data)
    flat = x.data.reshape(-1)  # a view: perturbing it perturbs x
    for j in range(flat.size):
        orig = flat[j].item()
        flat[j] = orig + eps
        plus = _objective(fn, inputs, vs)
        flat[j] = orig - eps
        minus = _objective(fn, inputs, vs)
        flat[j] = orig
        grad.reshape(-1)[j] = (plus - minus) / (2 * eps)
    return grad


def _directional(fn, inputs, x, u, eps, vs):
    orig = x.data.copy()
    step = backend.array_module(orig).asarray(u.astype(orig.dtype))
    x.data = orig + eps * step
    plus = _objective(fn, inputs, vs)
    x.data = orig - eps * step
    minus = _objective(fn, inputs, vs)
    x.data = orig
    return (plus - minus) / (2 * eps)
