"""conv2d / conv_transpose2d: naive loop references, gradchecks, adjointness, tiling, layers, errors."""
import math
import tracemalloc

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import minicnn as mc
import minicnn.cpu
import minicnn.nn as nn
import minicnn.nn.functional as F
from minicnn import tuning, workspace
from minicnn.cpu import conv as kernels
from minicnn.geometry import Window
from minicnn.ops import conv_reference, conv_tiled

TOL = 1e-10


# -- naive references: plain loops in float64 -----------------------------------------------

def _out_size(n, k, s, before, after, d):
    return (n + before + after - d * (k - 1) - 1) // s + 1


def naive_conv2d(x, w, b, stride, pads, dilation, groups):
    """Direct convolution, 7 loops. pads = (top, bottom, left, right) zero padding."""
    (sh, sw), (dh, dw), (pt, pb, pl, pr) = stride, dilation, pads
    n_, c_, h, wd = x.shape
    o_, cg, kh, kw = w.shape
    og = o_ // groups
    oh, ow = _out_size(h, kh, sh, pt, pb, dh), _out_size(wd, kw, sw, pl, pr, dw)
    y = np.zeros((n_, o_, oh, ow))
    for n in range(n_):
        for o in range(o_):
            g = o // og
            for yy in range(oh):
                for xx in range(ow):
                    acc = 0.0 if b is None else b[o]
                    for c in range(cg):
                        for i in range(kh):
                            for j in range(kw):
                                iy, ix = yy * sh - pt + i * dh, xx * sw - pl + j * dw
                                if 0 <= iy < h and 0 <= ix < wd:
                                    acc += w[o, c, i, j] * x[n, g * cg + c, iy, ix]
                    y[n, o, yy, xx] = acc
    return y


def naive_conv2d_grads(x, w, gy, stride, pads, dilation, groups):
    """The same 7 loops, each product's two factors receiving the other times gy."""
    (sh, sw), (dh, dw), (pt, _, pl, _) = stride, dilation, pads
    n_, c_, h, wd = x.shape
    o_, cg, kh, kw = w.shape
    og = o_ // groups
    gx, gw = np.zeros_like(x), np.zeros_like(w)
    for n in range(n_):
        for o in range(o_):
            g = o // og
            for yy in range(gy.shape[2]):
                for xx in range(gy.shape[3]):
                    for c in range(cg):
                        for i in range(kh):
                            for j in range(kw):
                                iy, ix = yy * sh - pt + i * dh, xx * sw - pl + j * dw
                                if 0 <= iy < h and 0 <= ix < wd:
                                    gx[n, g * cg + c, iy, ix] += w[o, c, i, j] * gy[n, o, yy, xx]
                                    gw[o, c, i, j] += x[n, g * cg + c, iy, ix] * gy[n, o, yy, xx]
    return gx, gw, gy.sum(axis=(0, 2, 3))


def naive_conv_transpose2d(x, w, b, stride, padding, output_padding, dilation, groups):
    """Transposed convolution by its definition: each input pixel stamps w, scaled, into the output."""
    (sh, sw), (ph, pw), (oph, opw), (dh, dw) = stride, padding, output_padding, dilation
    n_, cin, h, wd = x.shape
    _, og, kh, kw = w.shape
    cing = cin // groups
    hout = (h - 1) * sh - 2 * ph + dh * (kh - 1) + oph + 1
    wout = (wd - 1) * sw - 2 * pw + dw * (kw - 1) + opw + 1
    y = np.zeros((n_, og * groups, hout, wout))
    if b is not None:
        y += b.reshape(1, -1, 1, 1)
    for n in range(n_):
        for c in range(cin):
            g = c // cing
            for yy in range(h):
                for xx in range(wd):
                    for o in range(og):
                        for i in range(kh):
                            for j in range(kw):
                                oy, ox = yy * sh - ph + i * dh, xx * sw - pw + j * dw
                                if 0 <= oy < hout and 0 <= ox < wout:
                                    y[n, g * og + o, oy, ox] += x[n, c, yy, xx] * w[c, o, i, j]
    return y


def naive_conv_transpose2d_grads(x, w, gy, stride, padding, dilation, groups):
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    n_, cin, h, wd = x.shape
    _, og, kh, kw = w.shape
    cing = cin // groups
    gx, gw = np.zeros_like(x), np.zeros_like(w)
    for n in range(n_):
        for c in range(cin):
            g = c // cing
            for yy in range(h):
                for xx in range(wd):
                    for o in range(og):
                        for i in range(kh):
                            for j in range(kw):
                                oy, ox = yy * sh - ph + i * dh, xx * sw - pw + j * dw
                                if 0 <= oy < gy.shape[2] and 0 <= ox < gy.shape[3]:
                                    gx[n, c, yy, xx] += gy[n, g * og + o, oy, ox] * w[c, o, i, j]
                                    gw[c, o, i, j] += x[n, c, yy, xx] * gy[n, g * og + o, oy, ox]
    return gx, gw, gy.sum(axis=(0, 2, 3))


