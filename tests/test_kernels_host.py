"""The CUDA kernels (kernels/*.cu) executed on the CPU.

kernels/host_shim.h lets g++ compile the same source; minicnn.cuda.host runs
each launch as a small grid of threads, one after another, on NumPy arrays,
through the real minicnn.cuda wrappers. Results are matched against plain-loop
references written here in float64 (and finite differences for the
backward passes whose formula is not a simple scatter), and against the
minicnn.cpu twins where those exist.
"""
import itertools

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import minicnn.cpu
import minicnn.cuda as cu
from minicnn.cuda import host

pytestmark = pytest.mark.skipif(
    host.compiler() is None, reason="no C++ compiler (g++ or $CXX) to build kernels/*.cu for the host")

DTYPES = [np.float32, np.float64]
TOL = {np.float32: dict(rtol=2e-5, atol=2e-5), np.float64: dict(rtol=1e-12, atol=1e-12)}


@pytest.fixture(scope="module", autouse=True)
def emulated():
    host.build()  # all kernel files at once, in parallel
    with host.emulate():
        yield


def out_size(n, k, s, p, d=1, ceil_mode=False):
    """PyTorch's pooling/conv output size; in ceil mode the last window must start
    inside the input or the left padding."""
    span = n + 2 * p - d * (k - 1) - 1
    if span < 0:
        return 0
    o = (-(-span // s) if ceil_mode else span // s) + 1
    if ceil_mode and (o - 1) * s >= n + p:
        o -= 1
    return o


def taps_touch_image(n, k, s, p, d, o):
    """Every window has at least one tap inside the image (else max pooling has no
    defined argmax)."""
    return all(any(0 <= y * s - p + i * d < n for i in range(k)) for y in range(o))


def random_array(rng, shape, dtype, ties=False):
    if ties:  # few distinct values: many equal maxima
        return rng.integers(-2, 3, size=shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


# ---------------------------------------------------------------- references
def ref_im2col(x, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow):
    N, C, H, W = x.shape
    col = np.zeros((N, C * kh * kw, oh * ow))
    for n, c, i, j, y, x_ in itertools.product(range(N), range(C), range(kh), range(kw), range(oh), range(ow)):
        h, w = y * sh - ph + i * dh, x_ * sw - pw + j * dw
        if 0 <= h < H and 0 <= w < W:
            col[n, (c * kh + i) * kw + j, y * ow + x_] = x[n, c, h, w]
    return col


def ref_col2im(col, h, w, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow):
    N, C = col.shape[0], col.shape[1] // (kh * kw)
    x = np.zeros((N, C, h, w))
    for n, c, i, j, y, x_ in itertools.product(range(N), range(C), range(kh), range(kw), range(oh), range(ow)):
        hh, ww = y * sh - ph + i * dh, x_ * sw - pw + j * dw
        if 0 <= hh < h and 0 <= ww < w:
            x[n, c, hh, ww] += col[n, (c * kh + i) * kw + j, y * ow + x_]
    return x


def ref_max_pool(x, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow):
    """PyTorch's rule: first maximum in row-major window order; a NaN replaces anything."""
    N, C, H, W = x.shape
    y = np.zeros((N, C, oh, ow))
    idx = np.zeros((N, C, oh, ow), dtype=np.int64)
    for n, c, oy, ox in itertools.product(range(N), range(C), range(oh), range(ow)):
        best, at = -np.inf, None
        for i, j in itertools.product(range(kh), range(kw)):
            h, w = oy * sh - ph + i * dh, ox * sw - pw + j * dw
            if 0 <= h < H and 0 <= w < W:
                v = x[n, c, h, w]
                if at is None or v > best or np.isnan(v):
                    best, at = v, h * W + w
        y[n, c, oy, ox], idx[n, c, oy, ox] = best, at
    return y, idx


def ref_max_pool_backward(gy, idx, h, w):
    N, C = gy.shape[:2]
    gx = np.zeros((N, C, h * w))
    for n, c, k in itertools.product(range(N), range(C), range(gy.shape[2] * gy.shape[3])):
        gx[n, c, idx[n, c].flat[k]] += gy[n, c].flat[k]
    return gx.reshape(N, C, h, w)


def avg_windows(H, W, kh, kw, sh, sw, ph, pw, oh, ow, count_include_pad, divisor_override):
    """(oy, ox, rows, cols, divisor) per window, PyTorch's divisor rule."""
    for oy, ox in itertools.product(range(oh), range(ow)):
        h0, w0 = oy * sh - ph, ox * sw - pw
        h1, w1 = min(h0 + kh, H + ph), min(w0 + kw, W + pw)
        pool_size = (h1 - h0) * (w1 - w0)
        h0, w0, h1, w1 = max(h0, 0), max(w0, 0), min(h1, H), min(w1, W)
        divisor = divisor_override or (pool_size if count_include_pad else (h1 - h0) * (w1 - w0))
        yield oy, ox, range(h0, h1), range(w0, w1), divisor


def ref_avg_pool(x, *geometry):
    N, C, H, W = x.shape
    oh, ow = geometry[6:8]
    y = np.zeros((N, C, oh, ow))
    for oy, ox, rows, cols, divisor in avg_windows(H, W, *geometry):
        y[:, :, oy, ox] = sum(x[:, :, h, w] for h in rows for w in cols) / divisor
    return y


def ref_avg_pool_backward(gy, H, W, *geometry):
    gx = np.zeros(gy.shape[:2] + (H, W))
    for oy, ox, rows, cols, divisor in avg_windows(H, W, *geometry):
        for h, w in itertools.product(rows, cols):
            gx[:, :, h, w] += gy[:, :, oy, ox] / divisor
    return gx


def ref_lrn(x, size, alpha, beta, k):
    """y_c = x_c * (k + alpha/size * sum of x^2 over channels [c - size//2, c + (size-1)//2])^-beta"""
    x = x.astype(np.float64)
    C = x.shape[1]
    scale = np.empty_like(x)
    for c in range(C):
        lo, hi = max(c - size // 2, 0), min(c + (size - 1) // 2, C - 1)
        scale[:, c] = k + alpha / size * (x[:, lo:hi + 1] ** 2).sum(axis=1)
    return x * scale ** -beta, scale


def ref_batch_norm_train(x, weight, bias, eps):
    """Training-mode batch norm with the statistics taken from x (biased variance)."""
    axes = (0,) + tuple(range(2, x.ndim))
    shape = (1, -1) + (1,) * (x.ndim - 2)
    mean = x.mean(axis=axes)
    invstd = 1 / np.sqrt(x.var(axis=axes) + eps)
    return (x - mean.reshape(shape)) * invstd.reshape(shape) * weight.reshape(shape) + bias.reshape(shape)


def numeric_gradient(f, x, gy, eps=1e-6):
    """d/dx of sum(gy * f(x)) by central differences, in float64."""
    x = x.astype(np.float64).copy()
    g = np.zeros_like(x)
    for k in range(x.size):
        old = x.flat[k]
        x.flat[k] = old + eps
        up = np.sum(gy * f(x))
        x.flat[k] = old - eps
        down = np.sum(gy * f(x))
        x.flat[k] = old
        g.flat[k] = (up - down) / (2 * eps)
    return g


# ---------------------------------------------------------------- strategies
@st.composite
def conv_cases(draw):
    g = dict(kh=draw(st.integers(1, 4)), kw=draw(st.integers(1, 4)), sh=draw(st.integers(1, 4)),
             sw=draw(st.integers(1, 4)), ph=draw(st.integers(0, 3)), pw=draw(st.integers(0, 3)),
             dh=draw(st.integers(1, 3)), dw=draw(st.integers(1, 3)))
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 7)), draw(st.integers(1, 7)))
    g["oh"] = out_size(shape[2], g["kh"], g["sh"], g["ph"], g["dh"])
    g["ow"] = out_size(shape[3], g["kw"], g["sw"], g["pw"], g["dw"])
    assume(g["oh"] > 0 and g["ow"] > 0)
    return shape, g, draw(st.integers(0, 2**32 - 1))


@st.composite
def max_pool_cases(draw):
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    g = dict(kh=kh, kw=kw, sh=draw(st.integers(1, 4)), sw=draw(st.integers(1, 4)),
             ph=draw(st.integers(0, kh // 2)), pw=draw(st.integers(0, kw // 2)),
             dh=draw(st.integers(1, 3)), dw=draw(st.integers(1, 3)))
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 8)), draw(st.integers(1, 8)))
    ceil_mode = draw(st.booleans())
    g["oh"] = out_size(shape[2], kh, g["sh"], g["ph"], g["dh"], ceil_mode)
    g["ow"] = out_size(shape[3], kw, g["sw"], g["pw"], g["dw"], ceil_mode)
    assume(g["oh"] > 0 and g["ow"] > 0)
    assume(taps_touch_image(shape[2], kh, g["sh"], g["ph"], g["dh"], g["oh"]))
    assume(taps_touch_image(shape[3], kw, g["sw"], g["pw"], g["dw"], g["ow"]))
    return shape, g, draw(st.booleans()), draw(st.integers(0, 2**32 - 1))


