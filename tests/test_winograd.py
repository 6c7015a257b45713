"""Winograd F(2x2, 3x3) convolution: naive loop references, adjoint identities, the transforms
against their matrices, tiling into chunks and bands, float32 accuracy, and which convolutions take it."""
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minicnn as mc
from minicnn.cpu import conv_winograd as wg
from minicnn.cpu import winograd as kernels
from minicnn.geometry import Window
from minicnn.ops import conv_algorithms


# -- naive references: plain loops in float64 -----------------------------------------------

def naive_conv3x3(x, w, ph, pw):
    """y[n, o, i, j] = sum_{c, a, b} w[o, c, a, b] x[n, c, i - ph + a, j - pw + b] (0 outside)."""
    n_, c_, h, wd = x.shape
    o_ = w.shape[0]
    oh, ow = h + 2 * ph - 2, wd + 2 * pw - 2
    y = np.zeros((n_, o_, oh, ow))
    for n in range(n_):
        for o in range(o_):
            for i in range(oh):
                for j in range(ow):
                    acc = 0.0
                    for c in range(c_):
                        for a in range(3):
                            for b in range(3):
                                iy, ix = i - ph + a, j - pw + b
                                if 0 <= iy < h and 0 <= ix < wd:
                                    acc += w[o, c, a, b] * x[n, c, iy, ix]
                    y[n, o, i, j] = acc
    return y


def naive_conv3x3_grads(x, w, gy, ph, pw):
    """The same loops, each product's two factors receiving the other times gy: (gx, gw)."""
    n_, c_, h, wd = x.shape
    gx, gw = np.zeros_like(x), np.zeros_like(w)
    for n in range(n_):
        for o in range(w.shape[0]):
            for i in range(gy.shape[2]):
                for j in range(gy.shape[3]):
                    for c in range(c_):
                        for a in range(3):
                            for b in range(3):
                                iy, ix = i - ph + a, j - pw + b
                                if 0 <= iy < h and 0 <= ix < wd:
                                    gx[n, c, iy, ix] += w[o, c, a, b] * gy[n, o, i, j]
                                    gw[o, c, a, b] += x[n, c, iy, ix] * gy[n, o, i, j]
    return gx, gw


def direct_conv3x3(x, w, ph, pw):
    """Vectorised direct convolution (9 shifted GEMMs) in the inputs' dtype, for bigger shapes."""
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    oh, ow = xp.shape[2] - 2, xp.shape[3] - 2
    y = np.zeros((x.shape[0], w.shape[0], oh, ow), x.dtype)
    for a in range(3):
        for b in range(3):
            y += np.einsum("oc,nchw->nohw", w[:, :, a, b], xp[:, :, a:a + oh, b:b + ow])
    return y


def rel_err(a, ref):
    return np.abs(a - ref).max() / np.abs(ref).max()


@pytest.fixture
def small_workspace():
    """A workspace limit so small that the tiles go in bands of a few tile rows."""
    previous = mc.backends.set_workspace_limit(16 * (3 + 4) * 8 * 5 * 3)  # 3 rows of 5 tiles, float64
    yield
    mc.backends.set_workspace_limit(previous)


# -- exactness against the loops ------------------------------------------------------------

shapes = st.tuples(st.integers(1, 2), st.integers(1, 3), st.integers(1, 3),  # N, C, O
                   st.integers(1, 7), st.integers(1, 7),  # H, W
                   st.integers(0, 2), st.integers(0, 2))  # ph, pw


@settings(max_examples=40)
@given(shapes, st.integers(0, 2**31 - 1))
def test_matches_naive_loops(shape, seed):
    n, c, o, h, w, ph, pw = shape
    if h + 2 * ph < 3 or w + 2 * pw < 3:
        return  # no output: conv2d rejects these before dispatching here
    rng = np.random.default_rng(seed)
    x, wt = rng.standard_normal((n, c, h, w)), rng.standard_normal((o, c, 3, 3))
    y = wg.conv2d(x, wt, (ph, pw))
    np.testing.assert_allclose(y, naive_conv3x3(x, wt, ph, pw), rtol=0, atol=1e-10)
    gy = rng.standard_normal(y.shape)
    gx_ref, gw_ref = naive_conv3x3_grads(x, wt, gy, ph, pw)
    np.testing.assert_allclose(wg.conv2d_input_grad(gy, wt, x.shape, (ph, pw)), gx_ref, rtol=0, atol=1e-10)
    np.testing.assert_allclose(wg.conv2d_weight_grad(x, gy, wt.shape, (ph, pw)), gw_ref, rtol=0, atol=1e-10)
    gx, gw = wg.conv2d_backward(x, gy, wt, (ph, pw))
    np.testing.assert_allclose(gx, gx_ref, rtol=0, atol=1e-10)
    np.testing.assert_allclose(gw, gw_ref, rtol=0, atol=1e-10)


