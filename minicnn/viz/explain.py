"""Worked examples: one op on a tiny input, every intermediate matrix printed.

    python -m minicnn explain conv2d        # or: minicnn.viz.explain("conv2d")

Each example computes its matrices with the code the op itself runs (``ops/conv.py``'s im2col
and col2im, the Functions' forward and backward), prints them, and checks the result against
the definition (the loops of ``ops/conv_reference.py``, or the formula written out) and against
the op called through autograd. Small integers keep the arithmetic checkable by hand. The text
fits 100 columns.
"""
import numpy as np

from .. import backends, ops
from ..geometry import Window
from ..nn import functional as F
from ..ops import conv as conv_ops
from ..ops import conv_reference
from ..tensor import Tensor

OPS = ("conv2d", "conv_transpose2d", "max_pool2d", "avg_pool2d", "batch_norm", "cross_entropy")


def _fmt(v):
    return f"{v:g}" if float(v).is_integer() else f"{v:.3f}"


def _matrix(a, rows=None, cols=None, width=None):
    """A 2-D array as text, with optional row and column labels."""
    a = np.asarray(a)
    cells = [[_fmt(v) for v in row] for row in a]
    w = width or max(len(c) for row in cells for c in row)
    if cols is not None:
        w = max(w, max(len(c) for c in cols))
    lw = max((len(r) for r in rows), default=0) if rows else 0
    lines = []
    if cols is not None:
        lines.append(" " * (lw + 1) + " ".join(c.rjust(w) for c in cols))
    for i, row in enumerate(cells):
        label = (rows[i].ljust(lw) + " ") if rows else ""
        lines.append(label + " ".join(c.rjust(w) for c in row))
    return "\n".join(lines)


def _planes(a, name):
    """An (N=1, C, H, W) array as C matrices side by side."""
    a = np.asarray(a)[0]
    blocks = [_matrix(p).splitlines() for p in a]
    width = max(len(line) for b in blocks for line in b)
    head = "   ".join(f"{name}[0, {c}]".ljust(width) for c in range(len(blocks)))
    body = ["   ".join(b[i].ljust(width) for b in blocks) for i in range(len(blocks[0]))]
    return "\n".join([head] + body)


def _check(label, got, want):
    ok = np.allclose(got, want, rtol=1e-12, atol=1e-12)
    if not ok:
        raise AssertionError(f"explain: {label} differs from the definition by {np.abs(got - want).max()}")
    return f"  check: {label} equals the definition (max |diff| {np.abs(got - want).max():.1e})"


def _grads(fn, *arrays, gy):
    """fn's output and its input gradients through autograd, for sum(output * gy)."""
    ts = [Tensor(a, requires_grad=True) for a in arrays]
    y = fn(*ts)
    (y * Tensor(gy)).sum().backward()
    return y.numpy(), [t.grad.numpy() for t in ts]