@st.composite
def avg_pool_cases(draw):
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    sh, sw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    ph, pw = draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2))
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 8)), draw(st.integers(1, 8)))
    ceil_mode = draw(st.booleans())
    oh, ow = out_size(shape[2], kh, sh, ph, 1, ceil_mode), out_size(shape[3], kw, sw, pw, 1, ceil_mode)
    assume(oh > 0 and ow > 0)
    geometry = (kh, kw, sh, sw, ph, pw, oh, ow, draw(st.booleans()), draw(st.sampled_from([None, 1, 2, 5])))
    return shape, geometry, draw(st.integers(0, 2**32 - 1))


# ---------------------------------------------------------------- im2col / col2im
@pytest.mark.parametrize("dtype", DTYPES)
@settings(max_examples=30)
@given(case=conv_cases())
def test_im2col_col2im_match_loops(dtype, case):
    shape, g, seed = case
    rng = np.random.default_rng(seed)
    x = random_array(rng, shape, dtype)
    col = cu.im2col(x, **g)
    assert col.dtype == dtype and col.shape == (shape[0], shape[1] * g["kh"] * g["kw"], g["oh"] * g["ow"])
    np.testing.assert_array_equal(col, ref_im2col(x, **g))  # a pure copy: exact
    c = random_array(rng, col.shape, dtype)
    img = cu.col2im(c, shape[2], shape[3], **g)
    assert img.dtype == dtype and img.shape == shape
    np.testing.assert_allclose(img, ref_col2im(c.astype(np.float64), shape[2], shape[3], **g), **TOL[dtype])


