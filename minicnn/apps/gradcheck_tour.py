"""The gradient-check tour: every op and layer of minicnn against finite differences.

    python -m minicnn.apps.gradcheck_tour              # everything (a few seconds)
    python -m minicnn.apps.gradcheck_tour conv2d       # one op (all its cases)
    python -m minicnn.apps.gradcheck_tour '*pool*'     # a shell-style pattern
    minicnn gradcheck --list                              # the op names

For each case, small random float64 inputs x go through the op, and a random
upstream gradient v turns its output into one number L = sum(op(x) * v). Then

    analytic  dL/dx   from minicnn's backward pass,
    numeric   dL/dx_i ~ (L(x + eps e_i) - L(x - eps e_i)) / (2 eps)   for every element i,

and the table shows the largest difference relative to the gradient's size,
max_i |analytic_i - numeric_i| / max_i |numeric_i|, with i running over the elements
of all inputs of the case (weights and biases included). Central differences are accurate to about eps^2
plus rounding (1e-16 / eps), so ~1e-8 to 1e-10 is a pass; a wrong backward shows up
as 1e-2 or more. A case passes when every element is within atol + rtol * |numeric|,
the rule of ``mc.gradcheck``. The last line is ``passed=N/M``.

Non-differentiable points (relu at 0, ties in max pooling) are avoided by using
continuous random inputs; dropout gets a fixed seed so that every forward pass
draws the same mask.
"""
import argparse
import fnmatch
import sys
import time

import numpy as np

from .. import nn, ops
from ..gradcheck import compare_gradients, tolerance_excess
from ..nn import functional as F
from ..random import get_rng_state, manual_seed, set_rng_state
from ..tensor import Tensor


def _t(rng, *shape, low=None, high=None, grad=True):
    """A float64 leaf: normal values, or uniform in [low, high)."""
    a = rng.standard_normal(shape) if low is None else rng.uniform(low, high, shape)
    return Tensor(a, requires_grad=grad)


def _labels(rng, high, *shape):
    return Tensor(rng.integers(0, high, shape))


def _seeded(fn, seed=0):
    """``fn`` drawing the same random numbers on every call (dropout masks)."""
    manual_seed(seed)
    state = get_rng_state()

    def run(*args):
        set_rng_state(state)
        return fn(*args)

    return run


def _layer(module):
    """(fn, parameters) checking a layer with respect to its input and all its parameters;
    the parameters are passed to gradcheck, which perturbs them in place."""
    module.double()
    return (lambda x, *params: module(x)), list(module.parameters())