def _conv2d(rng):
    x = rng.integers(0, 4, (1, 2, 4, 4)).astype(np.float64)
    w = rng.integers(-1, 2, (2, 2, 3, 3)).astype(np.float64)
    win, (oh, ow) = Window(3, 3, 1, 1, 1, 1, 1, 1), (4, 4)
    col = conv_ops.im2col(x, win, oh, ow)[0]  # (C*kh*kw, oh*ow)
    rows = [f"c{c} ky{i} kx{j}" for c in range(2) for i in range(3) for j in range(3)]
    cols = [f"p{p}" for p in range(oh * ow)]
    wm = w.reshape(2, -1)
    y = (wm @ col).reshape(1, 2, oh, ow)
    gy = rng.integers(-1, 2, y.shape).astype(np.float64)
    gcol = wm.T @ gy.reshape(2, -1)
    gx = conv_ops.col2im(gcol[None], win, 4, 4, oh, ow)
    gw = (gy.reshape(2, -1) @ col.T).reshape(w.shape)
    with backends.conv_algorithm("im2col"):
        y_op, (gx_op, gw_op) = _grads(lambda a, b: F.conv2d(a, b, padding=1), x, w, gy=gy)
    return "\n".join([
        "conv2d: x (1, 2, 4, 4), weight (2, 2, 3, 3), stride 1, padding 1 -> y (1, 2, 4, 4)",
        "", _planes(x, "x"), "", "weight, one row per output channel, (c, ky, kx) along the row:",
        _matrix(wm, [f"o{o}" for o in range(2)]),
        "", "1. im2col: column p holds the 3x3 window of every channel around output pixel p",
        "   (p = oy*4 + ox; zeros where the window hangs over the padding):",
        _matrix(col, rows, cols),
        "", "2. one GEMM, weight (2, 18) @ col (18, 16) -> (2, 16): row o is output channel o",
        _matrix(wm @ col, [f"o{o}" for o in range(2)], cols),
        "", "3. the rows are already NCHW: reshape to (1, 2, 4, 4)", _planes(y, "y"),
        _check("y", y, conv_reference.conv2d(x, w, win, 1, oh, ow)), _check("F.conv2d", y_op, y),
        "", "backward, for an upstream gradient gy = dL/dy:", _planes(gy, "gy"),
        "", "4. the columns' gradient, weight^T (18, 2) @ gy (2, 16):", _matrix(gcol, rows, cols),
        "", "5. col2im adds every column entry back onto the pixel it was copied from",
        "   (a pixel read by 9 windows sums 9 entries): dL/dx", _planes(gx, "dx"),
        _check("dL/dx", gx, conv_reference.conv2d_input_grad(gy, w, win, 1, x.shape)),
        _check("autograd's dL/dx", gx_op, gx),
        "", "6. weight gradient, gy (2, 16) @ col^T (16, 18): every tap times the gy it fed",
        _matrix(gw.reshape(2, -1), [f"o{o}" for o in range(2)]),
        _check("dL/dweight", gw, conv_reference.conv2d_weight_grad(x, gy, win, 1)),
        _check("autograd's dL/dweight", gw_op, gw),
    ])


def _conv_transpose2d(rng):
    x = rng.integers(1, 4, (1, 1, 2, 2)).astype(np.float64)
    w = rng.integers(-1, 3, (1, 1, 3, 3)).astype(np.float64)
    win, out_hw = Window(3, 3, 2, 2, 0, 0, 1, 1), (5, 5)
    col = w.reshape(1, -1).T @ x.reshape(1, -1)  # (kh*kw, H*W)
    y = conv_ops.col2im(col[None], win, *out_hw, 2, 2)
    gy = rng.integers(-1, 2, y.shape).astype(np.float64)
    with backends.conv_algorithm("im2col"):
        y_op, (gx_op, gw_op) = _grads(lambda a, b: F.conv_transpose2d(a, b, stride=2), x, w, gy=gy)
    gcol = conv_ops.im2col(gy, win, 2, 2)[0]
    gx = (w.reshape(1, -1) @ gcol).reshape(x.shape)
    return "\n".join([
        "conv_transpose2d: x (1, 1, 2, 2), weight (1, 1, 3, 3), stride 2 -> y (1, 1, 5, 5)",
        "the adjoint of conv2d: every input pixel stamps the kernel, scaled by its value, into",
        "the output, the stamps 2 pixels apart and overlapping by one row or column",
        "", _planes(x, "x"), "", _planes(w, "weight"),
        "", "1. weight^T (9, 1) @ x (1, 4): column p is the kernel scaled by x's pixel p",
        _matrix(col, [f"ky{i} kx{j}" for i in range(3) for j in range(3)], [f"p{p}" for p in range(4)]),
        "", "2. col2im: each column added where its stamp lands; overlaps add up", _planes(y, "y"),
        _check("y", y, conv_reference.conv2d_input_grad(x, w, win, 1, (1, 1, 5, 5))),
        _check("F.conv_transpose2d", y_op, y),
        "", "backward: dL/dx is conv2d(gy, weight) with the same stride, an im2col and a GEMM",
        _planes(gy, "gy"), "", _planes(gx, "dx"),
        _check("dL/dx", gx, conv_reference.conv2d(gy, w, win, 1, 2, 2)), _check("autograd's dL/dx", gx_op, gx),
    ])