def test_col2im_is_the_adjoint_of_im2col():
    rng = np.random.default_rng(1)
    g = dict(kh=3, kw=2, sh=2, sw=1, ph=1, pw=2, dh=2, dw=3, oh=3, ow=6)
    x = rng.standard_normal((2, 3, 7, 5))
    c = rng.standard_normal((2, 18, 18))
    lhs = np.sum(cu.im2col(x, **g) * c)
    rhs = np.sum(x * cu.col2im(c, 7, 5, **g))
    assert abs(lhs - rhs) < 1e-12 * abs(lhs) + 1e-12


def test_col2im_rejects_a_col_that_does_not_fit_the_geometry():
    with pytest.raises(ValueError, match=r"col2im: col of shape \(1, 10, 4\) does not match a 3x3 kernel"):
        cu.col2im(np.zeros((1, 10, 4)), 2, 2, 3, 3, 1, 1, 1, 1, 1, 1, 2, 2)


@pytest.mark.parametrize("blocks,threads", [(1, 1), (2, 3), (7, 5), (64, 32)])
def test_any_grid_gives_the_same_result(blocks, threads):
    """One thread walking the whole grid-stride loop, or many threads sharing it: same answer."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 9, 8)).astype(np.float32)
    g = dict(kh=3, kw=3, sh=2, sw=1, ph=1, pw=1, dh=1, dw=2, oh=5, ow=6)
    with host.emulate(host.HostRunner(blocks, threads)):
        col = cu.im2col(x, **g)
        img = cu.col2im(col, 9, 8, **g)
        y, idx = cu.max_pool2d_forward(x, 3, 3, 2, 2, 1, 1, 1, 1, 5, 4)
    np.testing.assert_array_equal(col, ref_im2col(x, **g))
    np.testing.assert_allclose(img, ref_col2im(col.astype(np.float64), 9, 8, **g), rtol=1e-6, atol=1e-6)
    ry, ridx = ref_max_pool(x, 3, 3, 2, 2, 1, 1, 1, 1, 5, 4)
    np.testing.assert_array_equal(y, ry)
    np.testing.assert_array_equal(idx, ridx)


# ---------------------------------------------------------------- max pooling
@pytest.mark.parametrize("dtype", DTYPES)
@settings(max_examples=30)
@given(case=max_pool_cases())
def test_max_pool_matches_loops(dtype, case):
    shape, g, ties, seed = case
    rng = np.random.default_rng(seed)
    x = random_array(rng, shape, dtype, ties)
    y, idx = cu.max_pool2d_forward(x, **g)
    ry, ridx = ref_max_pool(x, **g)
    assert y.dtype == dtype and idx.dtype == np.int64
    np.testing.assert_array_equal(y, ry)
    np.testing.assert_array_equal(idx, ridx)
    gy = random_array(rng, y.shape, dtype)
    window = {k: g[k] for k in ("kh", "kw", "sh", "sw", "ph", "pw", "dh", "dw")}
    gx = cu.max_pool2d_backward(gy, idx, shape[2], shape[3], **window)
    assert gx.dtype == dtype and gx.shape == shape
    np.testing.assert_allclose(gx, ref_max_pool_backward(gy.astype(np.float64), idx, shape[2], shape[3]),
                               **TOL[dtype])


def test_max_pool_ties_go_to_the_first_maximum_and_overlaps_add_up():
    x = np.ones((1, 1, 3, 4), dtype=np.float32)
    y, idx = cu.max_pool2d_forward(x, 2, 2, 1, 1, 0, 0, 1, 1, 2, 3)
    np.testing.assert_array_equal(idx[0, 0], [[0, 1, 2], [4, 5, 6]])  # each window's top-left
    gy = np.arange(1, 7, dtype=np.float32).reshape(1, 1, 2, 3)
    gx = cu.max_pool2d_backward(gy, idx, 3, 4, 2, 2, 1, 1, 0, 0, 1, 1)
    np.testing.assert_array_equal(gx[0, 0], [[1, 2, 3, 0], [4, 5, 6, 0], [0, 0, 0, 0]])
    # a pixel chosen by several windows gets the sum
    x = np.array([[[[0, 0, 0], [0, 9, 0], [0, 0, 0]]]], dtype=np.float64)
    y, idx = cu.max_pool2d_forward(x, 2, 2, 1, 1, 0, 0, 1, 1, 2, 2)
    assert (idx == 4).all() and (y == 9).all()
    gx = cu.max_pool2d_backward(np.full((1, 1, 2, 2), 0.5), idx, 3, 3, 2, 2, 1, 1, 0, 0, 1, 1)
    assert gx[0, 0, 1, 1] == 2.0 and gx.sum() == 2.0


@pytest.mark.parametrize("dtype", DTYPES)
def test_max_pool_nan_wins_and_padding_never_does(dtype):
    x = -np.arange(16, dtype=dtype).reshape(1, 1, 4, 4) - 1  # all negative: padding (-inf) must lose
    x[0, 0, 2, 1] = np.nan
    y, idx = cu.max_pool2d_forward(x, 3, 3, 2, 2, 1, 1, 1, 1, 2, 2)
    assert y[0, 0, 0, 0] == -1 and idx[0, 0, 0, 0] == 0
    assert np.isnan(y[0, 0, 1, 0]) and idx[0, 0, 1, 0] == 9  # the window over (2, 1)
    assert np.isnan(y[0, 0, 1, 1]) and idx[0, 0, 1, 1] == 9
    assert y[0, 0, 0, 1] == -2 and idx[0, 0, 0, 1] == 1


# ---------------------------------------------------------------- average pooling
@pytest.mark.parametrize("dtype", DTYPES)
@settings(max_examples=30)
@given(case=avg_pool_cases())
def test_avg_pool_matches_loops(dtype, case):
    shape, geometry, seed = case
    rng = np.random.default_rng(seed)
    x = random_array(rng, shape, dtype)
    y = cu.avg_pool2d_forward(x, *geometry)
    assert y.dtype == dtype and y.shape == shape[:2] + geometry[6:8]
    np.testing.assert_allclose(y, ref_avg_pool(x.astype(np.float64), *geometry), **TOL[dtype])
    gy = random_array(rng, y.shape, dtype)
    gx = cu.avg_pool2d_backward(gy, shape[2], shape[3], *geometry)
    assert gx.dtype == dtype and gx.shape == shape
    np.testing.assert_allclose(gx, ref_avg_pool_backward(gy.astype(np.float64), shape[2], shape[3], *geometry),
                               **TOL[dtype])


def test_avg_pool_divisor_rules():
    x = np.ones((1, 1, 2, 2))
    # 3x3 window, padding 1, stride 2 over a 2x2 image: 4 real pixels, 9 taps (pool_size)
    include = cu.avg_pool2d_forward(x, 3, 3, 2, 2, 1, 1, 1, 1, True, None)
    exclude = cu.avg_pool2d_forward(x, 3, 3, 2, 2, 1, 1, 1, 1, False, None)
    override = cu.avg_pool2d_forward(x, 3, 3, 2, 2, 1, 1, 1, 1, True, 2)
    assert include.item() == pytest.approx(4 / 9) and exclude.item() == 1.0 and override.item() == 2.0
    # ceil mode: the last window hangs past the padding, pool_size is cut at h + ph
    x = np.ones((1, 1, 1, 4))
    y = cu.avg_pool2d_forward(x, 1, 3, 1, 2, 0, 1, 1, 3, True, None)  # windows [-1,2) [1,4) [3,5)->[3,5)
    np.testing.assert_allclose(y[0, 0, 0], [2 / 3, 1.0, 1 / 2])


# ---------------------------------------------------------------- max unpooling
@pytest.mark.parametrize("dtype", DTYPES)
@settings(max_examples=20)
@given(N=st.integers(1, 2), C=st.integers(1, 3), h=st.integers(1, 4), w=st.integers(1, 4),
       extra=st.integers(0, 6), seed=st.integers(0, 2**32 - 1))
def test_max_unpool_matches_loops(dtype, N, C, h, w, extra, seed):
    rng = np.random.default_rng(seed)
    oh, ow = h + extra // 3, w + extra % 3
    x = random_array(rng, (N, C, h, w), dtype)
    # distinct indices per plane, as max pooling without overlap produces
    idx = np.stack([rng.permutation(oh * ow)[:h * w] for _ in range(N * C)]).reshape(N, C, h, w)
    y = cu.max_unpool2d_forward(x, idx, oh, ow)
    ref = np.zeros((N, C, oh * ow), dtype=dtype)
    for n, c, k in itertools.product(range(N), range(C), range(h * w)):
        ref[n, c, idx[n, c].flat[k]] = x[n, c].flat[k]
    np.testing.assert_array_equal(y, ref.reshape(N, C, oh, ow))
    gy = random_array(rng, (N, C, oh, ow), dtype)
    gx = cu.max_unpool2d_backward(gy, idx)
    np.testing.assert_array_equal(gx, np.take_along_axis(gy.reshape(N, C, -1), idx.reshape(N, C, -1), 2)
                                  .reshape(N, C, h, w))


def test_max_unpool_rejects_out_of_range_indices():
    x = np.ones((1, 1, 2, 2), dtype=np.float32)
    idx = np.array([[[[0, 1], [2, 9]]]])
    with pytest.raises(IndexError, match=r"max_unpool2d_forward: index 9 is out of range for an output plane of 3x3"):
        cu.max_unpool2d_forward(x, idx, 3, 3)
    with pytest.raises(IndexError, match=r"max_unpool2d_backward: index -1"):
        cu.max_unpool2d_backward(np.ones((1, 1, 3, 3)), idx - 1)


# ---------------------------------------------------------------- LRN
@pytest.mark.parametrize("dtype", DTYPES)
@settings(max_examples=15)
@given(shape=st.sampled_from([(2, 5, 3), (1, 7, 2, 3), (2, 1, 2, 2), (1, 4, 2, 1, 2)]),
       size=st.integers(1, 6), alpha=st.floats(0, 2), beta=st.floats(0.1, 2), k=st.floats(0.5, 3),
       seed=st.integers(0, 2**32 - 1))
def test_lrn_matches_reference_and_finite_differences(dtype, shape, size, alpha, beta, k, seed):
    rng = np.random.default_rng(seed)
    x = random_array(rng, shape, dtype)
    y, scale = cu.lrn_forward(x, size, alpha, beta, k)
    ry, rscale = ref_lrn(x, size, alpha, beta, k)
    assert y.dtype == dtype and scale.dtype == dtype
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(scale, rscale, **tol)
    np.testing.assert_allclose(y, ry, **tol)
    gy = random_array(rng, shape, dtype)
    gx = cu.lrn_backward(gy, x, y, scale, size, alpha, beta)
    numeric = numeric_gradient(lambda v: ref_lrn(v, size, alpha, beta, k)[0], x, gy.astype(np.float64))
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-7, atol=1e-8)
    np.testing.assert_allclose(gx, numeric, **tol)


# ---------------------------------------------------------------- batch norm
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(4, 3), (2, 3, 5), (2, 2, 3, 3), (3, 1, 2, 1, 2)])
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_forward_and_training_backward(dtype, shape, affine):
    rng = np.random.default_rng(3)
    C, eps = shape[1], 1e-5
    x = (rng.standard_normal(shape) * 2 + 1).astype(dtype)
    weight = rng.standard_normal(C).astype(dtype) if affine else None
    bias = rng.standard_normal(C).astype(dtype) if affine else None
    w64 = np.ones(C) if weight is None else weight.astype(np.float64)
    b64 = np.zeros(C) if bias is None else bias.astype(np.float64)
    axes = (0,) + tuple(range(2, x.ndim))
    mean = x.mean(axis=axes, dtype=np.float64).astype(dtype)
    invstd = (1 / np.sqrt(x.var(axis=axes, dtype=np.float64) + eps)).astype(dtype)
    y = cu.batch_norm_forward(x, mean, invstd, weight, bias)
    assert y.dtype == dtype and y.shape == shape
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(y, ref_batch_norm_train(x.astype(np.float64), w64, b64, eps), **tol)

    gy = random_array(rng, shape, dtype)
    gx, gweight, gbias = cu.batch_norm_backward(gy, x, mean, invstd, weight, True)
    assert gx.dtype == gweight.dtype == gbias.dtype == dtype
    numeric = numeric_gradient(lambda v: ref_batch_norm_train(v, w64, b64, eps), x, gy.astype(np.float64))
    xhat = ref_batch_norm_train(x.astype(np.float64), np.ones(C), np.zeros(C), eps)
    tol = dict(rtol=1e-4, atol=1e-4) if dtype == np.float32 else dict(rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(gx, numeric, **tol)
    np.testing.assert_allclose(gbias, gy.astype(np.float64).sum(axis=axes), **tol)
    np.testing.assert_allclose(gweight, (gy * xhat).sum(axis=axes), **tol)


@pytest.mark.parametrize("dtype", DTYPES)
def test_batch_norm_eval_backward_treats_the_statistics_as_constants(dtype):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 4, 2, 5)).astype(dtype)
    gy = rng.standard_normal(x.shape).astype(dtype)
    mean = rng.standard_normal(4).astype(dtype)
    invstd = rng.uniform(0.5, 2, 4).astype(dtype)
    weight = rng.standard_normal(4).astype(dtype)
    gx, gweight, gbias = cu.batch_norm_backward(gy, x, mean, invstd, weight, False)
    c = (1, -1, 1, 1)
    xhat = (x - mean.reshape(c)) * invstd.reshape(c)
    np.testing.assert_allclose(gx, gy * (weight * invstd).reshape(c), **TOL[dtype])
    np.testing.assert_allclose(gweight, (gy * xhat).sum(axis=(0, 2, 3)), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(gbias, gy.sum(axis=(0, 2, 3)), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(4, 3), (2, 3, 5), (3, 2, 30, 31), (2, 1, 1, 1)])
def test_batch_norm_stats_match_a_float64_reference(dtype, shape):
    """Two passes: accurate in float32 even with a mean far larger than the spread; the
    (3, 2, 30, 31) case has more values per channel than partial sums."""
    rng = np.random.default_rng(8)
    x = (rng.standard_normal(shape) * 0.5 + 100).astype(dtype)
    mean, var = cu.batch_norm_stats(x)
    assert mean.dtype == var.dtype == dtype and mean.shape == var.shape == (shape[1],)
    axes = (0,) + tuple(range(2, x.ndim))
    ref_mean, ref_var = x.mean(axis=axes, dtype=np.float64), x.var(axis=axes, dtype=np.float64)
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(mean, ref_mean, **tol)
    np.testing.assert_allclose(var, ref_var, **tol)


def test_batch_norm_backward_partial_sums_cover_every_value():
    """More values per channel than partial sums: each partial adds several."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 2, 30, 31))  # 2790 values per channel > PARTIALS
    gy = rng.standard_normal(x.shape)
    _, gweight, gbias = cu.batch_norm_backward(gy, x, np.zeros(2), np.ones(2), None, True)
    np.testing.assert_allclose(gbias, gy.sum(axis=(0, 2, 3)), rtol=1e-12)
    np.testing.assert_allclose(gweight, (gy * x).sum(axis=(0, 2, 3)), rtol=1e-12)