# Each case: (op name, description, builder(rng) -> (fn, inputs)).
def _core_cases():
    return [
        ("add", "(2,3,4) + (3,1)", lambda r: (lambda a, b: a + b, [_t(r, 2, 3, 4), _t(r, 3, 1)])),
        ("sub", "(3,4) - (4,)", lambda r: (lambda a, b: a - b, [_t(r, 3, 4), _t(r, 4)])),
        ("mul", "(2,3,4) * (4,)", lambda r: (lambda a, b: a * b, [_t(r, 2, 3, 4), _t(r, 4)])),
        ("div", "(3,4) / (3,1), divisor in [0.5, 2)", lambda r: (lambda a, b: a / b,
                                                                 [_t(r, 3, 4), _t(r, 3, 1, low=0.5, high=2)])),
        ("pow", "a ** b, a in [0.5, 2)", lambda r: (lambda a, b: a ** b, [_t(r, 3, 4, low=0.5, high=2), _t(r, 4)])),
        ("pow", "x ** 3", lambda r: (lambda a: a ** 3, [_t(r, 3, 4)])),
        ("matmul", "(2,3,4) @ (4,5)", lambda r: (lambda a, b: a @ b, [_t(r, 2, 3, 4), _t(r, 4, 5)])),
        ("matmul", "(4,) @ (2,4,3)", lambda r: (lambda a, b: a @ b, [_t(r, 4), _t(r, 2, 4, 3)])),
        ("sum", "dim=(0, 2), keepdim", lambda r: (lambda a: a.sum((0, 2), keepdim=True), [_t(r, 2, 3, 4)])),
        ("mean", "dim=1", lambda r: (lambda a: a.mean(1), [_t(r, 2, 3, 4)])),
        ("var", "dim=1", lambda r: (lambda a: a.var(1), [_t(r, 3, 5)])),
        ("max", "dim=1 (values)", lambda r: (lambda a: a.max(1).values, [_t(r, 3, 5)])),
        ("amax", "dim=(0, 1)", lambda r: (lambda a: ops.amax(a, (0, 1)), [_t(r, 2, 3, 4)])),
        ("reshape", "(2,6) -> (3,4)", lambda r: (lambda a: a.reshape(3, 4), [_t(r, 2, 6)])),
        ("permute", "(2,0,1)", lambda r: (lambda a: a.permute(2, 0, 1), [_t(r, 2, 3, 4)])),
        ("getitem", "x[[0, 2, 0], 1:]", lambda r: (lambda a: a[[0, 2, 0], 1:], [_t(r, 3, 4)])),
        ("cat", "dim=1", lambda r: (lambda a, b: ops.cat([a, b, a], 1), [_t(r, 2, 3), _t(r, 2, 2)])),
        ("stack", "dim=0", lambda r: (lambda a, b: ops.stack([a, b]), [_t(r, 2, 3), _t(r, 2, 3)])),
        ("split", "size 2 along dim 1", lambda r: (lambda a: ops.split(a, 2, 1), [_t(r, 2, 5)])),
        ("exp", "", lambda r: (lambda a: a.exp(), [_t(r, 3, 4)])),
        ("log", "x in [0.5, 2)", lambda r: (lambda a: a.log(), [_t(r, 3, 4, low=0.5, high=2)])),
        ("sqrt", "x in [0.5, 2)", lambda r: (lambda a: a.sqrt(), [_t(r, 3, 4, low=0.5, high=2)])),
        ("abs", "", lambda r: (lambda a: a.abs(), [_t(r, 3, 4)])),
        ("clamp", "[-0.5, 0.5]", lambda r: (lambda a: a.clamp(-0.5, 0.5), [_t(r, 3, 4)])),
        ("where", "cond ? a : b", lambda r: (lambda a, b: ops.where(a > b, a, b), [_t(r, 3, 4), _t(r, 4)])),
    ]


