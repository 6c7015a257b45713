"""Gradient checking by central differences.

Pick a random upstream gradient v for every output of f and look at the scalar
L(x) = sum_k <f_k(x), v_k>. ``backward`` gives the analytic dL/dx; the numeric one is

    dL/dx_i ~ (L(x + eps e_i) - L(x - eps e_i)) / (2 eps)        (error O(eps^2))

for every element i: two forward passes per element. ``fast_mode`` instead compares
one directional derivative per input, along a random unit vector u (PyTorch's fast
gradcheck): <dL/dx, u> against (L(x + eps u) - L(x - eps u)) / (2 eps). A wrong
gradient almost surely shows up in a random direction too, at the cost of two
forward passes per input instead of per element.

Only float64 has the precision for this: with eps = 1e-6, float32 rounding alone
changes L by ~1e-7 relative, which swamps the O(eps^2) accuracy.
"""
import warnings

import numpy as np

from . import autograd, backend
from .autograd import enable_grad, no_grad
from .tensor import Tensor


class GradcheckError(AssertionError):
    """The analytic and numeric gradients disagree."""


def _outputs(fn, inputs):
    out = fn(*inputs)
    outs = out if isinstance(out, (tuple, list)) else (out,)
    return [o for o in outs if isinstance(o, Tensor) and o.dtype.kind == "f"]


def _objective(fn, inputs, vs):
    """L = sum_k <f_k(inputs), v_k> as a Python float (no graph)."""
    with no_grad():
        outs = _outputs(fn, inputs)
    return float(sum((backend.to_numpy(o.array).astype(np.float64) * v).sum() for o, v in zip(outs, vs)))


def compare_gradients(fn, inputs, eps=1e-6, fast_mode=False, seed=0):
    """The analytic and numeric gradients of L = sum_k <f_k(inputs), v_k> (v random).

    Returns one ``(input_index, analytic, numeric)`` per input that requires grad,
    both float64 arrays shaped like the input (or 1-element arrays holding the
    directional derivative in ``fast_mode``). Inputs and their ``.grad`` are left
    exactly as they were.
    """
    inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    checked = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input has requires_grad=True")
    # a stream of its own: inputs made with default_rng(seed) must not equal the upstream gradient
    rng = np.random.default_rng((0x67726164, seed))
    analytic, vs = _analytic(fn, inputs, checked, rng)
    results = []
    for i in checked:
        x = inputs[i]
        if fast_mode:
            u = rng.standard_normal(x.shape)
            u /= np.linalg.norm(u) or 1.0
            numeric = np.array([_directional(fn, inputs, x, u, eps, vs)])
            results.append((i, np.array([(analytic[i] * u).sum()]), numeric))
        else:
            results.append((i, analytic[i], _numeric(fn, inputs, x, eps, vs)))
    return results


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, fast_mode=False, seed=0):
    """Check ``fn``'s gradient with respect to every input that requires grad.

    ``fn(*inputs)`` returns a Tensor or a tuple of Tensors; ``inputs`` should be
    float64. Returns True, or raises ``GradcheckError`` naming the input, the worst
    element (where |analytic - numeric| most exceeds atol + rtol * |numeric|) and
    both values there. Warns when a checked input is not float64.
    """
    inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    if any(isinstance(x, Tensor) and x.requires_grad and x.dtype != np.float64 for x in inputs):
        warnings.warn("gradcheck: inputs are not float64; central differences will be imprecise "
                      "(convert them with .double())", stacklevel=2)
    for i, got, numeric in compare_gradients(fn, inputs, eps, fast_mode, seed):
        excess = tolerance_excess(got, numeric, atol, rtol)
        if excess.size and excess.max() > 0:
            k = np.unravel_index(int(excess.argmax()), excess.shape)
            where = "the random direction" if fast_mode else f"element {tuple(int(j) for j in k)}"
            raise GradcheckError(
                f"gradcheck: gradient of input {i} (shape {inputs[i].shape}) is wrong at {where}: "
                f"analytic {got[k]:.10g}, numeric {numeric[k]:.10g} "
                f"(|diff| {abs(got[k] - numeric[k]):.3g} > atol {atol} + rtol {rtol} * |numeric|; "
                f"{int((excess > 0).sum())} of {excess.size} values off)"
            )
    return True


def tolerance_excess(got, numeric, atol, rtol):
    """|got - numeric| - (atol + rtol |numeric|) element-wise: > 0 where the check fails (NaN -> inf)."""
    excess = np.abs(got - numeric) - (atol + rtol * np.abs(numeric))
    return np.where(np.isnan(excess), np.inf, excess)


def _analytic(fn, inputs, checked, rng):
    """dL/dx for every checked input via backward, leaving each ``.grad`` as it was."""
    saved = [inputs[i].grad for i in checked]
    try:
        for i in checked:
            inputs[i].grad = None
        with enable_grad():
            outs = _outputs(fn, inputs)
        if not outs:
            raise ValueError("gradcheck: fn returned no floating point tensor")
        vs = [rng.standard_normal(o.shape) for o in outs]
        roots = [(o, v) for o, v in zip(outs, vs) if o.requires_grad]
        if roots:
            seeds = [backend.to_device(v.astype(o.dtype), o.device) for o, v in roots]
            autograd.backward([o for o, _ in roots], seeds)
        analytic = {}
        for i in checked:
            g = inputs[i].grad
            if g is not None and (g.shape != inputs[i].shape or g.dtype != inputs[i].dtype):
                raise GradcheckError(f"gradcheck: the gradient of input {i} has shape {g.shape} and dtype "
                                     f"{g.dtype}, but the input has shape {inputs[i].shape} and dtype {inputs[i].dtype}")
            analytic[i] = np.zeros(inputs[i].shape) if g is None else backend.to_numpy(g.array).astype(np.float64)
        return analytic, vs
    finally:
        for i, g in zip(checked, saved):
            inputs[i].grad = g


def _numeric(fn, inputs, x, eps, vs):
    """Central differences element by element, on a private copy of x's data."""
    grad = np.zeros(x.shape)
    original = x.array
    work = backend.array_module(original).array(original, order="C")  # writable, ours
    flat = work.reshape(-1)  # a view: perturbing it perturbs x while x.array is work
    x.array = work
    try:
        for j in range(flat.size):
            orig = flat[j].item()
            flat[j] = orig + eps
            plus = _objective(fn, inputs, vs)
            flat[j] = orig - eps
            minus = _objective(fn, inputs, vs)
            flat[j] = orig
            grad.reshape(-1)[j] = (plus - minus) / (2 * eps)
    finally:
        x.array = original
    return grad


def _directional(fn, inputs, x, u, eps, vs):
    """(L(x + eps u) - L(x - eps u)) / (2 eps)."""
    original = x.array
    step = backend.to_device(u.astype(original.dtype), x.device)
    try:
        x.array = original + eps * step
        plus = _objective(fn, inputs, vs)
        x.array = original - eps * step
        minus = _objective(fn, inputs, vs)
    finally:
        x.array = original
    return (plus - minus) / (2 * eps)
