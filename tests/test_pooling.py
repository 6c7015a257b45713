"""Pooling ops against plain-loop float64 references, gradchecks, PyTorch's size and
divisor rules, the tie rule, unpooling round trips, and bad-input errors."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minicnn as mc
import minicnn.nn as nn
import minicnn.nn.functional as F
from minicnn.geometry import output_size as pool_output_size
from minicnn.ops.pooling import unpool_output_size


def t64(a, grad=False):
    return mc.tensor(np.asarray(a, dtype=np.float64), requires_grad=grad, dtype=np.float64)


def distinct(shape, seed=0):
    """Values without ties (a scaled permutation), so max pooling is differentiable
    and central differences with eps=1e-6 never cross a tie."""
    n = int(np.prod(shape))
    return np.random.default_rng(seed).permutation(n).reshape(shape) / n - 0.5


# -- naive references (float64, plain loops) ---------------------------------------
def ref_out(size, k, s, p, d=1, ceil_mode=False):
    """PyTorch's rule, written with real division: windows of extent d(k-1)+1 over the
    padded input; in ceil mode a last partial window is kept only if it starts inside
    the input or the left padding."""
    span = d * (k - 1) + 1
    if not ceil_mode:
        return math.floor((size + 2 * p - span) / s) + 1
    out = math.ceil((size + 2 * p - span) / s) + 1
    if (out - 1) * s - p >= size:  # the last window would start in the right padding
        out -= 1
    return out


def ref_max_pool(x, k, s, p, d, ceil_mode):
    """-> (y, flat argmax index per plane); padding is explicit -inf, ties: first in row-major order."""
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = k, s, p, d
    n, c, h, w = x.shape
    oh, ow = ref_out(h, kh, sh, ph, dh, ceil_mode), ref_out(w, kw, sw, pw, dw, ceil_mode)
    big = 2 * (dh * kh + dw * kw + sh + sw)  # room for ceil-mode windows that overhang
    padded = np.full((n, c, h + ph + big, w + pw + big), -np.inf)
    padded[:, :, ph:ph + h, pw:pw + w] = x
    y, idx = np.zeros((n, c, oh, ow)), np.zeros((n, c, oh, ow), np.int64)
    for a in range(n):
        for b in range(c):
            for oy in range(oh):
                for ox in range(ow):
                    best, arg = -np.inf, -1
                    for i in range(kh):
                        for j in range(kw):
                            r, col = oy * sh + i * dh, ox * sw + j * dw  # padded coordinates
                            if padded[a, b, r, col] > best:
                                best, arg = padded[a, b, r, col], (r - ph) * w + (col - pw)
                    y[a, b, oy, ox], idx[a, b, oy, ox] = best, arg
    return y, idx


def ref_avg_pool(x, k, s, p, ceil_mode, count_include_pad, divisor_override=None):
    (kh, kw), (sh, sw), (ph, pw) = k, s, p
    n, c, h, w = x.shape
    oh, ow = ref_out(h, kh, sh, ph, 1, ceil_mode), ref_out(w, kw, sw, pw, 1, ceil_mode)
    y = np.zeros((n, c, oh, ow))
    for a in range(n):
        for b in range(c):
            for oy in range(oh):
                for ox in range(ow):
                    total, real, in_padded = 0.0, 0, 0
                    for i in range(kh):
                        for j in range(kw):
                            r, col = oy * sh - ph + i, ox * sw - pw + j
                            if -ph <= r < h + ph and -pw <= col < w + pw:
                                in_padded += 1  # a tap inside the zero-padded input
                            if 0 <= r < h and 0 <= col < w:
                                total += x[a, b, r, col]
                                real += 1
                    divisor = divisor_override or (in_padded if count_include_pad else real)
                    y[a, b, oy, ox] = total / divisor
    return y


def ref_bins(size, out):
    return [(math.floor(i * size / out), math.ceil((i + 1) * size / out)) for i in range(out)]


def ref_adaptive(x, oh, ow, reduce):
    n, c, h, w = x.shape
    y = np.zeros((n, c, oh, ow))
    for i, (r0, r1) in enumerate(ref_bins(h, oh)):
        for j, (c0, c1) in enumerate(ref_bins(w, ow)):
            y[:, :, i, j] = reduce(x[:, :, r0:r1, c0:c1], axis=(2, 3))
    return y


def scatter(gy, idx, h, w):
    """The max-pool gradient from the reference indices: each dy goes to its argmax
    (nowhere for index -1, a window wholly in the padding)."""
    n, c = gy.shape[:2]
    gx = np.zeros((n, c, h * w))
    for a in range(n):
        for b in range(c):
            for g, i in zip(gy[a, b].ravel(), idx[a, b].ravel()):
                if i >= 0:
                    gx[a, b, i] += g
    return gx.reshape(n, c, h, w)


# -- output sizes, derived by hand from PyTorch's rule ---------------------------
@pytest.mark.parametrize("size,k,s,p,d,ceil,expected", [
    (6, 3, 2, 0, 1, False, 2),    # (6-3)/2 = 1.5 -> floor 1, +1
    (6, 3, 2, 0, 1, True, 3),     # ceil(1.5) + 1 = 3; last window starts at 4 < 6
    (5, 2, 2, 1, 1, False, 3),    # (5+2-2)/2 = 2.5 -> 2, +1
    (5, 2, 2, 1, 1, True, 3),     # ceil 3, +1 = 4, but window 3 starts at 6 >= 5+1: dropped
    (112, 3, 2, 1, 1, False, 56),  # ResNet stem pool
    (112, 3, 2, 1, 1, True, 57),  # 111/2 = 55.5 -> 56 + 1; starts at 112 < 113
    (112, 3, 2, 0, 1, True, 56),  # GoogLeNet: ceil(54.5) + 1
    (14, 3, 2, 0, 1, True, 7),
    (55, 3, 2, 0, 1, False, 27),  # AlexNet
    (4, 2, 3, 0, 1, False, 1),    # stride > kernel
    (4, 2, 3, 0, 1, True, 2),     # second window starts at 3 < 4
    (4, 2, 3, 1, 1, True, 2),     # ceil(4/3) + 1 = 3, third starts at 6 >= 5: dropped
    (5, 3, 1, 1, 2, False, 3),    # dilation 2: extent 5 over 7 padded
    (2, 3, 2, 0, 1, True, 1),     # ceil mode keeps one window larger than the input
    (2, 3, 2, 0, 1, False, 0),    # floor mode: none
    (9, 4, 3, 2, 1, True, 4),
])
def test_output_size_table(size, k, s, p, d, ceil, expected):
    assert pool_output_size(size, k, s, p, d, ceil) == expected
    assert ref_out(size, k, s, p, d, ceil) == expected


# -- max pooling -----------------------------------------------------------------
@pytest.mark.parametrize("k,s,p,d,ceil", [
    ((3, 3), (2, 2), (1, 1), (1, 1), False),
    ((3, 2), (2, 3), (1, 0), (1, 1), True),
    ((2, 2), (3, 3), (1, 1), (2, 1), True),   # stride > kernel, dilation
    ((3, 3), (1, 1), (0, 1), (2, 2), False),
])
def test_max_pool_matches_reference(k, s, p, d, ceil):
    x = np.random.default_rng(1).standard_normal((2, 3, 9, 8))
    y, idx = F.max_pool2d(t64(x), k, s, p, d, ceil, return_indices=True)
    ry, ridx = ref_max_pool(x, k, s, p, d, ceil)
    assert y.shape == ry.shape and idx.dtype == np.int64
    np.testing.assert_allclose(y.numpy(), ry, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(idx.numpy(), ridx)


def test_max_pool_indices_with_many_ties():
    x = np.random.default_rng(2).integers(0, 3, (2, 2, 7, 7)).astype(np.float64)
    for k, s, p in (((3, 3), (2, 2), (1, 1)), ((2, 2), (1, 1), (0, 0)), ((3, 3), (3, 3), (1, 1))):
        y, idx = F.max_pool2d(t64(x), k, s, p, return_indices=True, ceil_mode=True)
        ry, ridx = ref_max_pool(x, k, s, p, (1, 1), True)
        np.testing.assert_array_equal(y.numpy(), ry)
        np.testing.assert_array_equal(idx.numpy(), ridx)


def test_max_pool_gradcheck():
    x = t64(distinct((2, 2, 6, 5)), grad=True)
    assert mc.gradcheck(lambda t: F.max_pool2d(t, 3, 2, 1, ceil_mode=True), [x])
    assert mc.gradcheck(lambda t: F.max_pool2d(t, (2, 3), (1, 2), (1, 0), dilation=(2, 1)), [x])


def test_max_pool_tie_gradient_goes_to_first_element_of_each_window():
    x = t64(np.ones((1, 1, 4, 6)), grad=True)
    F.max_pool2d(x, 2).sum().backward()
    expected = np.zeros((4, 6))
    expected[0::2, 0::2] = 1  # top-left of every 2x2 window
    np.testing.assert_array_equal(x.grad.numpy()[0, 0], expected)

    x = t64(np.ones((1, 1, 4, 4)), grad=True)  # 3x3/2 with padding 1: windows start at -1, 1
    F.max_pool2d(x, 3, 2, 1).sum().backward()
    expected = np.zeros((4, 4))
    expected[np.ix_([0, 1], [0, 1])] = 1  # first real pixel of each window
    np.testing.assert_array_equal(x.grad.numpy()[0, 0], expected)


def test_max_pool_overlapping_windows_accumulate():
    a = np.zeros((5, 5))
    a[2, 2] = 1.0  # in all four 3x3/2 windows
    a[0, 4] = 0.5  # only in the top-right window, which already has the peak at (2, 2)
    x = t64(a[None, None], grad=True)
    y = F.max_pool2d(x, 3, 2)
    np.testing.assert_array_equal(y.numpy()[0, 0], [[1, 1], [1, 1]])
    y.backward(t64(np.array([[[[1.0, 2.0], [3.0, 4.0]]]])))
    expected = np.zeros((5, 5))
    expected[2, 2] = 10.0
    np.testing.assert_array_equal(x.grad.numpy()[0, 0], expected)


def test_max_pool_nan_propagates():
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    x[0, 0, 1, 0] = np.nan
    y, idx = F.max_pool2d(t64(x), 2, return_indices=True)
    assert np.isnan(y.numpy()[0, 0, 0, 0]) and idx.numpy()[0, 0, 0, 0] == 4
    assert y.numpy()[0, 0, 1, 1] == 15


def test_max_pool_window_wholly_in_padding_gives_minus_inf_and_no_gradient():
    # rows -1 and 1 with dilation 2 over a 1-row input: no real pixel in the window
    x = t64(np.ones((1, 1, 1, 3)), grad=True)
    y, idx = F.max_pool2d(x, (2, 1), 1, (1, 0), dilation=(2, 1), return_indices=True)
    assert y.shape == (1, 1, 1, 3) and np.all(np.isneginf(y.numpy())) and np.all(idx.numpy() == -1)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), 0)


# -- average pooling -------------------------------------------------------------
@pytest.mark.parametrize("k,s,p,ceil,cip,div", [
    ((3, 3), (2, 2), (1, 1), False, True, None),
    ((3, 3), (2, 2), (1, 1), True, True, None),   # ceil window overhangs the padding
    ((3, 3), (2, 2), (1, 1), True, False, None),
    ((2, 3), (3, 1), (1, 1), True, True, None),   # stride > kernel
    ((3, 3), (1, 1), (1, 1), False, False, None),  # Inception-v4 branch pool
    ((2, 2), (2, 2), (1, 0), True, True, 3),
])
def test_avg_pool_matches_reference(k, s, p, ceil, cip, div):
    x = np.random.default_rng(3).standard_normal((2, 2, 7, 6))
    y = F.avg_pool2d(t64(x), k, s, p, ceil, cip, div)
    np.testing.assert_allclose(y.numpy(), ref_avg_pool(x, k, s, p, ceil, cip, div), rtol=0, atol=1e-12)


def test_avg_pool_divisor_by_hand():
    # 3x3 input of ones, kernel 2, stride 2, padding 1, ceil: windows cover rows -1..0 and 1..2
    ones = t64(np.ones((1, 1, 3, 3)))
    np.testing.assert_allclose(F.avg_pool2d(ones, 2, 2, 1, True, True).numpy()[0, 0],
                               [[1 / 4, 2 / 4], [2 / 4, 4 / 4]])
    np.testing.assert_allclose(F.avg_pool2d(ones, 2, 2, 1, True, False).numpy()[0, 0], np.ones((2, 2)))
    # H=4, k=3, s=2, p=1, ceil: 3 windows per axis, rows -1..1, 1..3 and 3..5; the last is cut
    # at the end of the padding (row 4), so pool sizes are 3, 3, 2 and real rows 2, 3, 1
    ones = t64(np.ones((1, 1, 4, 4)))
    per_axis = np.array([2 / 3, 3 / 3, 1 / 2])
    np.testing.assert_allclose(F.avg_pool2d(ones, 3, 2, 1, ceil_mode=True).numpy()[0, 0],
                               np.outer(per_axis, per_axis))
    np.testing.assert_allclose(F.avg_pool2d(ones, 3, 2, 1, ceil_mode=True, divisor_override=2).numpy()[0, 0],
                               np.outer([2, 3, 1], [2, 3, 1]) / 2)


def test_avg_pool_gradcheck():
    x = t64(np.random.default_rng(4).standard_normal((2, 2, 5, 6)), grad=True)
    assert mc.gradcheck(lambda t: F.avg_pool2d(t, 3, 2, 1, ceil_mode=True, count_include_pad=False), [x])
    assert mc.gradcheck(lambda t: F.avg_pool2d(t, (2, 3), (3, 1), (1, 1), divisor_override=5), [x])


# -- hypothesis over the window geometry --------------------------------------------
@st.composite
def geometry(draw, dilation=True):
    h, w = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    k, s = (kh, kw), (draw(st.integers(1, 5)), draw(st.integers(1, 5)))
    p = (draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2)))
    d = (draw(st.integers(1, 3)), draw(st.integers(1, 3))) if dilation else (1, 1)
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 3)), h, w)
    return shape, k, s, p, d, draw(st.booleans())


@settings(max_examples=60)
@given(geometry(), st.booleans(), st.integers(0, 2**31))
def test_max_pool_hypothesis(g, ties, seed):
    shape, k, s, p, d, ceil = g
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 3, shape).astype(np.float64) if ties else rng.standard_normal(shape)
    if min(ref_out(shape[2], k[0], s[0], p[0], d[0], ceil), ref_out(shape[3], k[1], s[1], p[1], d[1], ceil)) < 1:
        with pytest.raises(ValueError, match="max_pool2d"):
            F.max_pool2d(t64(x), k, s, p, d, ceil)
        return
    xt = t64(x, grad=True)
    y, idx = F.max_pool2d(xt, k, s, p, d, ceil, return_indices=True)
    ry, ridx = ref_max_pool(x, k, s, p, d, ceil)
    np.testing.assert_array_equal(y.numpy(), ry)
    np.testing.assert_array_equal(idx.numpy(), ridx)
    gy = rng.standard_normal(ry.shape)
    y.backward(t64(gy))
    np.testing.assert_allclose(xt.grad.numpy(), scatter(gy, ridx, *shape[2:]), rtol=0, atol=1e-12)


@settings(max_examples=60)
@given(geometry(dilation=False), st.booleans(), st.sampled_from([None, 1, 4]), st.integers(0, 2**31))
def test_avg_pool_hypothesis(g, cip, div, seed):
    shape, k, s, p, _, ceil = g
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    if min(ref_out(shape[2], k[0], s[0], p[0], 1, ceil), ref_out(shape[3], k[1], s[1], p[1], 1, ceil)) < 1:
        with pytest.raises(ValueError, match="avg_pool2d"):
            F.avg_pool2d(t64(x), k, s, p, ceil, cip, div)
        return
    xt = t64(x, grad=True)
    y = F.avg_pool2d(xt, k, s, p, ceil, cip, div)
    np.testing.assert_allclose(y.numpy(), ref_avg_pool(x, k, s, p, ceil, cip, div), rtol=0, atol=1e-12)
    # avg pooling is linear, so its backward must be its adjoint: <A x, g> = <x, A^T g>
    gy = rng.standard_normal(y.shape)
    y.backward(t64(gy))
    assert abs((y.numpy() * gy).sum() - (x * xt.grad.numpy()).sum()) < 1e-10


# -- adaptive pooling --------------------------------------------------------------
@pytest.mark.parametrize("size,out", [((7, 5), (3, 2)), ((6, 6), (4, 4)), ((5, 9), (5, 1)), ((3, 4), (7, 6)),
                                      ((8, 8), (1, 1))])
def test_adaptive_pooling_matches_reference(size, out):
    x = np.random.default_rng(5).standard_normal((2, 3) + size)
    np.testing.assert_allclose(F.adaptive_avg_pool2d(t64(x), out).numpy(), ref_adaptive(x, *out, np.mean),
                               rtol=0, atol=1e-12)
    np.testing.assert_array_equal(F.adaptive_max_pool2d(t64(x), out).numpy(), ref_adaptive(x, *out, np.max))


def test_adaptive_bins_by_hand():
    assert ref_bins(7, 3) == [(0, 3), (2, 5), (4, 7)]  # overlapping bins
    x = np.arange(7.0).reshape(1, 1, 7, 1)
    np.testing.assert_allclose(F.adaptive_avg_pool2d(t64(x), (3, 1)).numpy().ravel(), [1, 3, 5])
    y, idx = F.adaptive_max_pool2d(t64(x), (3, 1), return_indices=True)
    np.testing.assert_array_equal(y.numpy().ravel(), [2, 4, 6])
    np.testing.assert_array_equal(idx.numpy().ravel(), [2, 4, 6])


def test_adaptive_output_size_none_keeps_dimension():
    x = t64(np.random.default_rng(6).standard_normal((2, 3, 7, 5)))
    assert F.adaptive_avg_pool2d(x, (3, None)).shape == (2, 3, 3, 5)
    assert F.adaptive_max_pool2d(x, (None, 2)).shape == (2, 3, 7, 2)
    np.testing.assert_allclose(F.adaptive_avg_pool2d(x, (7, None)).numpy(), x.numpy(), atol=1e-12)


def test_global_average_pooling_and_divisible_case():
    x = np.random.default_rng(7).standard_normal((2, 3, 6, 4))
    np.testing.assert_allclose(F.adaptive_avg_pool2d(t64(x), 1).numpy(), x.mean(axis=(2, 3), keepdims=True),
                               rtol=0, atol=1e-12)
    np.testing.assert_allclose(F.adaptive_avg_pool2d(t64(x), (3, 2)).numpy(),
                               F.avg_pool2d(t64(x), 2).numpy(), rtol=0, atol=1e-12)


def test_adaptive_max_indices_with_ties():
    x = np.random.default_rng(8).integers(0, 2, (2, 2, 7, 5)).astype(np.float64)
    _, idx = F.adaptive_max_pool2d(t64(x), (3, 2), return_indices=True)
    n, c, h, w = x.shape
    for i, (r0, r1) in enumerate(ref_bins(h, 3)):
        for j, (c0, c1) in enumerate(ref_bins(w, 2)):
            for a in range(n):
                for b in range(c):
                    win = x[a, b, r0:r1, c0:c1]
                    r, col = np.unravel_index(np.argmax(win), win.shape)  # first maximum
                    assert idx.numpy()[a, b, i, j] == (r0 + r) * w + c0 + col


def test_adaptive_gradcheck():
    x = t64(distinct((2, 2, 7, 5)), grad=True)
    assert mc.gradcheck(lambda t: F.adaptive_avg_pool2d(t, (3, 2)), [x])
    assert mc.gradcheck(lambda t: F.adaptive_avg_pool2d(t, 1), [x])
    assert mc.gradcheck(lambda t: F.adaptive_max_pool2d(t, (3, 2)), [x])  # overlapping bins add up


# -- max unpooling ----------------------------------------------------------------
def test_max_unpool_round_trip():
    x = distinct((2, 3, 6, 8)) + 1  # positive, so re-pooling the zeros keeps the maxima
    y, idx = F.max_pool2d(t64(x), 2, return_indices=True)
    u = F.max_unpool2d(y, idx, 2).numpy()
    keep = x == np.repeat(np.repeat(y.numpy(), 2, axis=2), 2, axis=3)  # each window's maximum
    np.testing.assert_array_equal(u, np.where(keep, x, 0))
    np.testing.assert_array_equal(F.max_pool2d(t64(u), 2).numpy(), y.numpy())


def test_max_unpool_output_size_for_odd_input():
    x = distinct((1, 2, 6, 5))
    y, idx = F.max_pool2d(t64(x), 3, 2, 1, return_indices=True)  # 6x5 -> 3x3
    assert unpool_output_size((3, 3), (3, 3), (2, 2), (1, 1), None) == (5, 5)  # (h-1)*s - 2p + k
    u = F.max_unpool2d(y, idx, 3, 2, 1, output_size=(6, 5))
    assert u.shape == (1, 2, 6, 5)
    flat = u.numpy().reshape(2, -1)
    for ch in range(2):
        np.testing.assert_array_equal(flat[ch][idx.numpy()[0, ch].ravel()], y.numpy()[0, ch].ravel())
        assert np.count_nonzero(flat[ch]) == len(set(idx.numpy()[0, ch].ravel()))
    assert F.max_unpool2d(y, idx, 3, 2, 1, output_size=(1, 2, 6, 5)).shape == (1, 2, 6, 5)


def test_max_unpool_gradcheck():
    y, idx = F.max_pool2d(t64(distinct((2, 2, 6, 4))), 2, return_indices=True)
    v = t64(np.random.default_rng(9).standard_normal(y.shape), grad=True)
    assert mc.gradcheck(lambda t: F.max_unpool2d(t, idx, 2), [v])


# -- unbatched input, layers, dtypes ----------------------------------------------
def test_three_dimensional_input_like_pytorch():
    x = np.random.default_rng(10).standard_normal((3, 7, 6))
    cases = [
        lambda t: F.max_pool2d(t, 3, 2, 1, ceil_mode=True),
        lambda t: F.avg_pool2d(t, 2, count_include_pad=False),
        lambda t: F.adaptive_avg_pool2d(t, (2, 3)),
        lambda t: F.adaptive_max_pool2d(t, 2),
    ]
    for f in cases:
        x3, x4 = t64(x, grad=True), t64(x[None], grad=True)
        y3, y4 = f(x3), f(x4)
        np.testing.assert_array_equal(y3.numpy(), y4.numpy()[0])
        y3.sum().backward()
        y4.sum().backward()
        np.testing.assert_array_equal(x3.grad.numpy(), x4.grad.numpy()[0])
    y, idx = F.max_pool2d(t64(x), 2, return_indices=True)
    assert idx.shape == (3, 3, 3)
    assert F.max_unpool2d(y, idx, 2, output_size=(7, 6)).shape == (3, 7, 6)


def test_empty_batch_is_allowed_like_pytorch():
    x = t64(np.zeros((0, 3, 5, 5)), grad=True)
    for f in (lambda t: F.max_pool2d(t, 2), lambda t: F.avg_pool2d(t, 2), lambda t: F.adaptive_max_pool2d(t, 2),
              lambda t: F.adaptive_avg_pool2d(t, (2, 3)), lambda t: F.adaptive_avg_pool2d(t, 1)):
        y = f(x)
        assert y.shape[:2] == (0, 3)
        y.sum().backward()
        assert x.grad.shape == x.shape
        x.grad = None


def test_layers_follow_torch_arguments():
    x = mc.tensor(distinct((2, 3, 8, 8)).astype(np.float32), requires_grad=True)
    pool = nn.MaxPool2d(2, return_indices=True)
    y, idx = pool(x)
    u = nn.MaxUnpool2d(2)(y, idx, output_size=x.shape)
    assert u.shape == x.shape and idx.dtype == np.int64
    np.testing.assert_array_equal(nn.MaxPool2d(3, 2, 1, 1, False, True)(x).numpy(),
                                  F.max_pool2d(x, 3, 2, 1, 1, ceil_mode=True).numpy())
    np.testing.assert_array_equal(nn.AvgPool2d(3, 1, 1, count_include_pad=False)(x).numpy(),
                                  F.avg_pool2d(x, 3, 1, 1, count_include_pad=False).numpy())
    np.testing.assert_allclose(nn.AdaptiveAvgPool2d(1)(x).numpy(), x.numpy().mean(axis=(2, 3), keepdims=True),
                               rtol=1e-6)
    y, idx = nn.AdaptiveMaxPool2d((2, 2), return_indices=True)(x)
    np.testing.assert_array_equal(y.numpy(), F.max_pool2d(x, 4).numpy())
    assert "kernel_size=3, stride=2, padding=1" in repr(nn.MaxPool2d(3, 2, 1))
    assert list(nn.MaxPool2d(2).state_dict()) == []


def test_float32_stays_float32():
    x = mc.tensor(np.random.default_rng(11).standard_normal((2, 3, 7, 7)).astype(np.float32), requires_grad=True)
    ops = [
        lambda t: F.max_pool2d(t, 3, 2, 1),
        lambda t: F.avg_pool2d(t, 3, 2, 1, count_include_pad=False),
        lambda t: F.adaptive_avg_pool2d(t, 3),
        lambda t: F.adaptive_avg_pool2d(t, 1),
        lambda t: F.adaptive_max_pool2d(t, 2),
        lambda t: F.max_unpool2d(*F.max_pool2d(t, 3, 2, 1, return_indices=True), 3, 2, 1, (7, 7)),
    ]
    for op in ops:
        out = op(x)
        assert out.dtype == np.float32
        x.grad = None
        out.sum().backward()
        assert x.grad.dtype == np.float32


# -- bad input ---------------------------------------------------------------------
def test_errors_name_the_op_and_values():
    x = t64(np.zeros((1, 2, 4, 4)))
    with pytest.raises(ValueError, match=r"max_pool2d: input of shape \(1, 2, 4, 4\) padded to 4x4 is smaller "
                                         r"than the window extent 5x5"):
        F.max_pool2d(x, 5)
    with pytest.raises(ValueError, match=r"avg_pool2d: .* padded to 6x6 is smaller than the window extent 7x7"):
        F.avg_pool2d(x, 7, padding=1)
    with pytest.raises(ValueError, match=r"max_pool2d: padding \(2, 2\) must be at most half of kernel_size \(3, 3\)"):
        F.max_pool2d(x, 3, padding=2)
    with pytest.raises(ValueError, match=r"avg_pool2d: padding \(0, 2\) must be at most half of kernel_size \(2, 2\)"):
        F.avg_pool2d(x, 2, padding=(0, 2))
    with pytest.raises(ValueError, match=r"max_pool2d: expected a 3-D \(C, H, W\) or 4-D .* got shape \(4, 4\)"):
        F.max_pool2d(t64(np.zeros((4, 4))), 2)
    with pytest.raises(ValueError, match=r"adaptive_avg_pool2d: expected .* got shape \(1, 1, 1, 4, 4\)"):
        F.adaptive_avg_pool2d(t64(np.zeros((1, 1, 1, 4, 4))), 2)
    with pytest.raises(ValueError, match="max_pool2d: stride must be >= 1, got \\(0, 0\\)"):
        F.max_pool2d(x, 2, stride=0)
    with pytest.raises(TypeError, match="max_pool2d: kernel_size must be an int or a pair of ints, got 2.5"):
        F.max_pool2d(x, 2.5)
    with pytest.raises(ValueError, match="avg_pool2d: divisor_override must be a non-zero int"):
        F.avg_pool2d(x, 2, divisor_override=0)
    with pytest.raises(ValueError, match=r"adaptive_max_pool2d: output_size must be positive ints .* got \(0, 2\)"):
        F.adaptive_max_pool2d(x, (0, 2))
    with pytest.raises(TypeError, match="max_pool2d: input must be floating point, got int64"):
        F.max_pool2d(mc.tensor(np.zeros((1, 1, 4, 4), np.int64)), 2)


def test_max_unpool_errors():
    y, idx = F.max_pool2d(t64(distinct((1, 2, 4, 4))), 2, return_indices=True)
    with pytest.raises(TypeError, match="max_unpool2d: indices must be int64 .* got int32"):
        F.max_unpool2d(y, mc.tensor(idx.numpy().astype(np.int32)), 2)
    with pytest.raises(ValueError, match=r"max_unpool2d: indices of shape \(1, 2, 2, 1\) must have the input's "
                                         r"shape \(1, 2, 2, 2\)"):
        F.max_unpool2d(y, idx[..., :1], 2)
    with pytest.raises(IndexError, match=r"max_unpool2d: indices must lie in \[0, 16\) for an output of 4x4, "
                                         r"got values in \[\d+, 99\]"):
        F.max_unpool2d(y, mc.tensor(np.where(idx.numpy() == idx.numpy().max(), 99, idx.numpy())), 2)
    with pytest.raises(ValueError, match=r"max_unpool2d: output_size \(7, 4\): dim 0 must be between 2 and 6"):
        F.max_unpool2d(y, idx, 2, output_size=(7, 4))


# -- optional cross-check with PyTorch (skipped when torch is not installed) --------
def test_matches_torch_when_available():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(12).standard_normal((2, 3, 11, 9))
    tx = torch.tensor(x)
    for k, s, p, d, ceil in ((3, 2, 1, 1, True), ((2, 3), (3, 1), (1, 0), (2, 1), False)):
        y, idx = F.max_pool2d(t64(x), k, s, p, d, ceil, return_indices=True)
        ty, tidx = torch.nn.functional.max_pool2d(tx, k, s, p, d, ceil, return_indices=True)
        np.testing.assert_array_equal(y.numpy(), ty.numpy())
        np.testing.assert_array_equal(idx.numpy(), tidx.numpy())
        a = F.avg_pool2d(t64(x), k, s, p, ceil, count_include_pad=False).numpy()
        ta = torch.nn.functional.avg_pool2d(tx, k, s, p, ceil, count_include_pad=False).numpy()
        np.testing.assert_allclose(a, ta, rtol=0, atol=1e-12)
    np.testing.assert_allclose(F.adaptive_avg_pool2d(t64(x), (4, 5)).numpy(),
                               torch.nn.functional.adaptive_avg_pool2d(tx, (4, 5)).numpy(), rtol=0, atol=1e-12)