def _nn_cases():
    return [
        ("linear", "(2,3,4) x W(5,4) + b", lambda r: (F.linear, [_t(r, 2, 3, 4), _t(r, 5, 4), _t(r, 5)])),
        ("relu", "", lambda r: (F.relu, [_t(r, 3, 4)])),
        ("leaky_relu", "slope 0.1", lambda r: (lambda a: F.leaky_relu(a, 0.1), [_t(r, 3, 4)])),
        ("prelu", "one slope per channel", lambda r: (F.prelu, [_t(r, 2, 3, 2, 2), _t(r, 3, low=0.1, high=0.5)])),
        ("prelu", "one shared slope", lambda r: (F.prelu, [_t(r, 2, 3, 4), _t(r, 1, low=0.1, high=0.5)])),
        ("sigmoid", "", lambda r: (F.sigmoid, [_t(r, 3, 4)])),
        ("tanh", "", lambda r: (F.tanh, [_t(r, 3, 4)])),
        ("softmax", "dim=1", lambda r: (lambda a: F.softmax(a, 1), [_t(r, 3, 4)])),
        ("log_softmax", "dim=-1", lambda r: (lambda a: F.log_softmax(a, -1), [_t(r, 2, 3, 4)])),
        ("pad", "constant (1, 2, 0, 1)", lambda r: (lambda a: F.pad(a, (1, 2, 0, 1), value=0.5), [_t(r, 1, 2, 3, 3)])),
        ("pad", "reflect (2, 1, 1, 2)", lambda r: (lambda a: F.pad(a, (2, 1, 1, 2), mode="reflect"),
                                                   [_t(r, 1, 2, 3, 4)])),
        ("pad", "replicate (1, 2, 2, 0)", lambda r: (lambda a: F.pad(a, (1, 2, 2, 0), mode="replicate"),
                                                     [_t(r, 1, 2, 3, 3)])),
        ("pad", "circular (2, 1, 1, 1)", lambda r: (lambda a: F.pad(a, (2, 1, 1, 1), mode="circular"),
                                                    [_t(r, 1, 2, 3, 3)])),
        ("conv2d", "3x3, padding 1, with bias", lambda r: (
            lambda x, w, b: F.conv2d(x, w, b, padding=1), [_t(r, 2, 3, 5, 5), _t(r, 4, 3, 3, 3), _t(r, 4)])),
        ("conv2d", "3x3, stride 2, dilation 2, groups 2", lambda r: (
            lambda x, w: F.conv2d(x, w, stride=2, dilation=2, groups=2), [_t(r, 1, 4, 7, 7), _t(r, 2, 2, 3, 3)])),
        ("conv2d", "2x3, stride (2, 1), padding (1, 0)", lambda r: (
            lambda x, w, b: F.conv2d(x, w, b, stride=(2, 1), padding=(1, 0)),
            [_t(r, 2, 2, 5, 4), _t(r, 3, 2, 2, 3), _t(r, 3)])),
        ("conv_transpose2d", "3x3, stride 2, padding 1, output_padding 1", lambda r: (
            lambda x, w, b: F.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1),
            [_t(r, 2, 3, 3, 3), _t(r, 3, 2, 3, 3), _t(r, 2)])),
        ("conv_transpose2d", "2x2, stride 2, groups 2", lambda r: (
            lambda x, w: F.conv_transpose2d(x, w, stride=2, groups=2), [_t(r, 1, 4, 3, 3), _t(r, 4, 1, 2, 2)])),
        ("max_pool2d", "3x3, stride 2, padding 1", lambda r: (
            lambda x: F.max_pool2d(x, 3, 2, 1), [_t(r, 2, 2, 6, 6)])),
        ("max_pool2d", "2x2, ceil_mode, dilation 2", lambda r: (
            lambda x: F.max_pool2d(x, 2, 2, dilation=2, ceil_mode=True), [_t(r, 1, 2, 7, 7)])),
        ("avg_pool2d", "3x3, stride 2, padding 1, count_include_pad", lambda r: (
            lambda x: F.avg_pool2d(x, 3, 2, 1), [_t(r, 2, 2, 5, 5)])),
        ("avg_pool2d", "3x3, stride 2, padding 1, ceil_mode, exclude pad", lambda r: (
            lambda x: F.avg_pool2d(x, 3, 2, 1, ceil_mode=True, count_include_pad=False), [_t(r, 1, 2, 6, 6)])),
        ("adaptive_avg_pool2d", "5x7 -> 3x2", lambda r: (lambda x: F.adaptive_avg_pool2d(x, (3, 2)),
                                                         [_t(r, 2, 2, 5, 7)])),
        ("adaptive_max_pool2d", "5x7 -> 3x2", lambda r: (lambda x: F.adaptive_max_pool2d(x, (3, 2)),
                                                         [_t(r, 2, 2, 5, 7)])),
        ("max_unpool2d", "2x2 of max_pool2d's indices", _unpool_case),
        ("batch_norm", "training (batch statistics), affine", lambda r: (
            lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
            [_t(r, 3, 2, 3, 3), _t(r, 2), _t(r, 2)])),
        ("batch_norm", "eval (running statistics), affine", _batch_norm_eval_case),
        ("batch_norm", "training, (N, C) input, no affine", lambda r: (
            lambda x: F.batch_norm(x, None, None, training=True), [_t(r, 4, 3)])),
        ("local_response_norm", "size 3, alpha 0.5, beta 0.75, k 2", lambda r: (
            lambda x: F.local_response_norm(x, 3, alpha=0.5, beta=0.75, k=2.0), [_t(r, 2, 5, 2, 2)])),
        ("dropout", "p=0.5, fixed seed", lambda r: (_seeded(lambda x: F.dropout(x, 0.5)), [_t(r, 3, 4)])),
        ("dropout2d", "p=0.5, fixed seed", lambda r: (_seeded(lambda x: F.dropout2d(x, 0.5)), [_t(r, 2, 3, 2, 2)])),
        ("interpolate", "nearest, 3x4 -> 5x7", lambda r: (lambda x: F.interpolate(x, size=(5, 7)),
                                                          [_t(r, 1, 2, 3, 4)])),
        ("interpolate", "bilinear, scale 2", lambda r: (
            lambda x: F.interpolate(x, scale_factor=2, mode="bilinear"), [_t(r, 1, 2, 3, 3)])),
        ("interpolate", "bilinear, align_corners, 4x3 -> 3x5", lambda r: (
            lambda x: F.interpolate(x, size=(3, 5), mode="bilinear", align_corners=True), [_t(r, 1, 2, 4, 3)])),
        ("interpolate", "linear, 5 -> 8", lambda r: (lambda x: F.interpolate(x, size=8, mode="linear"),
                                                     [_t(r, 2, 2, 5)])),
        ("center_crop", "5x6 -> 3x3", lambda r: (lambda x: F.center_crop(x, 3), [_t(r, 1, 2, 5, 6)])),
        ("cross_entropy", "(N, C), class weights, label smoothing", lambda r: (
            lambda x: F.cross_entropy(x, _labels(np.random.default_rng(1), 4, 5),
                                      weight=Tensor(np.array([1.0, 2.0, 0.5, 1.0])), label_smoothing=0.1),
            [_t(r, 5, 4)])),
        ("cross_entropy", "(N, C, H, W), ignore_index", lambda r: (
            lambda x: F.cross_entropy(x, Tensor(np.array([[[0, 2], [-100, 1]], [[1, 1], [2, 0]]])),
                                      ignore_index=-100), [_t(r, 2, 3, 2, 2)])),
        ("nll_loss", "(N, C), reduction sum", lambda r: (
            lambda x: F.nll_loss(x, Tensor(np.array([0, 3, 1])), reduction="sum"), [_t(r, 3, 4)])),
        ("mse_loss", "", lambda r: (F.mse_loss, [_t(r, 3, 4), _t(r, 3, 4)])),
        ("l1_loss", "", lambda r: (F.l1_loss, [_t(r, 3, 4), _t(r, 3, 4)])),
        ("binary_cross_entropy", "probabilities in [0.1, 0.9)", lambda r: (
            F.binary_cross_entropy, [_t(r, 3, 4, low=0.1, high=0.9), _t(r, 3, 4, low=0, high=1)])),
        ("binary_cross_entropy_with_logits", "pos_weight (4,)", lambda r: (
            lambda x, t: F.binary_cross_entropy_with_logits(x, t, pos_weight=Tensor(np.array([1.0, 2.0, 0.5, 3.0]))),
            [_t(r, 3, 4), _t(r, 3, 4, low=0, high=1)])),
    ]