@pytest.mark.parametrize("h, w, ph, pw", [(1, 1, 1, 1), (1, 5, 2, 0), (2, 3, 1, 2), (9, 4, 0, 1), (3, 3, 0, 0)])
def test_corner_shapes(h, w, ph, pw):
    rng = np.random.default_rng(1)
    x, wt = rng.standard_normal((2, 3, h, w)), rng.standard_normal((2, 3, 3, 3))
    y = wg.conv2d(x, wt, (ph, pw))
    np.testing.assert_allclose(y, naive_conv3x3(x, wt, ph, pw), rtol=0, atol=1e-10)
    gy = rng.standard_normal(y.shape)
    gx_ref, gw_ref = naive_conv3x3_grads(x, wt, gy, ph, pw)
    gx, gw = wg.conv2d_backward(x, gy, wt, (ph, pw))
    np.testing.assert_allclose(gx, gx_ref, rtol=0, atol=1e-10)
    np.testing.assert_allclose(gw, gw_ref, rtol=0, atol=1e-10)


@settings(max_examples=15)
@given(shapes, st.integers(0, 2**31 - 1))
def test_adjoint_identity(shape, seed):
    """<conv2d(x, w), gy> = <x, input_grad(gy)> = <w, weight_grad(x, gy)>: each gradient is the
    exact transpose of the (bilinear) forward map."""
    n, c, o, h, w, ph, pw = shape
    if h + 2 * ph < 3 or w + 2 * pw < 3:
        return
    rng = np.random.default_rng(seed)
    x, wt = rng.standard_normal((n, c, h + 4, w + 5)), rng.standard_normal((o, c, 3, 3))
    y = wg.conv2d(x, wt, (ph, pw))
    gy = rng.standard_normal(y.shape)
    forward = np.vdot(y, gy)
    scale = np.abs(y).sum() * np.abs(gy).max()
    assert abs(np.vdot(x, wg.conv2d_input_grad(gy, wt, x.shape, (ph, pw))) - forward) <= 1e-12 * scale
    assert abs(np.vdot(wt, wg.conv2d_weight_grad(x, gy, wt.shape, (ph, pw))) - forward) <= 1e-12 * scale


def test_banded_and_chunked_tiles_match(small_workspace):
    """Bands of tile rows (an image too big for the workspace) add their shared edge rows."""
    rng = np.random.default_rng(2)
    x, wt = rng.standard_normal((2, 3, 13, 9)), rng.standard_normal((4, 3, 3, 3))
    chunks = wg._chunks(2, 7, 6, 16 * 7 * 8)  # a 7x6 grid of tiles, bands of 2 tile rows
    assert len(chunks) == 8 and any(ty1 - ty0 < 7 for _, _, ty0, ty1 in chunks)
    y = wg.conv2d(x, wt, (1, 2))
    np.testing.assert_allclose(y, naive_conv3x3(x, wt, 1, 2), rtol=0, atol=1e-10)
    gy = rng.standard_normal(y.shape)
    gx_ref, gw_ref = naive_conv3x3_grads(x, wt, gy, 1, 2)
    gx, gw = wg.conv2d_backward(x, gy, wt, (1, 2))
    np.testing.assert_allclose(gx, gx_ref, rtol=0, atol=1e-10)
    np.testing.assert_allclose(gw, gw_ref, rtol=0, atol=1e-10)


def test_several_images_per_chunk():
    previous = mc.backends.set_workspace_limit(16 * (2 + 3) * 8 * 4 * 4 * 2)  # two 7x7 images per chunk
    try:
        assert len(wg._chunks(5, 4, 4, 16 * 5 * 8)) == 3
        rng = np.random.default_rng(3)
        x, wt = rng.standard_normal((5, 2, 7, 7)), rng.standard_normal((3, 2, 3, 3))
        np.testing.assert_allclose(wg.conv2d(x, wt, (1, 1)), direct_conv3x3(x, wt, 1, 1), rtol=0, atol=1e-10)
        gy = rng.standard_normal((5, 3, 7, 7))
        gx_ref, gw_ref = naive_conv3x3_grads(x, wt, gy, 1, 1)
        gx, gw = wg.conv2d_backward(x, gy, wt, (1, 1))
        np.testing.assert_allclose(gx, gx_ref, rtol=0, atol=1e-10)
        np.testing.assert_allclose(gw, gw_ref, rtol=0, atol=1e-10)
    finally:
        mc.backends.set_workspace_limit(previous)


