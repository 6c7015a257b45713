"""Dropout, PReLU, interpolate/Upsample and cropping: references, gradchecks, statistics, bad inputs."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minicnn as mc
import minicnn.nn as nn
import minicnn.nn.functional as F
from minicnn.ops import resize


def t64(a, grad=False):
    return mc.tensor(np.array(a, dtype=np.float64), requires_grad=grad)


# -- dropout ----------------------------------------------------------------------------------------

def test_dropout_preserves_the_mean_and_drops_a_fraction_p():
    x = mc.ones(200_000)
    y = F.dropout(x, p=0.3).numpy()
    assert y.dtype == np.float32
    kept = y != 0
    assert abs(1 - kept.mean() - 0.3) < 0.01
    np.testing.assert_allclose(y[kept], 1 / 0.7, rtol=1e-6)  # survivors scaled by 1 / (1 - p)
    assert abs(y.mean() - 1) < 0.01


def test_dropout_mask_reproducible_under_manual_seed():
    x = mc.randn(8, 16)
    mc.manual_seed(123)
    a = F.dropout(x, 0.5).numpy()
    mc.manual_seed(123)
    b = F.dropout(x, 0.5).numpy()
    np.testing.assert_array_equal(a, b)
    mc.manual_seed(124)
    assert not np.array_equal(a, F.dropout(x, 0.5).numpy())


def test_dropout_identity_cases_and_p_one():
    x = mc.randn(3, 4)
    assert F.dropout(x, 0.0) is x
    assert F.dropout(x, 0.7, training=False) is x
    xg = mc.randn(3, 4, requires_grad=True)
    y = F.dropout(xg, 1.0)
    np.testing.assert_array_equal(y.numpy(), np.zeros((3, 4), np.float32))
    y.sum().backward()
    np.testing.assert_array_equal(xg.grad.numpy(), np.zeros((3, 4)))


def test_dropout_gradient_is_the_mask():
    x = mc.ones(5, 7, requires_grad=True)
    y = F.dropout(x, 0.4)
    y.backward(np.full((5, 7), 2.0, np.float32))
    np.testing.assert_allclose(x.grad.numpy(), 2 * y.numpy())  # x = 1, so y is the mask itself


def test_dropout_gradcheck_with_a_fixed_mask():
    def f(x):
        mc.manual_seed(7)  # the same mask at every evaluation
        return F.dropout(x, 0.5)

    assert mc.gradcheck(f, [t64(np.random.default_rng(0).standard_normal((3, 4)), True)])
    assert mc.gradcheck(lambda x: (mc.manual_seed(7), F.dropout2d(x, 0.5))[1],
                        [t64(np.random.default_rng(1).standard_normal((2, 3, 2, 2)), True)])


def test_dropout2d_drops_whole_channels():
    x = mc.ones(50, 40, 3, 3)
    y = F.dropout2d(x, p=0.25).numpy()
    per_channel = y.reshape(50, 40, 9)
    zero = (per_channel == 0).all(axis=2)
    full = np.isclose(per_channel, 1 / 0.75).all(axis=2)
    assert (zero | full).all()  # each channel is either dropped or kept whole
    assert abs(zero.mean() - 0.25) < 0.03
    y3 = F.dropout2d(mc.ones(20, 30, 4), p=0.5).numpy()  # 3-D: (N, C, L)
    assert ((y3 == 0).all(axis=2) | (y3 == 2).all(axis=2)).all()


@settings(max_examples=10)
@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=4), p=st.floats(0.0, 1.0), seed=st.integers(0, 2**31))
def test_dropout_hypothesis(shape, p, seed):
    mc.manual_seed(seed)
    x = mc.rand(*shape) + 0.5
    y = F.dropout(x, p).numpy()
    kept = y != 0
    if p < 1:
        np.testing.assert_allclose(y[kept], x.numpy()[kept] / (1 - p), rtol=1e-5)
    else:
        assert not kept.any()


def test_dropout_layers_follow_train_and_eval():
    torch_like = nn.Sequential(nn.Dropout(0.5), nn.Dropout2d(0.5))
    x = mc.ones(4, 8, 2, 2)
    assert not np.array_equal(torch_like(x).numpy(), x.numpy())
    torch_like.eval()
    np.testing.assert_array_equal(torch_like(x).numpy(), x.numpy())
    assert repr(nn.Dropout(0.2)) == "Dropout(p=0.2)"


def test_dropout_bad_inputs():
    with pytest.raises(ValueError, match="dropout probability has to be between 0 and 1, but got 1.5"):
        F.dropout(mc.randn(3), 1.5)
    with pytest.raises(ValueError, match="but got -0.1"):
        nn.Dropout(-0.1)
    with pytest.raises(ValueError, match=r"dropout2d: expected a 4-D input.*got shape \(3, 4\)"):
        F.dropout2d(mc.randn(3, 4))


# -- PReLU --------------------------------------------------------------------------------------------

def naive_prelu(x, w):
    y = np.empty_like(x)
    for idx in np.ndindex(x.shape):
        slope = w[0] if len(w) == 1 else w[idx[1]]
        y[idx] = x[idx] if x[idx] > 0 else slope * x[idx]
    return y


@pytest.mark.parametrize("shape", [(4, 3), (2, 3, 2, 2), (2, 3, 4)])
@pytest.mark.parametrize("per_channel", [False, True])
def test_prelu_reference_and_gradcheck(shape, per_channel):
    rng = np.random.default_rng(2)
    x = rng.standard_normal(shape)
    w = rng.standard_normal(shape[1] if per_channel else 1)
    np.testing.assert_array_equal(F.prelu(t64(x), t64(w)).numpy(), naive_prelu(x, w))
    assert mc.gradcheck(F.prelu, [t64(x, True), t64(w, True)])


def test_prelu_weight_gradient_sums_negative_inputs():
    x = t64([[-1.0, 2.0], [-3.0, -4.0]], True)
    w = t64([0.5, 0.1], True)
    F.prelu(x, w).sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), [-4.0, -4.0])
    np.testing.assert_allclose(x.grad.numpy(), [[0.5, 1.0], [0.5, 0.1]])


def test_prelu_layer():
    layer = nn.PReLU(3, init=0.1)
    assert list(layer.state_dict()) == ["weight"]
    np.testing.assert_allclose(layer.weight.numpy(), [0.1, 0.1, 0.1])
    assert layer.weight.dtype == np.float32
    np.testing.assert_allclose(nn.PReLU().weight.numpy(), [0.25])
    x = mc.randn(2, 3, 4, 4)
    y = layer(x)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y.numpy(), np.where(x.numpy() > 0, x.numpy(), 0.1 * x.numpy()), rtol=1e-6)


def test_prelu_bad_weight():
    with pytest.raises(ValueError, match=r"prelu: weight of shape \(3,\) does not fit an input of shape \(2, 4\)"):
        F.prelu(mc.randn(2, 4), mc.ones(3))
    with pytest.raises(ValueError, match="expected 1 slope or one per channel"):
        nn.PReLU(5)(mc.randn(1, 4, 2, 2))


# -- interpolate ----------------------------------------------------------------------------------------

def naive_source(dst, n_in, n_out, factor, mode, align_corners):
    """(i0, i1, lambda) for one output index, written from PyTorch's definitions."""
    if mode == "nearest":
        scale = 1 / factor if factor else n_in / n_out
        return min(int(math.floor(dst * scale)), n_in - 1), 0, 0.0
    if align_corners:
        src = dst * (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
    else:
        scale = 1 / factor if factor else n_in / n_out
        src = max((dst + 0.5) * scale - 0.5, 0.0)
    i0 = min(int(math.floor(src)), n_in - 1)
    return i0, min(i0 + 1, n_in - 1), src - i0


def naive_interpolate(x, out_hw, factors, mode, align_corners):
    n, c, h, w = x.shape
    oh, ow = out_hw
    y = np.zeros((n, c, oh, ow))
    for oy in range(oh):
        y0, y1, ly = naive_source(oy, h, oh, factors[0], mode, align_corners)
        for ox in range(ow):
            x0, x1, lx = naive_source(ox, w, ow, factors[1], mode, align_corners)
            y[:, :, oy, ox] = ((1 - ly) * ((1 - lx) * x[:, :, y0, x0] + lx * x[:, :, y0, x1])
                               + ly * ((1 - lx) * x[:, :, y1, x0] + lx * x[:, :, y1, x1]))
    return y


def test_interpolate_known_values():
    x = t64([[[[1.0, 2.0], [3.0, 4.0]]]])
    np.testing.assert_array_equal(F.interpolate(x, scale_factor=2).numpy()[0, 0],
                                  [[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 4, 4], [3, 3, 4, 4]])
    row = t64([[[[0.0, 1.0]]]])
    np.testing.assert_allclose(F.interpolate(row, size=(1, 4), mode="bilinear").numpy().ravel(),
                               [0, 0.25, 0.75, 1])
    np.testing.assert_allclose(F.interpolate(row, size=(1, 3), mode="bilinear", align_corners=True).numpy().ravel(),
                               [0, 0.5, 1])
    line = t64([[[0.0, 1.0, 2.0]]])
    np.testing.assert_allclose(F.interpolate(line, scale_factor=2, mode="linear").numpy().ravel(),
                               [0, 0.25, 0.75, 1.25, 1.75, 2])


@pytest.mark.parametrize("mode,align_corners", [("nearest", None), ("bilinear", False), ("bilinear", True)])
@pytest.mark.parametrize("kwargs", [dict(scale_factor=2), dict(size=(5, 3)), dict(scale_factor=(1.5, 0.5)),
                                    dict(size=1)])
def test_interpolate_matches_loops_and_gradcheck(mode, align_corners, kwargs):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 2, 3, 4))
    y = F.interpolate(t64(x), mode=mode, align_corners=align_corners, **kwargs)
    if "size" in kwargs:
        size = kwargs["size"]
        out, factors = ((size, size) if isinstance(size, int) else size), (None, None)
    else:
        sf = kwargs["scale_factor"]
        factors = sf if isinstance(sf, tuple) else (sf, sf)
        out = (int(3 * factors[0]), int(4 * factors[1]))
    assert y.shape == (2, 2) + tuple(out)
    np.testing.assert_allclose(y.numpy(), naive_interpolate(x, out, factors, mode, align_corners), atol=1e-12)
    assert mc.gradcheck(lambda x: F.interpolate(x, mode=mode, align_corners=align_corners, **kwargs),
                        [t64(x[:1], True)])