def _unpool_case(r):
    x = _t(r, 2, 2, 4, 4, grad=False)
    pooled, idx = F.max_pool2d(x, 2, return_indices=True)
    return (lambda y: F.max_unpool2d(y, idx, 2)), [Tensor(pooled.numpy(), requires_grad=True)]


def _batch_norm_eval_case(r):
    mean, var = Tensor(r.standard_normal(3)), Tensor(r.uniform(0.5, 2, 3))
    return (lambda x, w, b: F.batch_norm(x, mean, var, w, b, training=False)), [_t(r, 2, 3, 2, 2), _t(r, 3), _t(r, 3)]


def _layer_cases():
    def case(make, *shape):
        def build(r):
            fn, params = _layer(make())
            return fn, [_t(r, *shape)] + params
        return build

    return [
        ("nn.Linear", "4 -> 3", case(lambda: nn.Linear(4, 3), 2, 4)),
        ("nn.Conv2d", "2 -> 3, 3x3, stride 2, padding 1", case(lambda: nn.Conv2d(2, 3, 3, 2, 1), 2, 2, 5, 5)),
        ("nn.Conv2d", "reflect padding_mode", case(lambda: nn.Conv2d(2, 2, 3, padding=1, padding_mode="reflect"),
                                                   1, 2, 4, 4)),
        ("nn.ConvTranspose2d", "2 -> 3, 3x3, stride 2", case(lambda: nn.ConvTranspose2d(2, 3, 3, 2), 1, 2, 3, 3)),
        ("nn.BatchNorm1d", "3 features, training", case(lambda: nn.BatchNorm1d(3), 4, 3)),
        ("nn.BatchNorm2d", "2 channels, training", case(lambda: nn.BatchNorm2d(2), 2, 2, 3, 3)),
        ("nn.PReLU", "3 channels", case(lambda: nn.PReLU(3), 2, 3, 2, 2)),
        ("nn.Sequential", "conv-bn-relu-maxpool-flatten-linear", case(
            lambda: nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.BatchNorm2d(2), nn.ReLU(),
                                  nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8, 3)), 2, 1, 4, 4)),
    ]