# ---------------------------------------------------------------- fused element-wise
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (3, 7), (1, 2, 3)])
def test_bias_relu_and_relu_backward(dtype, shape):
    rng = np.random.default_rng(6)
    x = rng.standard_normal(shape).astype(dtype)
    x.flat[0] = np.nan
    b = rng.standard_normal(shape[1]).astype(dtype)
    y = cu.bias_relu(x, b)
    ref = np.maximum(x + b.reshape((1, -1) + (1,) * (x.ndim - 2)), 0)
    np.testing.assert_array_equal(y, ref)  # NaN stays NaN
    gy = rng.standard_normal(shape).astype(dtype)
    np.testing.assert_array_equal(cu.relu_backward(gy, y), np.where(y > 0, gy, 0))


def test_mismatched_shapes_are_refused_before_launch():
    x = np.ones((2, 3, 4, 4))
    with pytest.raises(ValueError, match=r"minicnn.cuda.lrn_backward: gy has shape \(2, 3, 4, 3\), expected \(2, 3, 4, 4\)"):
        cu.lrn_backward(np.ones((2, 3, 4, 3)), x, x, x, 3, 1e-4, 0.75)
    with pytest.raises(ValueError, match=r"minicnn.cuda.bias_relu: b has shape \(4,\), expected \(3,\)"):
        cu.bias_relu(x, np.ones(4))
    with pytest.raises(ValueError, match=r"minicnn.cuda.batch_norm_forward: invstd has shape \(2,\)"):
        cu.batch_norm_forward(x, np.zeros(3), np.ones(2), None, None)
    with pytest.raises(ValueError, match=r"minicnn.cuda.max_pool2d_backward: idx has shape"):
        cu.max_pool2d_backward(x, np.zeros((2, 3, 4, 2), np.int64), 8, 8, 2, 2, 2, 2, 0, 0, 1, 1)


