"""Strided convolutions through their phases (minicnn/cpu/conv_phases.py): the maps and their
adjoints, and conv2d on that path against the naive loops (float64)."""
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minicnn as mc
import minicnn.nn.functional as F
from minicnn import tuning
from minicnn.cpu import conv_phases as phases
from minicnn.cpu import conv_winograd as winograd
from minicnn.geometry import Window
from minicnn.ops import conv_algorithms
from test_conv import _pads, naive_conv2d, naive_conv2d_grads


def _takes_the_phases(x_shape, w_shape, stride, padding, dilation=(1, 1)):
    """Whether "auto" runs conv2d of these shapes on the phase path."""
    fn = SimpleNamespace(win=Window(*w_shape[2:], *stride, *padding, *dilation), groups=1)
    x, w = np.broadcast_to(np.zeros(1), x_shape), np.broadcast_to(np.zeros(1), w_shape)
    return conv_algorithms.fastest("conv2d", fn, x, w) is phases.Conv2d


@pytest.fixture
def any_size():
    """Let small test shapes take the phase path (it is only chosen where it pays)."""
    with tuning.override(WINOGRAD_MIN_TILES=1, WINOGRAD_MIN_CHANNELS=1):
        yield


def test_the_maps_are_the_formulas():
    """x'[n, (c*sh + a)*sw + b, u, v] = xpad[n, c, sh*u + a, sw*v + b] and
    w'[o, (c*sh + a)*sw + b, i, j] = w[o, c, sh*i + a, sw*j + b] (0 outside)."""
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((2, 3, 13, 10)), rng.standard_normal((4, 3, 5, 7))
    g = phases.Phases(x.shape, w.shape, (2, 3), (1, 2))
    xs, ws = g.split(x), g.weight(w)
    xpad = np.zeros((2, 3, 2 * g.rows, 3 * g.cols))
    xpad[:, :, 1:14, 2:12] = x
    wpad = np.zeros((4, 3, 6, 9))
    wpad[:, :, :5, :7] = w
    for c in range(3):
        for a in range(2):
            for b in range(3):
                np.testing.assert_array_equal(xs[:, (c * 2 + a) * 3 + b], xpad[:, c, a::2, b::3])
                np.testing.assert_array_equal(ws[:, (c * 2 + a) * 3 + b], wpad[:, c, a::2, b::3])


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 4), st.integers(2, 4), st.data())
def test_merge_and_weight_grad_are_the_adjoints(sh, sw, data):
    kh = data.draw(st.integers(2 * sh + 1, 3 * sh))  # phase kernel 3 rows
    kw = data.draw(st.integers(2 * sw + 1, 3 * sw))
    ph, pw = data.draw(st.integers(0, kh - 1)), data.draw(st.integers(0, kw - 1))
    h = data.draw(st.integers(max(1, kh - 2 * ph), 3 * kh))
    w_ = data.draw(st.integers(max(1, kw - 2 * pw), 3 * kw))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    x, w = rng.standard_normal((2, 2, h, w_)), rng.standard_normal((3, 2, kh, kw))
    g = phases.Phases(x.shape, w.shape, (sh, sw), (ph, pw))
    gxs, gws = rng.standard_normal(g.x_shape), rng.standard_normal(g.w_shape)
    # absolute tolerance too: a sum of products of N(0, 1) numbers may cancel to nearly 0
    np.testing.assert_allclose(np.vdot(g.split(x), gxs), np.vdot(x, g.merge(gxs, np.empty_like(x))),
                               rtol=1e-12, atol=1e-12 * x.size)
    np.testing.assert_allclose(np.vdot(g.weight(w), gws), np.vdot(w, g.weight_grad(gws)), rtol=1e-12,
                               atol=1e-12 * w.size)


STRIDED = [  # n, c, h, w, o, kernel, stride, padding
    (2, 3, 35, 31, 5, (11, 11), (4, 4), (2, 2)),   # AlexNet's stem, small
    (1, 2, 19, 22, 3, (5, 5), (2, 2), (1, 1)),
    (2, 2, 17, 16, 4, (6, 6), (2, 2), (3, 3)),     # even kernel, padding past half of it
    (1, 3, 21, 26, 2, (5, 9), (2, 3), (0, 4)),     # different strides and kernels per axis
    (2, 1, 14, 15, 3, (3, 3), (1, 1), (1, 1)),     # not strided: stays on the other paths
]