def _max_pool2d(rng):
    x = rng.permutation(16).reshape(1, 1, 4, 4).astype(np.float64)
    y, idx = ops.pooling.MaxPool2d(2, 2).apply(Tensor(x))
    y, idx = y.numpy(), idx.numpy()
    gy = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
    gx = np.zeros(16)
    np.add.at(gx, idx.ravel(), gy.ravel())
    gx = gx.reshape(x.shape)
    want = x.reshape(1, 1, 2, 2, 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(1, 1, 2, 2, 4).max(-1)
    y_op, (gx_op,) = _grads(lambda a: F.max_pool2d(a, 2), x, gy=gy)
    return "\n".join([
        "max_pool2d: x (1, 1, 4, 4), kernel 2, stride 2 -> y (1, 1, 2, 2)", "", _planes(x, "x"),
        "", "1. each output is the largest of its 2x2 window:", _planes(y, "y"),
        _check("y", y, want), _check("F.max_pool2d", y_op, y),
        "", "2. the op remembers where each maximum was, as h*W + w in the plane:", _planes(idx, "argmax"),
        "", "backward: the whole gradient of an output goes to its argmax, the other pixels get 0",
        _planes(gy, "gy"), "", _planes(gx, "dx"), _check("autograd's dL/dx", gx_op, gx),
    ])


def _avg_pool2d(rng):
    x = rng.integers(0, 10, (1, 1, 4, 4)).astype(np.float64)
    lines = ["avg_pool2d: x (1, 1, 4, 4), kernel 3, stride 1, padding 1 -> y (1, 1, 4, 4)", "", _planes(x, "x")]
    gy = np.ones((1, 1, 4, 4))
    for include in (True, False):
        xp = np.pad(x[0, 0], 1)
        real = np.pad(np.ones((4, 4)), 1)
        sums = np.array([[xp[i:i + 3, j:j + 3].sum() for j in range(4)] for i in range(4)])
        div = np.full((4, 4), 9.0) if include else \
            np.array([[real[i:i + 3, j:j + 3].sum() for j in range(4)] for i in range(4)])
        y_op, (gx_op,) = _grads(lambda a: F.avg_pool2d(a, 3, 1, 1, count_include_pad=include), x, gy=gy)
        gx = np.zeros((6, 6))
        for i in range(4):
            for j in range(4):
                gx[i:i + 3, j:j + 3] += 1 / div[i, j]
        gx = gx[1:5, 1:5].reshape(x.shape)
        lines += ["", f"count_include_pad={include}: y = window sum / divisor, the divisor "
                  + ("always 9 (padding counts as zeros)" if include else "the number of real pixels"),
                  _matrix(div), "", _planes(sums.reshape(1, 1, 4, 4) / div, "y"),
                  _check("F.avg_pool2d", y_op, (sums / div).reshape(1, 1, 4, 4)),
                  "backward with gy = 1 everywhere: each pixel gets 1/divisor from every window over it",
                  _planes(gx, "dx"), _check("autograd's dL/dx", gx_op, gx)]
    return "\n".join(lines)


def _batch_norm(rng):
    x = rng.integers(0, 8, (4, 2)).astype(np.float64)
    gamma, beta = np.array([1.0, 2.0]), np.array([0.0, 1.0])
    mean, var = x.mean(0), x.var(0)
    xhat = (x - mean) / np.sqrt(var + 1e-5)
    y = gamma * xhat + beta
    gy = rng.integers(-2, 3, x.shape).astype(np.float64)
    rm, rv = Tensor(np.zeros(2)), Tensor(np.ones(2))
    y_op, (gx_op, gg_op, gb_op) = _grads(lambda a, g, b: F.batch_norm(a, rm, rv, g, b, training=True),
                                         x, gamma, beta, gy=gy)
    gx = gamma / np.sqrt(var + 1e-5) * (gy - gy.mean(0) - xhat * (gy * xhat).mean(0))
    running_var = 0.9 * 1 + 0.1 * x.var(0, ddof=1)
    y_eval = gamma * (x - rm.numpy()) / np.sqrt(rv.numpy() + 1e-5) + beta
    y_eval_op = F.batch_norm(Tensor(x), rm, rv, Tensor(gamma), Tensor(beta), training=False).numpy()
    return "\n".join([
        "batch_norm (training): x (4, 2), 4 samples of 2 channels, weight (1, 2), bias (0, 1)",
        "", "x", _matrix(x), "",
        "1. per channel, the batch mean and the biased variance (divided by N = 4):",
        "mean " + " ".join(map(_fmt, mean)) + "    var " + " ".join(map(_fmt, var)),
        "2. xhat = (x - mean) / sqrt(var + eps), then y = weight * xhat + bias:", _matrix(y),
        _check("F.batch_norm", y_op, y),
        "3. the running statistics move 10% towards the batch's, the variance unbiased (/ (N-1)):",
        "running_mean " + " ".join(map(_fmt, rm.numpy())) + "    running_var " + " ".join(map(_fmt, rv.numpy())),
        _check("running_var", rv.numpy(), running_var),
        "4. eval mode normalises with these running statistics instead, so a sample's output no",
        "   longer depends on the rest of its batch: y = weight * (x - running_mean) / sqrt(running_var",
        "   + eps) + bias", _matrix(y_eval), _check("F.batch_norm(training=False)", y_eval_op, y_eval),
        "", "backward: gx = weight/sqrt(var + eps) * (gy - mean(gy) - xhat * mean(gy * xhat))",
        "(the mean and the variance depend on every sample, hence the two correction terms)",
        "gy", _matrix(gy), "dx", _matrix(gx), _check("autograd's dL/dx", gx_op, gx),
        "dweight = sum(gy * xhat) " + " ".join(map(_fmt, (gy * xhat).sum(0))) + "    dbias = sum(gy) "
        + " ".join(map(_fmt, gy.sum(0))),
        _check("autograd's dL/dweight", gg_op, (gy * xhat).sum(0)), _check("autograd's dL/dbias", gb_op, gy.sum(0)),
    ])


def _cross_entropy(rng):
    z = rng.integers(-2, 3, (3, 4)).astype(np.float64)
    target = np.array([0, 3, 1])
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    loss = -np.log(p[np.arange(3), target]).mean()
    onehot = np.eye(4)[target]
    t = Tensor(z, requires_grad=True)
    out = F.cross_entropy(t, Tensor(target))
    out.backward()
    return "\n".join([
        "cross_entropy: logits z (3, 4) for 3 samples of 4 classes, targets " + str(target.tolist()),
        "", "z", _matrix(z), "",
        "1. softmax, computed as exp(z - max z) / sum (the same numbers, no overflow):", _matrix(p),
        "2. loss = mean over samples of -log p[target] = " + _fmt(loss),
        _check("F.cross_entropy", out.numpy(), loss),
        "", "backward: dL/dz = (softmax - onehot(target)) / N, each row sums to 0", _matrix((p - onehot) / 3),
        _check("autograd's dL/dz", t.grad.numpy(), (p - onehot) / 3),
    ])


def explain(op="conv2d", seed=0):
    """The worked example of ``op`` (one of ``OPS``) as text."""
    makers = {"conv2d": _conv2d, "conv_transpose2d": _conv_transpose2d, "max_pool2d": _max_pool2d,
              "avg_pool2d": _avg_pool2d, "batch_norm": _batch_norm, "cross_entropy": _cross_entropy}
    if op not in makers:
        raise ValueError(f"explain: no worked example for {op!r}; choose one of {', '.join(OPS)}")
    return makers[op](np.random.default_rng(seed))