@settings(max_examples=20)
@given(h=st.integers(1, 6), w=st.integers(1, 6), oh=st.integers(1, 9), ow=st.integers(1, 9),
       mode=st.sampled_from(["nearest", "bilinear"]), align=st.booleans(), seed=st.integers(0, 2**31))
def test_interpolate_hypothesis(h, w, oh, ow, mode, align, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((1, 2, h, w))
    ac = align if mode == "bilinear" else None
    y = F.interpolate(t64(x), size=(oh, ow), mode=mode, align_corners=ac)
    np.testing.assert_allclose(y.numpy(), naive_interpolate(x, (oh, ow), (None, None), mode, ac), atol=1e-12)
    assert mc.gradcheck(lambda x: F.interpolate(x, size=(oh, ow), mode=mode, align_corners=ac),
                        [t64(x, True)], fast_mode=True)


def test_interpolate_recompute_scale_factor_and_float32():
    x = mc.randn(1, 1, 5, 5)
    # with recompute_scale_factor the step is in/out (5/7), without it 1/1.5
    a = F.interpolate(x, scale_factor=1.5, mode="bilinear")
    b = F.interpolate(x, scale_factor=1.5, mode="bilinear", recompute_scale_factor=True)
    c = F.interpolate(x, size=7, mode="bilinear")
    assert a.dtype == np.float32 and a.shape == (1, 1, 7, 7)
    np.testing.assert_allclose(b.numpy(), c.numpy())
    assert not np.allclose(a.numpy(), c.numpy())


def test_upsample_layer():
    x = t64(np.random.default_rng(4).standard_normal((1, 2, 3, 3)))
    up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True)
    np.testing.assert_allclose(up(x).numpy(), naive_interpolate(x.numpy(), (6, 6), (2, 2), "bilinear", True),
                               atol=1e-12)
    assert nn.Upsample(size=(4, 5))(x).shape == (1, 2, 4, 5)
    assert "scale_factor=2" in repr(up)