def test_kernel_sources_are_found_and_can_be_relocated(monkeypatch, tmp_path):
    from minicnn.cuda import source

    assert (source.kernels_dir() / "host_shim.h").is_file()
    code = source.read_source("lrn")
    assert "MC_KERNEL_LOOP" in code and "mc_host_set_thread" in code  # headers pasted in
    monkeypatch.setenv("MINICNN_KERNELS_DIR", str(tmp_path))
    with pytest.raises(RuntimeError, match=r"CUDA kernel sources not found in .*MINICNN_KERNELS_DIR"):
        source.kernels_dir()


def test_unsupported_dtype_is_a_clear_error():
    with pytest.raises(TypeError, match=r"minicnn.cuda.bias_relu: dtype float16 is not supported"):
        cu.bias_relu(np.zeros((1, 2), np.float16), np.zeros(2, np.float16))


# ---------------------------------------------------------------- against the minicnn.cpu twins
def _twin_cases(dtype):
    rng = np.random.default_rng(7)
    x = random_array(rng, (2, 3, 7, 6), dtype)
    g = (3, 2, 2, 1, 1, 1, 1, 2, 4, 4)  # kh kw sh sw ph pw dh dw oh ow
    col = random_array(rng, (2, 18, 16), dtype)
    gy_pool = random_array(rng, (2, 3, 4, 4), dtype)
    _, idx = ref_max_pool(x, *g)
    avg = (3, 3, 2, 2, 1, 1, 4, 3, False, None)
    unpool_idx = np.stack([rng.permutation(42)[:12] for _ in range(6)]).reshape(2, 3, 3, 4)
    small = random_array(rng, (2, 3, 3, 4), dtype)
    y_lrn, scale = ref_lrn(x, 3, 1e-2, 0.75, 1.0)
    vec = [random_array(rng, (3,), dtype) for _ in range(3)]
    invstd = np.abs(vec[1]) + dtype(0.5)
    w_dw = random_array(rng, (6, 1, 3, 2), dtype)  # depthwise, multiplier 2
    dw = (2, 1, 1, 1, 1, 2)  # sh sw ph pw dh dw -> a 4x6 output
    gy_dw = random_array(rng, (2, 6, 4, 6), dtype)
    return {
        "depthwise_conv2d": (x, w_dw, random_array(rng, (6,), dtype), *dw, 4, 6),
        "depthwise_conv2d_input_grad": (gy_dw, w_dw, x.shape, *dw),
        "depthwise_conv2d_weight_grad": (x, gy_dw, 3, 2, *dw),
        "im2col": (x, *g),
        "col2im": (col, 7, 6, *g),
        "max_pool2d_forward": (x, *g),
        "max_pool2d_backward": (gy_pool, idx, 7, 6, *g[:8]),
        "avg_pool2d_forward": (x, *avg),
        "avg_pool2d_backward": (random_array(rng, (2, 3, 4, 3), dtype), 7, 6, *avg),
        "max_unpool2d_forward": (small, unpool_idx, 6, 7),
        "max_unpool2d_backward": (x, unpool_idx),
        "lrn_forward": (x, 3, 1e-2, 0.75, 1.0),
        "lrn_backward": (random_array(rng, x.shape, dtype), x, y_lrn.astype(dtype),
                         scale.astype(dtype), 3, 1e-2, 0.75),
        "batch_norm_stats": (x,),
        "batch_norm_forward": (x, vec[0], invstd, vec[2], vec[1]),
        "batch_norm_backward": (random_array(rng, x.shape, dtype), x, vec[0], invstd, vec[2], True),
        "relu_backward": (random_array(rng, x.shape, dtype), x),
        "bias_relu": (x, vec[2]),
    }


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", cu.__all__)
def test_matches_the_cpu_twin(name, dtype):
    twin = getattr(minicnn.cpu, name, None)
    if twin is None:
        pytest.skip(f"minicnn.cpu.{name} is not written yet")
    args = _twin_cases(dtype)[name]
    ours, theirs = getattr(cu, name)(*args), twin(*args)
    if not isinstance(ours, tuple):
        ours, theirs = (ours,), (theirs,)
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        b = np.asarray(b)
        assert a.shape == b.shape and a.dtype == b.dtype, (name, a.shape, b.shape, a.dtype, b.dtype)
        np.testing.assert_allclose(a, b, rtol=1e-5 if dtype == np.float32 else 1e-12,
                                   atol=1e-5 if dtype == np.float32 else 1e-12)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 2), c=st.integers(1, 3), k=st.integers(1, 2), kh=st.integers(1, 3), kw=st.integers(1, 3),
       sh=st.integers(1, 2), sw=st.integers(1, 2), ph=st.integers(0, 2), pw=st.integers(0, 2),
       dh=st.integers(1, 2), dw=st.integers(1, 2), h=st.integers(1, 7), w=st.integers(1, 7))