@pytest.mark.parametrize("n, c, h, w, o, kernel, stride, padding", STRIDED)
def test_conv2d_through_the_phases_equals_the_loops(any_size, n, c, h, w, o, kernel, stride, padding):
    rng = np.random.default_rng(sum(kernel) + h)
    x, wt, b = rng.standard_normal((n, c, h, w)), rng.standard_normal((o, c) + kernel), rng.standard_normal(o)
    tx, tw, tb = (mc.tensor(a, requires_grad=True) for a in (x, wt, b))
    y = F.conv2d(tx, tw, tb, stride=stride, padding=padding)
    assert _takes_the_phases(x.shape, wt.shape, stride, padding) == (max(stride) > 1)
    pads = _pads(padding, kernel, (1, 1))
    np.testing.assert_allclose(y.numpy(), naive_conv2d(x, wt, b, stride, pads, (1, 1), 1), rtol=0, atol=1e-10)
    gy = rng.standard_normal(y.shape)
    (y * mc.tensor(gy)).sum().backward()
    for got, want in zip((tx.grad, tw.grad, tb.grad), naive_conv2d_grads(x, wt, gy, stride, pads, (1, 1), 1)):
        np.testing.assert_allclose(got.numpy(), want, rtol=0, atol=1e-10)


def test_gradcheck_through_the_phases(any_size):
    rng = np.random.default_rng(5)
    x, w, b = (mc.tensor(rng.standard_normal(s), requires_grad=True) for s in ((1, 2, 13, 12), (3, 2, 5, 5), (3,)))
    with mc.backends.conv_algorithm("phases"):
        assert mc.gradcheck(lambda a, v, c: F.conv2d(a, v, c, stride=2, padding=1), (x, w, b), fast_mode=True)


def test_which_strided_convolutions_take_the_phases():
    """Only where the phase kernel is 3x3 and not much bigger than the real one, and the
    Winograd convolution over the phases pays (AlexNet's stem: yes; ResNet's 7x7/2: no)."""
    takes = _takes_the_phases
    assert takes((8, 3, 224, 224), (64, 3, 11, 11), (4, 4), (2, 2))          # 12x12 / 11x11 = 1.19
    assert takes((8, 32, 112, 112), (64, 32, 5, 5), (2, 2), (2, 2))          # 6x6 / 5x5 = 1.44
    assert not takes((8, 3, 224, 224), (64, 3, 7, 7), (2, 2), (3, 3))        # phase kernel 4x4
    assert not takes((8, 3, 224, 224), (64, 3, 9, 9), (4, 4), (4, 4))        # 12x12 / 9x9 = 1.78
    assert not takes((8, 64, 56, 56), (64, 64, 3, 3), (2, 2), (1, 1))        # phase kernel 2x2
    assert not takes((1, 3, 20, 20), (64, 3, 11, 11), (4, 4), (2, 2))        # 2 tiles: too few
    assert not takes((8, 3, 224, 224), (64, 3, 11, 11), (4, 4), (2, 2), dilation=(2, 2))


def test_float32_through_the_phases_matches_im2col():
    rng = np.random.default_rng(6)
    x = mc.tensor(rng.standard_normal((2, 3, 99, 99)).astype(np.float32))
    w = mc.tensor((rng.standard_normal((64, 3, 11, 11)) * 0.05).astype(np.float32))
    assert _takes_the_phases(x.shape, w.shape, (4, 4), (2, 2))
    y = F.conv2d(x, w, stride=4, padding=2)
    with mc.backends.conv_algorithm("im2col"):
        ref = F.conv2d(x, w, stride=4, padding=2)
    assert np.abs(y.numpy() - ref.numpy()).max() < 2e-6 * np.abs(ref.numpy()).max()


def test_the_phases_kept_for_backward_are_the_size_of_the_input():
    g = phases.Phases((8, 3, 224, 224), (64, 3, 11, 11), (4, 4), (2, 2))
    assert g.x_shape == (8, 48, 57, 57)
    assert np.prod(g.x_shape) < 1.05 * 8 * 3 * 224 * 224