# -- the transforms are the matrices of the docstring --------------------------------------

def test_transforms_match_their_matrices():
    rng = np.random.default_rng(4)
    d = rng.standard_normal((1, 1, 4, 4))  # one patch, no padding: one tile
    v = np.empty((16, 1, 1))
    kernels.input_transform(d, 0, 0, 0, 0, 1, 1, v)
    np.testing.assert_allclose(v.reshape(4, 4), wg.B_T @ d[0, 0] @ wg.B_T.T, atol=1e-14)
    g = rng.standard_normal((1, 1, 3, 3))
    np.testing.assert_allclose(wg.filter_transform(g).reshape(4, 4), wg.G @ g[0, 0] @ wg.G.T, atol=1e-14)
    m = rng.standard_normal((16, 1, 1))
    y = np.empty((1, 1, 2, 2))
    kernels.output_transform(m, 0, 0, 1, 1, np.array([0.25]), y)
    np.testing.assert_allclose(y[0, 0], wg.A_T @ m.reshape(4, 4) @ wg.A_T.T + 0.25, atol=1e-14)
    # and F(2, 3) is exact: A^T [(G g G^T) * (B^T d B)] A = the 2x2 valid correlation of d with g
    full = wg.A_T @ ((wg.G @ g[0, 0] @ wg.G.T) * (wg.B_T @ d[0, 0] @ wg.B_T.T)) @ wg.A_T.T
    np.testing.assert_allclose(full, naive_conv3x3(d, g, 0, 0)[0, 0], atol=1e-13)


# -- float32, memory, interface -------------------------------------------------------------

def test_float32_accuracy_is_that_of_direct_convolution():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 32, 15, 18)).astype(np.float32)
    w = (rng.standard_normal((16, 32, 3, 3)) / 17).astype(np.float32)
    x64, w64 = x.astype(np.float64), w.astype(np.float64)
    y = wg.conv2d(x, w, (1, 1))
    assert y.dtype == np.float32 and y.flags.c_contiguous
    ref = direct_conv3x3(x64, w64, 1, 1)
    direct = rel_err(direct_conv3x3(x, w, 1, 1), ref)
    assert rel_err(y, ref) < max(4 * direct, 1e-6)
    gy = rng.standard_normal(y.shape).astype(np.float32)
    gx, gw = wg.conv2d_backward(x, gy, w, (1, 1))
    assert gx.dtype == gw.dtype == np.float32 and gx.flags.c_contiguous and gw.flags.c_contiguous
    gx_ref, gw_ref = wg.conv2d_backward(x64, gy.astype(np.float64), w64, (1, 1))
    assert rel_err(gx, gx_ref) < 1e-5 and rel_err(gw, gw_ref) < 1e-5


def test_results_do_not_alias_the_scratch_buffer():
    rng = np.random.default_rng(6)
    x, w = rng.standard_normal((1, 2, 6, 6)), rng.standard_normal((2, 2, 3, 3))
    y1 = wg.conv2d(x, w, (1, 1))
    kept = y1.copy()
    y2 = wg.conv2d(2 * x, w, (1, 1))
    np.testing.assert_array_equal(y1, kept)  # the second call did not write into the first result
    np.testing.assert_allclose(y2, 2 * kept, rtol=1e-14)


def test_read_only_broadcast_gradient_and_empty_batch():
    rng = np.random.default_rng(7)
    x, w = rng.standard_normal((2, 2, 5, 5)), rng.standard_normal((3, 2, 3, 3))
    gy = np.broadcast_to(np.float64(1.0), (2, 3, 5, 5))
    gx_ref, gw_ref = naive_conv3x3_grads(x, w, np.ones((2, 3, 5, 5)), 1, 1)
    gx, gw = wg.conv2d_backward(x, gy, w, (1, 1))
    np.testing.assert_allclose(gx, gx_ref, atol=1e-10)
    np.testing.assert_allclose(gw, gw_ref, atol=1e-10)
    empty = np.zeros((0, 2, 5, 5))
    assert wg.conv2d(empty, w, (1, 1)).shape == (0, 3, 5, 5)
    gx, gw = wg.conv2d_backward(empty, np.zeros((0, 3, 5, 5)), w, (1, 1))
    assert gx.shape == (0, 2, 5, 5) and np.array_equal(gw, np.zeros_like(w))