def _pads(padding, kernel, dilation):
    """(top, bottom, left, right) for conv2d's padding argument, 'same' as PyTorch."""
    if padding == "valid":
        return (0, 0, 0, 0)
    if padding == "same":
        (th, tw) = [d * (k - 1) for d, k in zip(dilation, kernel)]
        return (th // 2, th - th // 2, tw // 2, tw - tw // 2)
    ph, pw = (padding, padding) if isinstance(padding, int) else padding
    return (ph, ph, pw, pw)


def _run(fn, x, w, b, gy, **kw):
    """Forward and the three gradients (of sum(y * gy)) through minicnn."""
    tx, tw = mc.tensor(x, requires_grad=True), mc.tensor(w, requires_grad=True)
    tb = None if b is None else mc.tensor(b, requires_grad=True)
    y = fn(tx, tw, tb, **kw)
    if gy is None:
        return y.numpy(), None
    (y * mc.tensor(gy)).sum().backward()
    return y.numpy(), (tx.grad.numpy(), tw.grad.numpy(), None if tb is None else tb.grad.numpy())


def check_conv2d(rng, n, c, h, w, o, kernel, stride=(1, 1), padding=0, dilation=(1, 1), groups=1, bias=True):
    x = rng.standard_normal((n, c, h, w))
    wt = rng.standard_normal((o, c // groups) + kernel)
    b = rng.standard_normal(o) if bias else None
    pads = _pads(padding, kernel, dilation)
    ref = naive_conv2d(x, wt, b, stride, pads, dilation, groups)
    gy = rng.standard_normal(ref.shape)
    y, (gx, gw, gb) = _run(F.conv2d, x, wt, b, gy, stride=stride, padding=padding, dilation=dilation,
                           groups=groups)
    assert y.shape == ref.shape
    np.testing.assert_allclose(y, ref, rtol=0, atol=TOL)
    rgx, rgw, rgb = naive_conv2d_grads(x, wt, gy, stride, pads, dilation, groups)
    np.testing.assert_allclose(gx, rgx, rtol=0, atol=TOL)
    np.testing.assert_allclose(gw, rgw, rtol=0, atol=TOL)
    if bias:
        np.testing.assert_allclose(gb, rgb, rtol=0, atol=TOL)


def check_conv_transpose2d(rng, n, cin, h, w, og, kernel, stride=(1, 1), padding=(0, 0), output_padding=(0, 0),
                           dilation=(1, 1), groups=1, bias=True):
    x = rng.standard_normal((n, cin, h, w))
    wt = rng.standard_normal((cin, og) + kernel)
    b = rng.standard_normal(og * groups) if bias else None
    ref = naive_conv_transpose2d(x, wt, b, stride, padding, output_padding, dilation, groups)
    gy = rng.standard_normal(ref.shape)
    y, (gx, gw, gb) = _run(F.conv_transpose2d, x, wt, b, gy, stride=stride, padding=padding,
                           output_padding=output_padding, groups=groups, dilation=dilation)
    assert y.shape == ref.shape
    np.testing.assert_allclose(y, ref, rtol=0, atol=TOL)
    rgx, rgw, rgb = naive_conv_transpose2d_grads(x, wt, gy, stride, padding, dilation, groups)
    np.testing.assert_allclose(gx, rgx, rtol=0, atol=TOL)
    np.testing.assert_allclose(gw, rgw, rtol=0, atol=TOL)
    if bias:
        np.testing.assert_allclose(gb, rgb, rtol=0, atol=TOL)


# -- forward and gradients against the naive loops ------------------------------------------

@pytest.mark.parametrize("case", [
    dict(n=2, c=3, h=7, w=6, o=4, kernel=(3, 3), padding=1),
    dict(n=1, c=2, h=5, w=9, o=3, kernel=(1, 1)),                                  # plain GEMM path
    dict(n=2, c=4, h=5, w=7, o=6, kernel=(1, 1), groups=2, bias=False),            # plain GEMM, grouped
    dict(n=1, c=2, h=7, w=5, o=2, kernel=(1, 1), stride=(2, 3), padding=1),        # 1x1 that needs im2col
    dict(n=1, c=2, h=5, w=9, o=3, kernel=(1, 7), padding=(0, 3)),
    dict(n=1, c=2, h=9, w=5, o=3, kernel=(7, 1), padding=(3, 0)),
    dict(n=2, c=2, h=8, w=3, o=2, kernel=(5, 1), stride=(2, 1)),
    dict(n=1, c=3, h=23, w=27, o=2, kernel=(11, 11), stride=(4, 4), padding=2),    # AlexNet conv1
    dict(n=2, c=4, h=6, w=5, o=4, kernel=(3, 3), padding=1, groups=4),             # depthwise
    dict(n=1, c=3, h=6, w=7, o=6, kernel=(3, 2), padding=(1, 0), groups=3),        # depthwise, multiplier 2
    dict(n=1, c=2, h=9, w=8, o=2, kernel=(3, 3), dilation=(2, 3), padding=(2, 1)),
    dict(n=1, c=2, h=7, w=7, o=3, kernel=(2, 2), stride=(3, 3)),                   # stride > kernel
    dict(n=1, c=2, h=6, w=7, o=3, kernel=(4, 2), padding="same"),                  # even kernel: extra at end
    dict(n=1, c=2, h=6, w=5, o=2, kernel=(2, 3), padding="same", dilation=(3, 2)),
    dict(n=2, c=2, h=6, w=5, o=3, kernel=(3, 2), padding="valid", stride=(2, 1)),
])
def test_conv2d_matches_naive_loops(case):
    check_conv2d(np.random.default_rng(0), **case)


@pytest.mark.parametrize("case", [
    dict(n=2, cin=3, h=4, w=5, og=2, kernel=(3, 3), stride=(2, 2), padding=(1, 1), output_padding=(1, 1)),
    dict(n=1, cin=2, h=3, w=4, og=3, kernel=(2, 2), stride=(2, 2)),                # U-Net up-convolution
    dict(n=1, cin=4, h=3, w=3, og=2, kernel=(1, 1)),                               # plain GEMM path
    dict(n=1, cin=4, h=3, w=5, og=1, kernel=(3, 1), padding=(1, 0), groups=4),     # depthwise
    dict(n=1, cin=2, h=4, w=3, og=2, kernel=(2, 3), stride=(1, 3), dilation=(3, 1), output_padding=(2, 1)),
    dict(n=1, cin=3, h=2, w=2, og=2, kernel=(2, 2), stride=(4, 3), output_padding=(3, 0), bias=False),
    dict(n=2, cin=2, h=3, w=4, og=2, kernel=(1, 1), dilation=(2, 3), output_padding=(1, 2)),  # 1x1, bigger out
])
def test_conv_transpose2d_matches_naive_loops(case):
    check_conv_transpose2d(np.random.default_rng(0), **case)


@st.composite
def conv2d_cases(draw):
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    cg, og = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    dilation = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = draw(st.one_of(st.integers(0, 3), st.tuples(st.integers(0, 3), st.integers(0, 3)),
                             st.sampled_from(["same", "valid"])))
    stride = (1, 1) if padding == "same" else (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    pt, pb, pl, pr = _pads(padding, kernel, dilation)
    min_h = max(1, dilation[0] * (kernel[0] - 1) + 1 - pt - pb)  # the dilated kernel must fit
    min_w = max(1, dilation[1] * (kernel[1] - 1) + 1 - pl - pr)
    h, w = draw(st.integers(min_h, max(min_h + 2, 9))), draw(st.integers(min_w, max(min_w + 2, 9)))
    return dict(n=draw(st.integers(1, 2)), c=cg * groups, h=h, w=w, o=og * groups, kernel=kernel, stride=stride,
                padding=padding, dilation=dilation, groups=groups, bias=draw(st.booleans()))


GENERAL = ["auto", "im2col", "reference"]  # the algorithms that serve every geometry ("tiled" is auto's here)


@pytest.mark.parametrize("algorithm", GENERAL)
@settings(max_examples=40)
@given(conv2d_cases())
def test_conv2d_hypothesis_matches_naive(algorithm, case):
    with mc.backends.conv_algorithm(algorithm):
        check_conv2d(np.random.default_rng(1), **case)


@st.composite
def conv_transpose2d_cases(draw):
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    stride = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    dilation = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = (draw(st.integers(0, 3)), draw(st.integers(0, 3)))
    output_padding = tuple(draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation))
    h, w = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    for n, s, p, d, k, op in zip((h, w), stride, padding, dilation, kernel, output_padding):
        assume((n - 1) * s - 2 * p + d * (k - 1) + op + 1 >= 1)
    return dict(n=draw(st.integers(1, 2)), cin=draw(st.integers(1, 3)) * groups, h=h, w=w,
                og=draw(st.integers(1, 3)), kernel=kernel, stride=stride, padding=padding,
                output_padding=output_padding, dilation=dilation, groups=groups, bias=draw(st.booleans()))


@pytest.mark.parametrize("algorithm", GENERAL)
@settings(max_examples=40)
@given(conv_transpose2d_cases())
def test_conv_transpose2d_hypothesis_matches_naive(algorithm, case):
    with mc.backends.conv_algorithm(algorithm):
        check_conv_transpose2d(np.random.default_rng(2), **case)


# -- every algorithm against the reference ---------------------------------------------------

ALGORITHM_CASES = [  # op, x shape, w shape, keyword arguments
    ("conv2d", (2, 8, 12, 11), (9, 8, 3, 3), dict(padding=1)),                       # Winograd's
    ("conv2d", (1, 16, 20, 20), (8, 16, 3, 3), dict(padding=(2, 0))),                # Winograd, bands
    ("conv2d", (2, 3, 29, 27), (8, 3, 11, 11), dict(stride=4, padding=2)),           # the phases' (AlexNet stem)
    ("conv2d", (2, 8, 15, 14), (8, 8, 5, 5), dict(stride=2, padding=2)),             # phases, 5x5/2
    ("conv2d", (2, 3, 30, 30), (8, 3, 7, 7), dict(stride=2, padding=3)),             # the ResNet stem
    ("conv2d", (2, 6, 9, 10), (6, 2, 3, 2), dict(stride=(2, 1), dilation=(1, 2), groups=3, padding=1)),
    ("conv2d", (3, 8, 7, 7), (12, 8, 1, 1), {}),                                     # pointwise
    ("conv2d", (2, 4, 11, 9), (4, 1, 3, 3), dict(groups=4, padding="same")),         # depthwise
    ("conv2d", (2, 3, 12, 13), (6, 1, 3, 5), dict(groups=3, stride=2, padding=(1, 2), dilation=(2, 1))),
    ("conv2d", (2, 16, 40, 40), (32, 1, 3, 3), dict(groups=16, padding=1)),          # depthwise, parallel loops
    ("conv_transpose2d", (2, 4, 6, 5), (4, 3, 3, 3), dict(stride=2, padding=1, output_padding=1, groups=2)),
    ("conv_transpose2d", (2, 6, 5, 7), (6, 4, 4, 2), dict(stride=(2, 3), dilation=(2, 1))),
]


@pytest.mark.parametrize("case", ALGORITHM_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(ALGORITHM_CASES)])
def test_every_algorithm_matches_the_reference_or_says_why_not(case):
    """Forward and the three gradients of every listed algorithm equal the reference's to 1e-12
    (float64); one that cannot serve the geometry raises an error naming itself and the geometry."""
    op, x_shape, w_shape, kw = case
    fn = getattr(F, op)
    rng = np.random.default_rng(40)
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    b = rng.standard_normal(w_shape[0] if op == "conv2d" else w_shape[1] * kw.get("groups", 1))
    with mc.backends.conv_algorithm("reference"):
        want = _run(fn, x, w, b, None, **kw)[0]
        gy = rng.standard_normal(want.shape)
        want, want_grads = _run(fn, x, w, b, gy, **kw)
    served = []
    for name in mc.backends.conv_algorithms():
        with mc.backends.conv_algorithm(name):
            try:
                y, grads = _run(fn, x, w, b, gy, **kw)
            except ValueError as e:
                assert name not in GENERAL + ["tiled"], e
                assert f"conv algorithm {name!r} cannot run input {x_shape}" in str(e)
                continue
        served.append(name)
        np.testing.assert_allclose(y, want, rtol=0, atol=1e-12 * np.abs(want).max())
        for got, expected in zip(grads, want_grads):
            np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12 * np.abs(expected).max())
    assert {"auto", "im2col", "reference", "tiled"} <= set(served)


@st.composite
def depthwise_cases(draw):
    c, kernel = draw(st.integers(1, 4)), (draw(st.integers(1, 5)), draw(st.integers(1, 5)))
    dilation = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = draw(st.one_of(st.tuples(st.integers(0, 3), st.integers(0, 3)), st.sampled_from(["same", "valid"])))
    stride = (1, 1) if padding == "same" else (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    pt, pb, pl, pr = _pads(padding, kernel, dilation)
    min_h = max(1, dilation[0] * (kernel[0] - 1) + 1 - pt - pb)
    min_w = max(1, dilation[1] * (kernel[1] - 1) + 1 - pl - pr)
    return dict(n=draw(st.integers(1, 2)), c=c, h=draw(st.integers(min_h, min_h + 8)),
                w=draw(st.integers(min_w, min_w + 8)), o=c * draw(st.integers(1, 3)), kernel=kernel, stride=stride,
                padding=padding, dilation=dilation, groups=c, bias=draw(st.booleans()))


@settings(max_examples=60)
@given(depthwise_cases())
def test_depthwise_hypothesis_matches_naive(case):
    """Any multiplier, kernel, stride, padding (also 'same') and dilation, against the 7 loops."""
    with mc.backends.conv_algorithm("depthwise"):
        check_conv2d(np.random.default_rng(3), **case)


def test_gradcheck_depthwise():
    x = mc.tensor(np.random.default_rng(4).standard_normal((2, 3, 7, 8)), requires_grad=True)
    w = mc.tensor(np.random.default_rng(5).standard_normal((6, 1, 3, 2)), requires_grad=True)
    b = mc.tensor(np.random.default_rng(6).standard_normal(6), requires_grad=True)
    with mc.backends.conv_algorithm("depthwise"):
        assert mc.gradcheck(lambda a, k, c: F.conv2d(a, k, c, stride=(2, 1), padding=1, dilation=(1, 2), groups=3),
                            [x, w, b])


def test_auto_takes_the_depthwise_path_for_depthwise_convolutions_only():
    rng = np.random.default_rng(8)
    x = mc.tensor(rng.standard_normal((2, 6, 9, 9)).astype(np.float32))
    depthwise, grouped = mc.tensor(rng.standard_normal((12, 1, 3, 3)).astype(np.float32)), \
        mc.tensor(rng.standard_normal((6, 2, 3, 3)).astype(np.float32))
    with mc.backends.conv_algorithm("depthwise"):
        want = F.conv2d(x, depthwise, padding=1, groups=6).numpy()
        with pytest.raises(ValueError, match=r"conv algorithm 'depthwise' cannot run .* groups=3: it needs "
                                             r"groups equal to the 6 input channels"):
            F.conv2d(x, grouped, groups=3)
    np.testing.assert_array_equal(F.conv2d(x, depthwise, padding=1, groups=6).numpy(), want)
    from types import SimpleNamespace

    from minicnn.ops import conv_algorithms, conv_depthwise

    win = Window(3, 3, 1, 1, 1, 1, 1, 1)
    for groups, w, path in ((6, depthwise, conv_depthwise.Conv2d), (3, grouped, conv_tiled.Conv2d)):
        fn = SimpleNamespace(groups=groups, win=win, oh=9, ow=9)
        assert conv_algorithms.fastest("conv2d", fn, x.numpy(), w.numpy()) is path
    one_channel = SimpleNamespace(groups=1, win=win, oh=9, ow=9)  # groups = C = 1: an ordinary convolution
    assert conv_algorithms.fastest("conv2d", one_channel, np.zeros((1, 1, 9, 9)), np.zeros((4, 1, 3, 3))) \
        is not conv_depthwise.Conv2d


def test_reference_is_the_definition():
    """The package's reference, against the seven loops above, with groups, stride, dilation, padding."""
    rng = np.random.default_rng(41)
    x, w = rng.standard_normal((2, 4, 7, 8)), rng.standard_normal((6, 2, 3, 2))
    win = Window(3, 2, 2, 1, 1, 2, 1, 2)
    y = conv_reference.conv2d(x, w, win, 2, 4, 10)
    np.testing.assert_allclose(y, naive_conv2d(x, w, None, (2, 1), (1, 1, 2, 2), (1, 2), 2), rtol=0, atol=TOL)
    gy = rng.standard_normal(y.shape)
    gx, gw, _ = naive_conv2d_grads(x, w, gy, (2, 1), (1, 1, 2, 2), (1, 2), 2)
    np.testing.assert_allclose(conv_reference.conv2d_input_grad(gy, w, win, 2, x.shape), gx, rtol=0, atol=TOL)
    np.testing.assert_allclose(conv_reference.conv2d_weight_grad(x, gy, win, 2), gw, rtol=0, atol=TOL)


def test_conv_algorithm_switch_is_scoped_and_checks_its_name():
    names = mc.backends.conv_algorithms()
    assert names[0] == "auto" and {"im2col", "reference", "tiled", "winograd", "phases"} <= set(names)
    assert mc.backends.current_conv_algorithm() == "auto"
    with mc.backends.conv_algorithm("im2col"):
        assert mc.backends.current_conv_algorithm() == "im2col"
        with pytest.raises(ValueError, match="conv algorithm 'winograd' cannot run input"):
            with mc.backends.conv_algorithm("winograd"):
                F.conv2d(mc.randn(1, 2, 5, 5), mc.randn(2, 2, 3, 3), stride=2)
        assert mc.backends.current_conv_algorithm() == "im2col"
    assert mc.backends.current_conv_algorithm() == "auto"
    with pytest.raises(ValueError, match="unknown algorithm 'fft'; choose one of auto, im2col"):
        with mc.backends.conv_algorithm("fft"):
            pass


# -- gradcheck (central differences, float64) --------------------------------------------

def _leaves(rng, *shapes):
    return [mc.tensor(rng.standard_normal(s), requires_grad=True) for s in shapes]


def test_gradcheck_conv2d():
    rng = np.random.default_rng(3)
    x, w, b = _leaves(rng, (2, 4, 5, 6), (6, 2, 3, 2), (6,))
    assert mc.gradcheck(lambda x, w, b: F.conv2d(x, w, b, stride=(2, 1), padding=(1, 2), dilation=(1, 2),
                                                 groups=2), [x, w, b])
    x, w, b = _leaves(rng, (1, 3, 4, 5), (2, 3, 1, 1), (2,))
    assert mc.gradcheck(lambda x, w, b: F.conv2d(x, w, b), [x, w, b])  # the im2col-free path
    x, w = _leaves(rng, (1, 2, 5, 4), (2, 2, 2, 3))
    assert mc.gradcheck(lambda x, w: F.conv2d(x, w, padding="same"), [x, w])


def test_gradcheck_conv_transpose2d():
    rng = np.random.default_rng(4)
    x, w, b = _leaves(rng, (2, 4, 3, 4), (4, 3, 3, 2), (6,))
    assert mc.gradcheck(lambda x, w, b: F.conv_transpose2d(x, w, b, stride=(2, 3), padding=(1, 0),
                                                           output_padding=(1, 2), groups=2, dilation=(1, 2)),
                        [x, w, b])
    x, w, b = _leaves(rng, (1, 3, 3, 3), (3, 2, 1, 1), (2,))
    assert mc.gradcheck(lambda x, w, b: F.conv_transpose2d(x, w, b), [x, w, b])


def test_gradient_of_one_input_only():
    """needs_input_grad: asking for one gradient computes that one, and it is right."""
    rng = np.random.default_rng(5)
    x, w = rng.standard_normal((2, 3, 6, 5)), rng.standard_normal((4, 3, 3, 3))
    gy = rng.standard_normal((2, 4, 2, 2))
    rgx, rgw, _ = naive_conv2d_grads(x, w, gy, (2, 2), (0, 0, 0, 0), (1, 1), 1)
    for want in ("x", "w"):
        tx, tw = mc.tensor(x, requires_grad=want == "x"), mc.tensor(w, requires_grad=want == "w")
        (F.conv2d(tx, tw, stride=2) * mc.tensor(gy)).sum().backward()
        assert (tx.grad is None) == (want == "w") and (tw.grad is None) == (want == "x")
        got, ref = (tx.grad, rgx) if want == "x" else (tw.grad, rgw)
        np.testing.assert_allclose(got.numpy(), ref, rtol=0, atol=TOL)


# -- adjointness ---------------------------------------------------------------------------

@settings(max_examples=60)
@given(conv2d_cases())
def test_conv_transpose2d_is_the_adjoint_of_conv2d(case):
    """<conv2d(x, w), y> == <x, conv_transpose2d(y, w)> with output_padding making the sizes agree."""
    rng = np.random.default_rng(6)
    pt, pb, pl, pr = _pads(case["padding"], case["kernel"], case["dilation"])
    assume(pt == pb and pl == pr)  # conv_transpose2d pads symmetrically
    x = rng.standard_normal((case["n"], case["c"], case["h"], case["w"]))
    w = rng.standard_normal((case["o"], case["c"] // case["groups"]) + case["kernel"])
    y = F.conv2d(mc.tensor(x), mc.tensor(w), stride=case["stride"], padding=(pt, pl), dilation=case["dilation"],
                 groups=case["groups"])
    v = rng.standard_normal(y.shape)
    out_pad = tuple(n + 2 * p - d * (k - 1) - 1 - (o - 1) * s for n, p, d, k, o, s in zip(
        (case["h"], case["w"]), (pt, pl), case["dilation"], case["kernel"], y.shape[2:], case["stride"]))
    xt = F.conv_transpose2d(mc.tensor(v), mc.tensor(w), stride=case["stride"], padding=(pt, pl),
                            output_padding=out_pad, groups=case["groups"], dilation=case["dilation"])
    assert xt.shape == x.shape
    lhs, rhs = float((y.numpy() * v).sum()), float((x * xt.numpy()).sum())
    assert abs(lhs - rhs) <= 1e-10 * max(1.0, abs(lhs))


@st.composite
def col_geometries(draw):
    """Any im2col geometry, including grids that reach past the bottom/right of the image."""
    k = [draw(st.integers(1, 4)) for _ in range(8)]
    kh, kw, sh, sw, dh, dw = k[0], k[1], k[2], k[3], min(k[4], 3), min(k[5], 3)
    ph, pw = k[6] - 1, k[7] - 1
    h, w, oh, ow = (draw(st.integers(1, 7)) for _ in range(4))
    return (draw(st.integers(1, 2)), draw(st.integers(1, 3)), h, w), (kh, kw, sh, sw, ph, pw, dh, dw, oh, ow)


@settings(max_examples=60)
@given(col_geometries())
def test_im2col_layout_and_col2im_adjointness(geometry):
    (n, c, h, w), g = geometry
    kh, kw, sh, sw, ph, pw, dh, dw, oh, ow = g
    rng = np.random.default_rng(7)
    x = rng.standard_normal((n, c, h, w))
    col = kernels.im2col(x, *g)
    assert col.shape == (n, c * kh * kw, oh * ow)
    for cc in range(c):  # the kernel spec's layout, entry by entry
        for i in range(kh):
            for j in range(kw):
                for y in range(oh):
                    for xx in range(ow):
                        iy, ix = y * sh - ph + i * dh, xx * sw - pw + j * dw
                        want = x[:, cc, iy, ix] if 0 <= iy < h and 0 <= ix < w else 0.0
                        np.testing.assert_array_equal(col[:, (cc * kh + i) * kw + j, y * ow + xx], want)
    v = rng.standard_normal(col.shape)
    back = kernels.col2im(v, h, w, *g)
    assert back.shape == x.shape
    assert abs((col * v).sum() - (x * back).sum()) <= 1e-10 * max(1.0, abs((col * v).sum()))


def test_parallel_col2im_matches():
    """col2im runs serially below a size threshold; the parallel loop must agree."""
    rng = np.random.default_rng(16)
    g = (3, 3, 1, 1, 1, 1, 1, 2, 24, 22)  # kh kw sh sw ph pw dh dw oh ow
    x = rng.standard_normal((2, 16, 24, 24))
    col = kernels.im2col(x, *g)
    assert col.size >= tuning.COL2IM_PARALLEL_MIN_SIZE
    v = rng.standard_normal(col.shape)
    back = kernels.col2im(v, 24, 24, *g)
    assert abs((col * v).sum() - (x * back).sum()) <= 1e-10 * abs((col * v).sum())
    with tuning.override(COL2IM_PARALLEL_MIN_SIZE=2**62):
        np.testing.assert_array_equal(kernels.col2im(v, 24, 24, *g), back)
    with tuning.override(COL2IM_PARALLEL_MIN_SIZE=0):
        check_conv2d(rng, n=2, c=2, h=7, w=6, o=3, kernel=(3, 2), stride=(2, 1), padding=1, dilation=(1, 2))
        check_conv_transpose2d(rng, n=2, cin=2, h=3, w=4, og=2, kernel=(3, 3), stride=(2, 2), padding=(1, 1))


def test_kernel_out_must_fit():
    x = np.zeros((1, 2, 4, 4))
    with pytest.raises(ValueError, match=r"im2col: out must be a C-contiguous float64 array of shape \(1, 18, 4\)"):
        kernels.im2col(x, 3, 3, 1, 1, 0, 0, 1, 1, 2, 2, out=np.zeros((1, 4, 18)).transpose(0, 2, 1))
    with pytest.raises(ValueError, match=r"col2im: out must be .* shape \(1, 2, 4, 4\)"):
        kernels.col2im(np.zeros((1, 18, 4)), 4, 4, 3, 3, 1, 1, 0, 0, 1, 1, 2, 2, out=np.zeros((1, 2, 4, 4), np.float32))


def test_kernels_are_exported_for_backend_dispatch():
    assert minicnn.cpu.im2col is kernels.im2col and minicnn.cpu.col2im is kernels.col2im


# -- workspace: tiling and reuse ---------------------------------------------------------

_own_buffer = workspace.thread_buffer


@pytest.fixture
def workspace_limit():
    """Set a temporary workspace limit; restore the default afterwards."""
    previous = mc.backends.get_workspace_limit()
    yield mc.backends.set_workspace_limit
    mc.backends.set_workspace_limit(previous)


@pytest.mark.parametrize("transposed", [False, True])
@pytest.mark.parametrize("tiles", ["2 images", "3 rows", "1 row"])
def test_tiled_workspace_gives_the_untiled_result(workspace_limit, transposed, tiles):
    rng = np.random.default_rng(8)
    if transposed:  # columns: (6 output channels * 3*3) x (5*4 input pixels) per image
        x, w, b = rng.standard_normal((5, 4, 5, 4)), rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(6)
        kw = dict(stride=(2, 1), padding=(1, 1), output_padding=(1, 0), groups=2, dilation=(1, 2))
        fn, row_bytes, rows = F.conv_transpose2d, 6 * 9 * 4 * 8, 5
    else:  # columns: (4 input channels * 3*3) x (9*4 output pixels) per image
        x, w, b = rng.standard_normal((5, 4, 9, 8)), rng.standard_normal((6, 2, 3, 3)), rng.standard_normal(6)
        kw = dict(stride=(1, 2), padding=(2, 1), groups=2, dilation=(2, 1))
        fn, row_bytes, rows = F.conv2d, 4 * 9 * 4 * 8, 9
    y0 = fn(mc.tensor(x), mc.tensor(w), mc.tensor(b), **kw)
    gy = rng.standard_normal(y0.shape)
    ref = _run(fn, x, w, b, gy, **kw)
    limit, tile_bytes = {"2 images": (2 * rows * row_bytes, 2 * rows * row_bytes),
                         "3 rows": (3 * row_bytes + 7, 3 * row_bytes),
                         "1 row": (1, row_bytes)}[tiles]  # a tile never has less than one row
    workspace_limit(limit)  # also frees the buffer
    y, grads = _run(fn, x, w, b, gy, **kw)
    assert _own_buffer().nbytes == tile_bytes
    np.testing.assert_allclose(y, ref[0], rtol=0, atol=1e-12)
    for got, want in zip(grads, ref[1]):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


TILING_CASES = [  # fn, x shape, w shape, stride, padding, dilation, groups (output_padding (1, 1) if transposed)
    (F.conv2d, (3, 4, 11, 9), (6, 2, 3, 3), (1, 1), (1, 1), (1, 1), 2),             # gx by correlation
    (F.conv2d, (2, 3, 13, 10), (4, 3, 5, 4), (3, 2), (2, 1), (1, 1), 1),            # gx by col2im, bands overlap
    (F.conv2d, (2, 2, 12, 11), (3, 2, 2, 2), (3, 4), (0, 0), (1, 1), 1),            # stride > kernel
    (F.conv2d, (2, 2, 14, 9), (4, 1, 3, 2), (1, 1), (2, 1), (2, 3), 2),             # dilation, groups
    (F.conv2d, (2, 3, 23, 21), (4, 3, 11, 11), (4, 4), (2, 2), (1, 1), 1),          # a stem: im2col by phase
    (F.conv_transpose2d, (2, 4, 6, 5), (4, 3, 3, 3), (2, 2), (1, 1), (1, 1), 2),
    (F.conv_transpose2d, (2, 2, 5, 7), (2, 3, 4, 2), (2, 3), (0, 1), (2, 1), 1),
]


@pytest.mark.parametrize("case", TILING_CASES, ids=[f"{c[0].__name__}-{i}" for i, c in enumerate(TILING_CASES)])
def test_tiles_of_any_size_give_the_same_result(workspace_limit, case):
    """Whole batch, chunks of images (cache tile), one image, odd bands of rows, single rows
    (workspace limit): forward and all three gradients agree to rounding (float64), and the
    buffer holds one tile."""
    fn, x_shape, w_shape, stride, padding, dilation, groups = case
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    rng = np.random.default_rng(30)
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    if fn is F.conv2d:
        b = rng.standard_normal(w_shape[0])
        want = naive_conv2d(x, w, b, stride, _pads(padding, w_shape[2:], dilation), dilation, groups)
    else:
        kw["output_padding"] = (1, 1)
        b = rng.standard_normal(w_shape[1] * groups)
        want = naive_conv_transpose2d(x, w, b, stride, padding, (1, 1), dilation, groups)
    gy = rng.standard_normal(want.shape)
    # one grid row of columns (bytes): conv2d's grid is its output, conv_transpose2d's its input
    grid_w = want.shape[3] if fn is F.conv2d else x_shape[3]
    row_bytes = max(x_shape[1], want.shape[1]) * w_shape[2] * w_shape[3] * grid_w * 8
    with tuning.override(CACHE_TILE=2**40), mc.backends.conv_algorithm("tiled"):
        ref = _run(fn, x, w, b, gy, **kw)
    np.testing.assert_allclose(ref[0], want, rtol=0, atol=TOL)
    image_bytes = row_bytes * (want.shape[2] if fn is F.conv2d else x_shape[2])
    for tile, limit in [(image_bytes, 2**30), (2 * image_bytes, 2**30), (2**40, 3 * row_bytes - 1),
                        (2**40, 2 * row_bytes), (2**40, 1)]:
        workspace_limit(limit)  # also frees the buffer
        with tuning.override(CACHE_TILE=tile), mc.backends.conv_algorithm("tiled"):
            y, grads = _run(fn, x, w, b, gy, **kw)
        np.testing.assert_allclose(y, ref[0], rtol=0, atol=1e-12)
        for got, expected in zip(grads, ref[1]):
            np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
        # one tile, plus where the bias rides in the GEMM (one image a tile) its row of ones
        ones_row = want.shape[2] * want.shape[3] * 8 if fn is F.conv2d else 0
        assert _own_buffer().nbytes <= max(min(tile, limit), row_bytes) + ones_row


@settings(max_examples=80)
@given(col_geometries())
def test_im2col_by_phase_on_any_geometry(geometry):
    """Every geometry with a horizontal stride through the phase path equals the strided view."""
    (n, c, h, w), g = geometry
    x = np.random.default_rng(33).standard_normal((n, c, h, w))
    with tuning.override(IM2COL_PHASE_MIN_TAPS_PER_STEP=2**30):
        want = kernels.im2col(x, *g)
    with tuning.override(IM2COL_PHASE_MIN_TAPS_PER_STEP=0):
        np.testing.assert_array_equal(kernels.im2col(x, *g), want)


def test_chunks_fit_the_cache_tile_and_bands_have_equal_heights(workspace_limit):
    # one image: 3*3*3 rows of columns, 10x8 output pixels; one output row of columns = 27*8*4 bytes
    plan = conv_tiled.ColumnPlan((2, 3, 10, 8), Window(3, 3, 1, 1, 1, 1, 1, 1), 10, 8, 1)
    row = 27 * 8 * 4
    gpu = object()  # any array module but NumPy: no cache tile, only the workspace limit
    with tuning.override(CACHE_TILE=25 * row):  # whole images, two at a time
        assert plan.tiles(np, 5, 4) == [(0, 2, 0, 10), (2, 4, 0, 10), (4, 5, 0, 10)]
        assert plan.tiles(gpu, 5, 4) == [(0, 5, 0, 10)]
    with tuning.override(CACHE_TILE=4 * row):  # one at a time: never cut into bands
        assert plan.tiles(np, 2, 4) == [(0, 1, 0, 10), (1, 2, 0, 10)]
        workspace_limit(4 * row)  # bands, of heights 3, 3, 4 rather than 4, 4, 2
        assert plan.tiles(np, 2, 4) == [(n, n + 1, y0, y1) for n in range(2) for y0, y1 in [(0, 3), (3, 6), (6, 10)]]
        assert plan.tiles(gpu, 2, 4) == plan.tiles(np, 2, 4)
        workspace_limit(1)  # a band has at least one row
        assert plan.tiles(np, 1, 4) == [(0, 1, y, y + 1) for y in range(10)]


@pytest.mark.parametrize("threshold", [0, 2**30])
def test_im2col_by_phase_matches_the_strided_view(threshold):
    """Strided im2col by column phases (or not, whatever the kernel) gives the layout exactly."""
    rng = np.random.default_rng(31)
    x = rng.standard_normal((2, 3, 17, 19))
    for g in [(11, 11, 4, 4, 2, 2, 1, 1, 3, 3), (7, 7, 2, 2, 3, 3, 1, 1, 9, 10), (3, 5, 2, 3, 0, 4, 2, 3, 6, 7),
              (2, 2, 3, 4, 0, 0, 1, 1, 5, 4), (4, 3, 1, 2, 1, 1, 1, 2, 8, 12)]:
        with tuning.override(IM2COL_PHASE_MIN_TAPS_PER_STEP=2**30):
            want = kernels.im2col(x, *g)
        with tuning.override(IM2COL_PHASE_MIN_TAPS_PER_STEP=threshold):
            np.testing.assert_array_equal(kernels.im2col(x, *g), want)
    x32 = x.astype(np.float32)[:, :, :, :18]  # float32, an even width
    out = np.empty((2, 3 * 7 * 7, 9 * 9), np.float32)
    with tuning.override(IM2COL_PHASE_MIN_TAPS_PER_STEP=threshold):
        assert kernels.im2col(x32, 7, 7, 2, 2, 3, 3, 1, 1, 9, 9, out=out) is out
    with tuning.override(IM2COL_PHASE_MIN_TAPS_PER_STEP=2**30):
        np.testing.assert_array_equal(out, kernels.im2col(x32, 7, 7, 2, 2, 3, 3, 1, 1, 9, 9))


def _weight_grad_by_taps(image, gy, kernel, stride, padding, dilation, groups):
    """gw[o, c, i, j] = sum_{n, y, x} gy[n, o, y, x] * image[n, g*Cg + c, y*sh - ph + i*dh, x*sw - pw + j*dw],
    one einsum per tap: a reference fast enough for maps big enough to take the col @ gy^T path."""
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel, stride, padding, dilation
    n, c, h, w = image.shape
    o, oh, ow = gy.shape[1:]
    pad = np.zeros((n, c, h + 2 * ph + sh * oh + dh * kh, w + 2 * pw + sw * ow + dw * kw))
    pad[:, :, ph:ph + h, pw:pw + w] = image
    cg, og = c // groups, o // groups
    gw = np.zeros((o, cg, kh, kw))
    for g in range(groups):
        for i in range(kh):
            for j in range(kw):
                taps = pad[:, g * cg:(g + 1) * cg, i * dh:i * dh + sh * oh:sh, j * dw:j * dw + sw * ow:sw]
                gw[g * og:(g + 1) * og, :, i, j] = np.einsum("noyx,ncyx->oc", gy[:, g * og:(g + 1) * og], taps)
    return gw


@pytest.mark.parametrize("small_map_pixels", [1024, 2**30])  # col @ gy^T (the default here), gy @ col^T
def test_weight_gradient_of_big_maps_in_both_gemm_orientations(small_map_pixels):
    with tuning.override(SMALL_MAP_PIXELS=small_map_pixels), mc.backends.conv_algorithm("tiled"):
        _check_weight_gradient_of_big_maps()


def _check_weight_gradient_of_big_maps():
    rng = np.random.default_rng(32)
    # conv2d: 144 rows of columns per group, 33*32 output pixels
    x, w = rng.standard_normal((2, 32, 65, 64)), rng.standard_normal((8, 16, 3, 3))
    kw = dict(stride=(2, 2), padding=(1, 1), dilation=(1, 1), groups=2)
    gy = rng.standard_normal(F.conv2d(mc.tensor(x), mc.tensor(w), **kw).shape)
    assert gy.shape[2:] == (33, 32)
    _, (_, gw, _) = _run(F.conv2d, x, w, None, gy, **kw)
    np.testing.assert_allclose(gw, _weight_grad_by_taps(x, gy, (3, 3), **kw), rtol=0, atol=TOL)
    # conv_transpose2d: gW[cin, o] correlates gy (as the image) with x (as the gradient)
    x, w = rng.standard_normal((2, 8, 32, 33)), rng.standard_normal((8, 16, 3, 3))
    kw = dict(stride=(1, 1), padding=(1, 1), dilation=(2, 1), groups=1)
    gy = rng.standard_normal(F.conv_transpose2d(mc.tensor(x), mc.tensor(w), **kw).shape)
    _, (_, gw, _) = _run(F.conv_transpose2d, x, w, None, gy, **kw)
    np.testing.assert_allclose(gw, _weight_grad_by_taps(gy, x, (3, 3), **kw), rtol=0, atol=TOL)


@pytest.mark.parametrize("path", ["tiled", "winograd"])
def test_workspace_limit_bounds_peak_memory(workspace_limit, path):
    """A 3x3 conv's columns are 9x the image (Winograd's transformed tiles 4x); under a small
    limit, forward+backward stays near the sizes of the image and its gradient."""
    with mc.backends.conv_algorithm(path):
        _check_peak_memory(workspace_limit, path)


def _check_peak_memory(workspace_limit, path):
    rng = np.random.default_rng(17)
    x = mc.tensor(rng.standard_normal((1, 8, 128, 128)), requires_grad=True)  # 1 MiB; columns 9 MiB
    w = mc.tensor(rng.standard_normal((8, 8, 3, 3)), requires_grad=True)
    gy = mc.tensor(rng.standard_normal((1, 8, 128, 128)))
    peaks = []
    for limit in (2**30, 256 * 2**10):
        workspace_limit(limit)
        tracemalloc.start()
        F.conv2d(x, w, padding=1).backward(gy)
        peaks.append(tracemalloc.get_traced_memory()[1] / 2**20)
        tracemalloc.stop()
    assert peaks[0] > (9 if path == "tiled" else 4) and peaks[1] < 3.5, peaks  # MiB


def test_workspace_buffer_is_reused_and_never_aliases_results(workspace_limit):
    workspace_limit(64 * 2**20)
    rng = np.random.default_rng(9)
    w = mc.tensor(rng.standard_normal((3, 2, 3, 3)))
    y1 = F.conv2d(mc.tensor(rng.standard_normal((2, 2, 8, 8))), w, padding=1)
    kept, buffer = y1.numpy().copy(), _own_buffer()
    y2 = F.conv2d(mc.tensor(rng.standard_normal((2, 2, 8, 8))), w, padding=1)
    assert _own_buffer() is buffer  # same size: the buffer is reused
    np.testing.assert_array_equal(y1.numpy(), kept)  # the earlier output was not overwritten
    assert not np.shares_memory(y2.numpy(), buffer)


def test_set_workspace_limit_rejects_non_positive():
    with pytest.raises(ValueError, match="set_workspace_limit"):
        mc.backends.set_workspace_limit(0)


def test_pointwise_convolution_skips_im2col(monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("im2col/col2im called for a 1x1 stride-1 unpadded convolution")

    monkeypatch.setattr(minicnn.cpu, "im2col", forbidden)
    monkeypatch.setattr(minicnn.cpu, "col2im", forbidden)
    check_conv2d(np.random.default_rng(10), n=2, c=4, h=3, w=5, o=6, kernel=(1, 1), groups=2, dilation=(2, 3))
    check_conv_transpose2d(np.random.default_rng(10), n=2, cin=4, h=3, w=5, og=3, kernel=(1, 1), groups=2)


# -- dtypes, shapes, layers ---------------------------------------------------------------

@pytest.mark.parametrize("fn", [F.conv2d, F.conv_transpose2d])
def test_float32_stays_float32(fn):
    rng = np.random.default_rng(11)
    x = mc.tensor(rng.standard_normal((2, 4, 6, 5)).astype(np.float32), requires_grad=True)
    w = mc.tensor(rng.standard_normal((4, 2, 3, 3)).astype(np.float32), requires_grad=True)
    b = mc.tensor(rng.standard_normal(4).astype(np.float32), requires_grad=True)
    y = fn(x, w, b, stride=2, padding=1, groups=2)
    assert y.dtype == np.float32
    y.sum().backward()
    assert x.grad.dtype == w.grad.dtype == b.grad.dtype == np.float32
    ref = fn(mc.tensor(x.numpy().astype(np.float64)), mc.tensor(w.numpy().astype(np.float64)),
             mc.tensor(b.numpy().astype(np.float64)), stride=2, padding=1, groups=2)
    np.testing.assert_allclose(y.numpy(), ref.numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("fn", [F.conv2d, F.conv_transpose2d])
def test_unbatched_input_is_a_batch_of_one(fn):
    rng = np.random.default_rng(12)
    x, w = rng.standard_normal((2, 5, 4)), rng.standard_normal((2, 2, 2, 3))
    y = fn(mc.tensor(x), mc.tensor(w), stride=2, padding=1)
    y4 = fn(mc.tensor(x[None]), mc.tensor(w), stride=2, padding=1)
    assert y.shape == y4.shape[1:]
    np.testing.assert_array_equal(y.numpy(), y4.numpy()[0])


def test_conv2d_layer_parameters_and_init():
    m = nn.Conv2d(6, 8, (3, 5), stride=2, padding=1, groups=2)
    assert [k for k, _ in m.named_parameters()] == ["weight", "bias"]
    assert m.weight.shape == (8, 3, 3, 5) and m.bias.shape == (8,)
    assert m.weight.dtype == np.float32 and set(m.state_dict()) == {"weight", "bias"}
    bound = 1 / math.sqrt(3 * 3 * 5)  # kaiming_uniform(a=sqrt(5)) and the bias both give 1/sqrt(fan_in)
    for p in (m.weight.numpy(), m.bias.numpy()):
        assert np.abs(p).max() <= bound and np.abs(p).max() > 0.5 * bound
    assert nn.Conv2d(2, 2, 3, bias=False).bias is None
    assert m.kernel_size == (3, 5) and m.stride == (2, 2) and m.padding == (1, 1) and m.dilation == (1, 1)
    assert repr(m) == "Conv2d(6, 8, kernel_size=(3, 5), stride=(2, 2), padding=(1, 1), groups=2)"


def test_conv_transpose2d_layer_parameters_and_init():
    m = nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2, bias=True)
    assert m.weight.shape == (4, 3, 3, 3) and m.bias.shape == (6,)
    bound = 1 / math.sqrt(3 * 3 * 3)  # fan_in from weight.shape[1] = out_channels/groups, as PyTorch
    assert np.abs(m.weight.numpy()).max() <= bound and np.abs(m.bias.numpy()).max() <= bound
    x = mc.randn(2, 4, 5, 6)
    assert m(x).shape == (2, 6, 10, 12)
    assert repr(m) == ("ConvTranspose2d(4, 6, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), "
                       "output_padding=(1, 1), groups=2)")


def test_conv_transpose2d_layer_output_size():
    m = nn.ConvTranspose2d(3, 2, 3, stride=2, padding=1)
    x = mc.randn(1, 3, 5, 5)
    assert m(x).shape == (1, 2, 9, 9)
    assert m(x, output_size=(10, 9)).shape == (1, 2, 10, 9)
    assert m(x, output_size=[1, 2, 10, 10]).shape == (1, 2, 10, 10)
    with pytest.raises(ValueError, match=r"output size of \(12, 10\).*\(9, 9\) to \(10, 10\)"):
        m(x, output_size=(12, 10))


def test_conv2d_layer_same_padding_keeps_the_size_and_matches_naive():
    m = nn.Conv2d(2, 3, (4, 3), padding="same", dilation=(1, 2)).double()
    x = np.random.default_rng(13).standard_normal((1, 2, 7, 6))
    y = m(mc.tensor(x))
    assert y.shape == (1, 3, 7, 6)
    ref = naive_conv2d(x, m.weight.numpy(), m.bias.numpy(), (1, 1), _pads("same", (4, 3), (1, 2)), (1, 2), 1)
    np.testing.assert_allclose(y.numpy(), ref, rtol=0, atol=TOL)


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
def test_conv2d_layer_padding_modes_pad_explicitly(mode):
    m = nn.Conv2d(2, 3, 3, padding=(1, 2), stride=(1, 2), padding_mode=mode).double()
    x = mc.tensor(np.random.default_rng(14).standard_normal((2, 2, 5, 6)))
    want = F.conv2d(mc.pad(x, (2, 2, 1, 1), mode=mode), m.weight, m.bias, stride=(1, 2))
    np.testing.assert_array_equal(m(x).numpy(), want.numpy())
    assert repr(m).endswith(f"padding_mode={mode})")


def test_conv_layers_train_through_backward():
    m = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ConvTranspose2d(4, 2, 2, stride=2))
    y = m(mc.randn(3, 1, 4, 4))
    assert y.shape == (3, 2, 8, 8)
    y.sum().backward()
    assert all(p.grad is not None and p.grad.shape == p.shape for p in m.parameters())


def test_layer_argument_errors():
    with pytest.raises(ValueError, match=r"Conv2d: in_channels \(3\) must be divisible by groups \(2\)"):
        nn.Conv2d(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match=r"Conv2d: out_channels \(5\) must be divisible by groups \(2\)"):
        nn.Conv2d(4, 5, 3, groups=2)
    with pytest.raises(ValueError, match="strided"):
        nn.Conv2d(2, 2, 3, stride=2, padding="same")
    with pytest.raises(ValueError, match="padding_mode"):
        nn.Conv2d(2, 2, 3, padding_mode="mirror")
    with pytest.raises(ValueError, match="ConvTranspose2d.*zeros"):
        nn.ConvTranspose2d(2, 2, 3, padding_mode="reflect")


# -- bad input: clear errors ----------------------------------------------------------------

def _t(*shape, dtype=np.float64):
    return mc.tensor(np.zeros(shape, dtype))


@pytest.mark.parametrize("call, error, message", [
    (lambda: F.conv2d(_t(2, 3, 8, 8), _t(16, 4, 3, 3)), ValueError,
     r"conv2d: input has 3 channels \(shape \(2, 3, 8, 8\)\) but weight \(16, 4, 3, 3\) with groups=1 expects 4"),
    (lambda: F.conv2d(_t(2, 4, 8, 8), _t(6, 1, 3, 3), groups=2), ValueError,
     r"conv2d: input has 4 channels .* weight \(6, 1, 3, 3\) with groups=2 expects 2"),
    (lambda: F.conv2d(_t(2, 3, 8, 8), _t(4, 1, 3, 3), groups=2), ValueError,
     r"conv2d: input channels \(3\) are not divisible by groups=2"),
    (lambda: F.conv2d(_t(2, 4, 8, 8), _t(5, 2, 3, 3), groups=2), ValueError,
     r"conv2d: weight's out_channels \(5\) are not divisible by groups=2"),
    (lambda: F.conv2d(_t(1, 1, 4, 4), _t(1, 1, 3, 3), groups=0), ValueError, "conv2d: groups must be a positive"),
    (lambda: F.conv2d(_t(1, 1, 2, 2), _t(1, 1, 5, 5), padding=1), ValueError,
     r"conv2d: kernel 5x5 .* larger than the padded input 4x4"),
    (lambda: F.conv2d(_t(1, 1, 6, 6), _t(1, 1, 3, 3), dilation=3), ValueError,
     r"conv2d: kernel 3x3 \(dilation \(3, 3\), extent 7x7\)"),
    (lambda: F.conv2d(_t(1, 1, 0, 5), _t(1, 1, 1, 1), padding="same"), ValueError,
     r"conv2d: output size 0x5 is not positive"),
    (lambda: F.conv_transpose2d(_t(1, 1, 2, 2), _t(1, 1, 3, 3), padding=3), ValueError,
     r"conv_transpose2d: output size -2x-2 is not positive"),
    (lambda: F.conv2d(_t(3, 8, 8), _t(4, 3, 3, 3)[0]), ValueError, r"conv2d: expected a 4-D weight, got shape"),
    (lambda: F.conv2d(_t(8, 8), _t(1, 1, 3, 3)), ValueError, r"conv2d: expected a 4-D input .* got 2-D"),
    (lambda: F.conv_transpose2d(_t(1, 1, 1, 8, 8), _t(1, 1, 3, 3)), ValueError,
     r"conv_transpose2d: expected a 4-D input .* got 5-D"),
    (lambda: F.conv2d(_t(1, 2, 5, 5, dtype=np.float32), _t(1, 2, 3, 3)), TypeError,
     "conv2d: input, weight and bias must have the same dtype, got input float32, weight float64"),
    (lambda: F.conv_transpose2d(_t(1, 2, 5, 5), _t(2, 1, 3, 3), _t(1, dtype=np.float32)), TypeError,
     "conv_transpose2d: .* bias float32"),
    (lambda: F.conv2d(_t(1, 2, 5, 5, dtype=np.int64), _t(1, 2, 3, 3, dtype=np.int64)), TypeError,
     "conv2d: expected a floating point input, got dtype int64"),
    (lambda: F.conv2d(_t(1, 2, 5, 5), _t(3, 2, 3, 3), _t(2)), ValueError,
     r"conv2d: bias of shape \(2,\) does not match the 3 output channels"),
    (lambda: F.conv2d(_t(1, 2, 5, 5), _t(3, 2, 3, 3), stride=2, padding="same"), ValueError,
     "conv2d: padding='same' is not supported for strided convolutions"),
    (lambda: F.conv2d(_t(1, 2, 5, 5), _t(3, 2, 3, 3), padding="full"), ValueError, "conv2d: padding must be"),
    (lambda: F.conv2d(_t(1, 2, 5, 5), _t(3, 2, 3, 3), stride=0), ValueError, r"conv2d: stride must be >= 1"),
    (lambda: F.conv2d(_t(1, 2, 5, 5), _t(3, 2, 3, 3), padding=-1), ValueError, r"conv2d: padding must be >= 0"),
    (lambda: F.conv2d(_t(1, 2, 5, 5), _t(3, 2, 3, 3), stride=(1, 2, 3)), TypeError,
     "conv2d: stride must be an int or a pair"),
    (lambda: F.conv2d(np.zeros((1, 2, 5, 5)), _t(3, 2, 3, 3)), TypeError, "conv2d: input must be a Tensor"),
    (lambda: F.conv_transpose2d(_t(1, 3, 4, 4), _t(2, 2, 3, 3)), ValueError,
     r"conv_transpose2d: input has 3 channels \(shape \(1, 3, 4, 4\)\) but weight \(2, 2, 3, 3\) with groups=1 "
     r"expects 2"),
    (lambda: F.conv_transpose2d(_t(1, 3, 4, 4), _t(3, 2, 3, 3), groups=2), ValueError,
     r"conv_transpose2d: input channels \(3\) are not divisible by groups=2"),
    (lambda: F.conv_transpose2d(_t(1, 2, 4, 4), _t(2, 2, 3, 3), stride=2, output_padding=2), ValueError,
     r"conv_transpose2d: output_padding \(2, 2\) must be smaller than either stride \(2, 2\) or dilation"),
    (lambda: F.conv_transpose2d(_t(1, 2, 4, 4), _t(2, 2, 3, 3), padding="same"), ValueError,
     "conv_transpose2d: padding must be an int or a pair"),
])
def test_bad_input_raises_a_clear_error(call, error, message):
    with pytest.raises(error, match=message):
        call()


# -- optional: PyTorch agrees (skipped where torch is not installed) -----------------------

def test_matches_pytorch_when_available():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(15)
    x, w, b = rng.standard_normal((2, 4, 9, 8)), rng.standard_normal((6, 2, 4, 3)), rng.standard_normal(6)
    for fn, tfn, weight, kw in [
        (F.conv2d, torch.nn.functional.conv2d, w, dict(padding="same", dilation=(1, 2), groups=2)),
        (F.conv2d, torch.nn.functional.conv2d, w, dict(stride=(3, 2), padding=(2, 1), groups=2)),
        (F.conv_transpose2d, torch.nn.functional.conv_transpose2d, rng.standard_normal((4, 3, 4, 3)),
         dict(stride=(3, 2), padding=(1, 2), output_padding=(2, 1), groups=2, dilation=(1, 2))),
    ]:
        bias = b if fn is F.conv2d else rng.standard_normal(6)
        got = fn(mc.tensor(x), mc.tensor(weight), mc.tensor(bias), **kw).numpy()
        want = tfn(torch.tensor(x), torch.tensor(weight), torch.tensor(bias), **kw).numpy()
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-10)