def _cubic(d, a=-0.75):
    d = abs(d)
    return ((a + 2) * d - (a + 3)) * d * d + 1 if d <= 1 else (((a * d - 5 * a) * d + 8 * a) * d - 4 * a if d < 2 else 0.0)


def _naive_resize(x, out, mode, align_corners):
    """PyTorch's rules for bicubic, nearest-exact and area, one output pixel at a time."""
    n, c, h, w = x.shape
    oh, ow = out
    y = np.zeros((n, c, oh, ow))
    for i in range(oh):
        for j in range(ow):
            if mode == "area":  # the adaptive bin [floor(i*h/oh), ceil((i+1)*h/oh))
                r0, r1 = (i * h) // oh, -(-(i + 1) * h // oh)
                c0, c1 = (j * w) // ow, -(-(j + 1) * w // ow)
                y[:, :, i, j] = x[:, :, r0:r1, c0:c1].mean(axis=(2, 3))
            elif mode == "nearest-exact":
                y[:, :, i, j] = x[:, :, min(int((i + 0.5) * h / oh), h - 1), min(int((j + 0.5) * w / ow), w - 1)]
            else:
                def src(k, n_in, n_out):
                    if align_corners:
                        return k * (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
                    return (k + 0.5) * n_in / n_out - 0.5
                sy, sx = src(i, h, oh), src(j, w, ow)
                for dy in range(-1, 3):
                    for dx in range(-1, 3):
                        r, q = math.floor(sy) + dy, math.floor(sx) + dx
                        weight = _cubic(sy - r) * _cubic(sx - q)
                        y[:, :, i, j] += weight * x[:, :, min(max(r, 0), h - 1), min(max(q, 0), w - 1)]
    return y


@given(h=st.integers(1, 5), w=st.integers(1, 5), oh=st.integers(1, 7), ow=st.integers(1, 7),
       mode=st.sampled_from(["bicubic", "nearest-exact", "area"]), align_corners=st.booleans())
def test_interpolate_bicubic_nearest_exact_and_area_match_their_definitions(h, w, oh, ow, mode, align_corners):
    x = np.random.default_rng(h * 10 + w).standard_normal((1, 2, h, w))
    ac = align_corners if mode == "bicubic" else None
    y = F.interpolate(mc.tensor(x), size=(oh, ow), mode=mode, align_corners=ac)
    np.testing.assert_allclose(y.numpy(), _naive_resize(x, (oh, ow), mode, align_corners), rtol=1e-10, atol=1e-12)
    if mode != "nearest-exact":
        assert mc.gradcheck(lambda t: F.interpolate(t, size=(oh, ow), mode=mode, align_corners=ac),
                            [mc.tensor(x, requires_grad=True)])


def test_interpolate_bad_inputs():
    x = mc.randn(1, 1, 4, 4)
    with pytest.raises(ValueError, match="exactly one of size and scale_factor"):
        F.interpolate(x, size=2, scale_factor=2)
    with pytest.raises(ValueError, match="exactly one of size and scale_factor"):
        F.interpolate(x)
    with pytest.raises(ValueError, match="unsupported mode 'trilinear'"):
        F.interpolate(x, scale_factor=2, mode="trilinear")
    with pytest.raises(ValueError, match="align_corners can only be set"):
        F.interpolate(x, scale_factor=2, align_corners=True)
    with pytest.raises(ValueError, match=r"mode 'bilinear' needs a 4-D input, got shape \(1, 1, 4\)"):
        F.interpolate(mc.randn(1, 1, 4), scale_factor=2, mode="bilinear")
    with pytest.raises(ValueError, match="output size"):
        F.interpolate(x, scale_factor=0.1)
    with pytest.raises(ValueError, match="needs 2 values"):
        F.interpolate(x, size=(2, 2, 2))
    with pytest.raises(TypeError, match="floating point"):
        F.interpolate(mc.tensor(np.ones((1, 1, 2, 2), np.int64)), scale_factor=2)


# -- cropping ---------------------------------------------------------------------------------------------

def test_center_crop_values_and_gradient():
    x = np.arange(2 * 3 * 7 * 8, dtype=np.float64).reshape(2, 3, 7, 8)
    y = resize.center_crop(t64(x), (4, 4))
    np.testing.assert_array_equal(y.numpy(), x[:, :, 1:5, 2:6])  # odd difference: extra row at the bottom
    np.testing.assert_array_equal(F.center_crop(t64(x), 7).numpy(), x[:, :, :, 0:7])
    xt = t64(np.random.default_rng(5).standard_normal((1, 2, 5, 4)), True)
    assert mc.gradcheck(lambda x: F.center_crop(x, (3, 2)), [xt])
    F.center_crop(xt, (3, 2)).sum().backward()
    expected = np.zeros((1, 2, 5, 4))
    expected[:, :, 1:4, 1:3] = 1
    np.testing.assert_array_equal(xt.grad.numpy(), expected)


def test_unet_skip_crop_shapes():
    skip = mc.randn(1, 2, 568, 568)
    assert F.center_crop(skip, (392, 392)).shape == (1, 2, 392, 392)
    np.testing.assert_array_equal(F.crop(skip, 88, 88, 392, 392).numpy(),
                                  F.center_crop(skip, (392, 392)).numpy())


def test_crop_bad_inputs():
    with pytest.raises(ValueError, match=r"center_crop: cannot crop \(6, 2\) out of an input of shape \(1, 1, 5, 5\)"):
        F.center_crop(mc.randn(1, 1, 5, 5), (6, 2))
    with pytest.raises(ValueError, match="crop: window top=3, left=0, height=3, width=2 does not fit"):
        F.crop(mc.randn(1, 1, 5, 5), 3, 0, 3, 2)


def test_interpolate_agrees_with_torch():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(6).standard_normal((1, 2, 5, 6))
    for kw in (dict(scale_factor=1.7, mode="bilinear"), dict(size=(3, 9), mode="bilinear", align_corners=True),
               dict(scale_factor=0.6, mode="nearest")):
        ref = torch.nn.functional.interpolate(torch.tensor(x), **kw).numpy()
        np.testing.assert_allclose(F.interpolate(t64(x), **kw).numpy(), ref, atol=1e-12)