def test_depthwise_matches_the_reference(n, c, k, kh, kw, sh, sw, ph, pw, dh, dw, h, w):
    """The CUDA depthwise kernels against the definition (minicnn.ops.conv_reference), float64."""
    from minicnn.geometry import Window
    from minicnn.ops import conv_reference

    oh, ow = out_size(h, kh, sh, ph, dh), out_size(w, kw, sw, pw, dw)
    assume(oh >= 1 and ow >= 1)
    rng = np.random.default_rng(n * 1000 + h * 10 + w)
    x, wt = rng.standard_normal((n, c, h, w)), rng.standard_normal((c * k, 1, kh, kw))
    gy = rng.standard_normal((n, c * k, oh, ow))
    win, geometry = Window(kh, kw, sh, sw, ph, pw, dh, dw), (sh, sw, ph, pw, dh, dw)
    b = rng.standard_normal(c * k)
    np.testing.assert_allclose(cu.depthwise_conv2d(x, wt, b, *geometry, oh, ow),
                               conv_reference.conv2d(x, wt, win, c, oh, ow) + b.reshape(1, -1, 1, 1), rtol=0, atol=1e-12)
    np.testing.assert_allclose(cu.depthwise_conv2d(x, wt, None, *geometry, oh, ow),
                               conv_reference.conv2d(x, wt, win, c, oh, ow), rtol=0, atol=1e-12)
    np.testing.assert_allclose(cu.depthwise_conv2d_input_grad(gy, wt, x.shape, *geometry),
                               conv_reference.conv2d_input_grad(gy, wt, win, c, x.shape), rtol=0, atol=1e-12)
    np.testing.assert_allclose(cu.depthwise_conv2d_weight_grad(x, gy, kh, kw, *geometry),
                               conv_reference.conv2d_weight_grad(x, gy, win, c), rtol=0, atol=1e-12)