def cases():
    """Every (op name, description, builder) of the tour, in table order."""
    return _core_cases() + _nn_cases() + _layer_cases()


def op_names():
    return sorted({name for name, _, _ in cases()})


def select(names):
    """The cases whose op name equals, or matches the shell pattern of, one of ``names``."""
    all_cases = cases()
    if not names:
        return all_cases
    for pattern in names:
        if not any(fnmatch.fnmatchcase(n, pattern) for n, _, _ in all_cases):
            raise ValueError(f"no op named {pattern!r}; the tour has: {', '.join(op_names())}")
    return [c for c in all_cases if any(fnmatch.fnmatchcase(c[0], p) for p in names)]


def check_case(build, eps=1e-6, atol=1e-5, rtol=1e-3, fast_mode=False, seed=0):
    """(max relative error, passed) of one case: see the module docstring."""
    fn, inputs = build(np.random.default_rng(seed))
    grads = compare_gradients(fn, inputs, eps=eps, fast_mode=fast_mode, seed=seed)
    # one scale for the whole case: a gradient that is exactly 0 (a conv bias before batch
    # norm) has only rounding noise, which is small next to the others
    scale = max(max(np.abs(n).max(initial=0.0) for _, _, n in grads), 1e-12)
    worst = max(float(np.abs(a - n).max(initial=0.0)) for _, a, n in grads) / scale
    passed = not any((tolerance_excess(a, n, atol, rtol) > 0).any() for _, a, n in grads)
    return worst, passed


def run_tour(names=None, eps=1e-6, atol=1e-5, rtol=1e-3, fast_mode=False, seed=0, report=None):
    """Check the selected cases; returns one dict per case with keys op, case,
    max_rel_error, passed, seconds. ``report(row)`` (optional) sees each row as it is done."""
    rows = []
    for name, description, build in select(names):
        start = time.perf_counter()
        worst, passed = check_case(build, eps, atol, rtol, fast_mode, seed)
        row = dict(op=name, case=description, max_rel_error=worst, passed=passed,
                   seconds=time.perf_counter() - start)
        rows.append(row)
        if report:
            report(row)
    return rows


def build_parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("ops", nargs="*", metavar="OP", help="op names or shell patterns (default: all)")
    p.add_argument("--list", action="store_true", help="print the op names and exit")
    p.add_argument("--fast", action="store_true",
                   help="one random directional derivative per input instead of every element")
    p.add_argument("--eps", type=float, default=1e-6, help="finite-difference step (default: %(default)s)")
    p.add_argument("--atol", type=float, default=1e-5, help="(default: %(default)s)")
    p.add_argument("--rtol", type=float, default=1e-3, help="(default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="inputs and upstream gradients (default: %(default)s)")
    return p


def main(argv=None):
    """Print the table; returns {"passed": n, "total": m, "rows": rows}, or exits with status 1
    when a case fails."""
    args = build_parser().parse_args(argv)
    if args.list:
        print("\n".join(op_names()))
        return {"passed": 0, "total": 0, "rows": []}
    try:
        selected = select(args.ops)
    except ValueError as e:
        sys.exit(f"error: {e}")
    width = max(len(f"{n} ({d})") for n, d, _ in selected) + 2
    print(f"{'op (case)':<{width}}{'max rel. error':>15}  pass")
    print(f"{'-' * (width - 2):<{width}}{'-' * 15:>15}  ----")

    def report(row):
        label = f"{row['op']} ({row['case']})" if row["case"] else row["op"]
        print(f"{label:<{width}}{row['max_rel_error']:>15.2e}  {'yes' if row['passed'] else 'NO'}", flush=True)

    rows = run_tour(args.ops, args.eps, args.atol, args.rtol, args.fast, args.seed, report)
    passed = sum(r["passed"] for r in rows)
    print(f"passed={passed}/{len(rows)}")
    if passed < len(rows):
        sys.exit(1)
    return {"passed": passed, "total": len(rows), "rows": rows}


if __name__ == "__main__":
    main()