def test_weight_grad_checks_the_weight_shape():
    x, gy = np.zeros((1, 2, 5, 5)), np.zeros((1, 3, 5, 5))
    with pytest.raises(ValueError, match="weight shape"):
        wg.conv2d_weight_grad(x, gy, (3, 4, 3, 3), (1, 1))


def _auto_takes_winograd(x_shape, w_shape, stride=1, padding=1, dilation=1, groups=1, dtype=np.float64):
    """Whether "auto" runs conv2d of these shapes as Winograd."""
    pair = [(v, v) if isinstance(v, int) else v for v in (stride, padding, dilation)]
    fn = SimpleNamespace(win=Window(*w_shape[2:], *pair[0], *pair[1], *pair[2]), groups=groups)
    x, w = np.broadcast_to(np.zeros(1, dtype), x_shape), np.broadcast_to(np.zeros(1, dtype), w_shape)
    return conv_algorithms.fastest("conv2d", fn, x, w) is wg.Conv2d


def test_which_convolutions_take_winograd():
    takes = _auto_takes_winograd
    x, w = (8, 64, 56, 56), (64, 64, 3, 3)
    assert takes(x, w) and takes(x, w, dtype=np.float32)
    assert takes(x, w, padding=(0, 2))
    assert not takes(x, w, dtype=np.float16)
    assert not takes(x, w, stride=2)
    assert not takes(x, w, stride=(1, 2))
    assert not takes(x, w, dilation=2)
    assert not takes(x, (64, 32, 3, 3), groups=2)
    assert not takes(x, (64, 64, 5, 5), padding=2)
    assert not takes(x, (64, 64, 3, 1))
    assert not takes(x, w, padding=3)
    # where the transforms cost more than the multiplications saved
    assert not takes((1, 3, 256, 256), (64, 3, 3, 3))  # 3 input channels
    assert not takes((1, 64, 256, 256), (4, 64, 3, 3))  # 4 output channels
    assert takes((1, 8, 256, 256), (8, 8, 3, 3))
    assert takes((8, 512, 7, 7), (512, 512, 3, 3))  # 8 * 4 * 4 = 128 tiles
    assert not takes((4, 512, 7, 7), (512, 512, 3, 3))  # 64 tiles
    assert not takes((8, 512, 7, 7), (512, 512, 3, 3), padding=0)  # 8 * 3 * 3 = 72 tiles


# -- through conv2d: the dispatch, the bias, autograd ---------------------------------------

def _eligible_case(rng, n=1, c=8, o=9, h=23, w=26):
    """Odd and even sizes, 12 x 13 = 156 tiles per image: Winograd's thresholds are met."""
    import minicnn as mc

    x = mc.tensor(rng.standard_normal((n, c, h, w)), requires_grad=True)
    weight = mc.tensor(rng.standard_normal((o, c, 3, 3)), requires_grad=True)
    bias = mc.tensor(rng.standard_normal(o), requires_grad=True)
    assert _auto_takes_winograd(x.shape, weight.shape)
    return x, weight, bias


def test_conv2d_through_winograd_matches_the_textbook_path():
    import minicnn.nn.functional as F

    rng = np.random.default_rng(21)
    x, weight, bias = _eligible_case(rng, n=2)
    gy = rng.standard_normal((2, 9, 23, 26))
    results = []
    for algorithm in ("winograd", "im2col"):
        for t in (x, weight, bias):
            t.grad = None
        with mc.backends.conv_algorithm(algorithm):
            y = F.conv2d(x, weight, bias, padding=1)
            y.backward(gy)
        results.append([y.numpy(), x.grad.numpy(), weight.grad.numpy(), bias.grad.numpy()])
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_gradcheck_through_conv2d():
    import minicnn as mc
    import minicnn.nn.functional as F

    x, weight, bias = _eligible_case(np.random.default_rng(22))
    assert mc.gradcheck(lambda a, b, c: F.conv2d(a, b, c, padding=1), (x, weight, bias), fast_mode=True)
