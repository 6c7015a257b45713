"""Batch normalisation and local response normalisation: naive loop references, gradchecks,
running statistics, layers and bad inputs."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minicnn as mc
import minicnn.nn as nn
import minicnn.nn.functional as F
from minicnn import cpu


def t64(a, grad=False):
    return mc.tensor(np.array(a, dtype=np.float64), requires_grad=grad)  # a copy: ops may update buffers in place


# -- naive references -----------------------------------------------------------------------

def naive_channel_stats(x):
    """Per-channel mean, biased and unbiased variance of x (N, C, *) by explicit loops."""
    n, c = x.shape[:2]
    flat = x.reshape(n, c, -1)
    means, biased, unbiased = [], [], []
    for ch in range(c):
        vals = [flat[i, ch, j] for i in range(n) for j in range(flat.shape[2])]
        m = sum(vals) / len(vals)
        ss = sum((v - m) ** 2 for v in vals)
        means.append(m)
        biased.append(ss / len(vals))
        unbiased.append(ss / (len(vals) - 1) if len(vals) > 1 else float("nan"))
    return np.array(means), np.array(biased), np.array(unbiased)


def naive_batch_norm(x, mean, var, weight, bias, eps):
    n, c = x.shape[:2]
    flat = x.reshape(n, c, -1)
    y = np.empty_like(flat)
    for i in range(n):
        for ch in range(c):
            for j in range(flat.shape[2]):
                xhat = (flat[i, ch, j] - mean[ch]) / math.sqrt(var[ch] + eps)
                y[i, ch, j] = xhat * weight[ch] + bias[ch]
    return y.reshape(x.shape)


def naive_lrn(x, size, alpha, beta, k):
    n, c = x.shape[:2]
    y = np.empty_like(x)
    for i in range(n):
        for ch in range(c):
            acc = np.zeros(x.shape[2:])
            for j in range(ch - size // 2, ch + (size - 1) // 2 + 1):
                if 0 <= j < c:
                    acc = acc + x[i, j] ** 2
            y[i, ch] = x[i, ch] / (k + alpha / size * acc) ** beta
    return y


# -- batch norm: forward values ---------------------------------------------------------------

@pytest.mark.parametrize("shape", [(5, 3), (3, 2, 4), (2, 3, 4, 5)])
def test_batch_norm_training_matches_loops(shape):
    rng = np.random.default_rng(1)
    x = rng.standard_normal(shape) * 2 + 3
    w, b = rng.standard_normal(shape[1]), rng.standard_normal(shape[1])
    rm, rv = np.zeros(shape[1]), np.ones(shape[1])
    running_mean, running_var = t64(rm), t64(rv)
    y = F.batch_norm(t64(x), running_mean, running_var, t64(w), t64(b), training=True, eps=1e-5)
    mean, biased, unbiased = naive_channel_stats(x)
    np.testing.assert_allclose(y.numpy(), naive_batch_norm(x, mean, biased, w, b, 1e-5), atol=1e-10)
    np.testing.assert_allclose(running_mean.numpy(), 0.9 * rm + 0.1 * mean, atol=1e-12)
    np.testing.assert_allclose(running_var.numpy(), 0.9 * rv + 0.1 * unbiased, atol=1e-12)


@pytest.mark.parametrize("shape", [(4, 3), (2, 3, 4, 5)])
def test_batch_norm_eval_uses_running_stats(shape):
    rng = np.random.default_rng(2)
    x = rng.standard_normal(shape)
    w, b = rng.standard_normal(shape[1]), rng.standard_normal(shape[1])
    rm, rv = rng.standard_normal(shape[1]), rng.random(shape[1]) + 0.5
    running_mean, running_var = t64(rm), t64(rv)
    y = F.batch_norm(t64(x), running_mean, running_var, t64(w), t64(b), training=False, eps=1e-3)
    np.testing.assert_allclose(y.numpy(), naive_batch_norm(x, rm, rv, w, b, 1e-3), atol=1e-10)
    np.testing.assert_array_equal(running_mean.numpy(), rm)  # eval never updates
    np.testing.assert_array_equal(running_var.numpy(), rv)


def test_batch_norm_without_affine_or_running_stats():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((6, 2, 3))
    y = F.batch_norm(t64(x), None, None, training=True)
    mean, biased, _ = naive_channel_stats(x)
    np.testing.assert_allclose(y.numpy(), naive_batch_norm(x, mean, biased, np.ones(2), np.zeros(2), 1e-5),
                               atol=1e-10)


def test_batch_norm_keeps_float32():
    x = mc.randn(4, 3, 5, 5)
    bn = nn.BatchNorm2d(3)
    assert bn(x).dtype == np.float32
    assert bn.running_var.dtype == np.float32
    bn.eval()
    assert bn(x).dtype == np.float32


# -- batch norm: gradients ----------------------------------------------------------------------

@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape", [(4, 3), (3, 2, 3), (2, 2, 3, 2)])
def test_batch_norm_gradcheck(training, shape):
    rng = np.random.default_rng(4)
    x = t64(rng.standard_normal(shape) * 2 + 1, True)
    w, b = t64(rng.standard_normal(shape[1]), True), t64(rng.standard_normal(shape[1]), True)
    rm, rv = rng.standard_normal(shape[1]), rng.random(shape[1]) + 0.5

    def f(x, w, b):  # fresh running buffers each call: training mode updates them
        return F.batch_norm(x, t64(rm), t64(rv), w, b, training=training)

    assert mc.gradcheck(f, [x, w, b])


@pytest.mark.parametrize("with_weight,with_bias", [(True, False), (False, True), (False, False)])
def test_batch_norm_gradcheck_partial_affine(with_weight, with_bias):
    rng = np.random.default_rng(5)
    x = t64(rng.standard_normal((3, 2, 2)), True)
    w = t64(rng.standard_normal(2), True) if with_weight else None
    b = t64(rng.standard_normal(2), True) if with_bias else None
    inputs = [x] + [t for t in (w, b) if t is not None]

    def f(x, *affine):
        it = iter(affine)
        return F.batch_norm(x, None, None, next(it) if with_weight else None,
                            next(it) if with_bias else None, training=True)

    assert mc.gradcheck(f, inputs)


def test_batch_norm_training_gradient_of_x_sums_to_zero():
    # the batch mean is subtracted, so a constant shift of x changes nothing: sum_x dL/dx = 0
    rng = np.random.default_rng(6)
    x = t64(rng.standard_normal((5, 3, 2, 2)), True)
    y = F.batch_norm(x, None, None, t64(rng.standard_normal(3)), training=True)
    y.backward(rng.standard_normal(y.shape))
    np.testing.assert_allclose(x.grad.numpy().sum(axis=(0, 2, 3)), 0, atol=1e-12)


def test_batch_norm_kernels_directly():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 3, 4))
    mean, invstd = rng.standard_normal(3), rng.random(3) + 0.5
    y = cpu.batch_norm_forward(x, mean, invstd, None, None)
    np.testing.assert_allclose(y, (x - mean[:, None]) * invstd[:, None], atol=1e-12)
    gy = rng.standard_normal(x.shape)
    gx, gw, gb = cpu.batch_norm_backward(gy, x, mean, invstd, None, False)
    np.testing.assert_allclose(gx, gy * invstd[:, None], atol=1e-12)
    np.testing.assert_allclose(gb, gy.sum(axis=(0, 2)), atol=1e-12)
    np.testing.assert_allclose(gw, (gy * (x - mean[:, None]) * invstd[:, None]).sum(axis=(0, 2)), atol=1e-12)


@settings(max_examples=15)
@given(n=st.integers(1, 3), c=st.integers(1, 3), spatial=st.lists(st.integers(1, 3), max_size=2),
       training=st.booleans(), seed=st.integers(0, 2**31))
def test_batch_norm_hypothesis(n, c, spatial, training, seed):
    shape = (n, c) + tuple(spatial)
    count = n * int(np.prod(spatial))
    if training and count < 2:
        return
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    w, b = rng.standard_normal(c), rng.standard_normal(c)
    rm, rv = rng.standard_normal(c), rng.random(c) + 0.1
    y = F.batch_norm(t64(x), t64(rm), t64(rv), t64(w), t64(b), training=training, eps=1e-4)
    if training:
        mean, var, _ = naive_channel_stats(x)
    else:
        mean, var = rm, rv
    np.testing.assert_allclose(y.numpy(), naive_batch_norm(x, mean, var, w, b, 1e-4), atol=1e-9)
    xt = t64(x, True)
    assert mc.gradcheck(lambda x: F.batch_norm(x, None, None, t64(w), t64(b), training=True) if training
                        else F.batch_norm(x, t64(rm), t64(rv), t64(w), t64(b)), [xt], fast_mode=True)


# -- batch norm: running statistics and the layers ----------------------------------------------

def test_batchnorm2d_running_stats_after_three_steps():
    rng = np.random.default_rng(8)
    bn = nn.BatchNorm2d(3, momentum=0.2).double()
    rm, rv = np.zeros(3), np.ones(3)
    for step in range(3):
        x = rng.standard_normal((4, 3, 2, 3)) * (step + 1) + step
        bn(t64(x))
        mean, _, unbiased = naive_channel_stats(x)
        rm = 0.8 * rm + 0.2 * mean
        rv = 0.8 * rv + 0.2 * unbiased
        assert bn.num_batches_tracked.item() == step + 1
    np.testing.assert_allclose(bn.running_mean.numpy(), rm, atol=1e-12)
    np.testing.assert_allclose(bn.running_var.numpy(), rv, atol=1e-12)
    assert bn.num_batches_tracked.dtype == np.int64
    bn.eval()
    bn(t64(rng.standard_normal((2, 3, 2, 2))))
    assert bn.num_batches_tracked.item() == 3  # eval does not count


def test_batchnorm_momentum_none_is_cumulative_average():
    rng = np.random.default_rng(9)
    bn = nn.BatchNorm1d(2, momentum=None).double()
    means, variances = [], []
    for _ in range(3):
        x = rng.standard_normal((5, 2)) + 2
        bn(t64(x))
        mean, _, unbiased = naive_channel_stats(x)
        means.append(mean)
        variances.append(unbiased)
    np.testing.assert_allclose(bn.running_mean.numpy(), np.mean(means, axis=0), atol=1e-12)
    np.testing.assert_allclose(bn.running_var.numpy(), np.mean(variances, axis=0), atol=1e-12)


def test_batchnorm_state_dict_and_parameters():
    bn = nn.BatchNorm2d(4)
    assert list(bn.state_dict()) == ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
    assert [n for n, _ in bn.named_parameters()] == ["weight", "bias"]
    np.testing.assert_array_equal(bn.weight.numpy(), np.ones(4, np.float32))
    np.testing.assert_array_equal(bn.bias.numpy(), np.zeros(4, np.float32))
    plain = nn.BatchNorm2d(4, affine=False, track_running_stats=False)
    assert list(plain.state_dict()) == [] and list(plain.parameters()) == []
    assert "eps=1e-05, momentum=0.1" in repr(bn)


def test_batchnorm_without_tracking_uses_batch_stats_in_eval():
    rng = np.random.default_rng(10)
    x = rng.standard_normal((4, 2, 3, 3))
    bn = nn.BatchNorm2d(2, affine=False, track_running_stats=False).double().eval()
    mean, var, _ = naive_channel_stats(x)
    np.testing.assert_allclose(bn(t64(x)).numpy(), naive_batch_norm(x, mean, var, [1, 1], [0, 0], 1e-5),
                               atol=1e-10)


def test_batchnorm_eval_mode_layer_matches_affine_map_and_grads():
    rng = np.random.default_rng(11)
    bn = nn.BatchNorm1d(3, eps=1e-3).double()
    bn.load_state_dict({"weight": rng.standard_normal(3), "bias": rng.standard_normal(3),
                        "running_mean": rng.standard_normal(3), "running_var": rng.random(3) + 0.5,
                        "num_batches_tracked": np.array(7)})
    bn.eval()
    x = t64(rng.standard_normal((2, 3, 4)), True)
    assert mc.gradcheck(lambda x, w, b: bn(x), [x, bn.weight, bn.bias])
    expected = naive_batch_norm(x.numpy(), bn.running_mean.numpy(), bn.running_var.numpy(),
                                bn.weight.numpy(), bn.bias.numpy(), 1e-3)
    np.testing.assert_allclose(bn(x).numpy(), expected, atol=1e-10)


# -- batch norm: bad inputs ----------------------------------------------------------------------

def test_batch_norm_single_value_per_channel_in_training():
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        F.batch_norm(mc.randn(1, 3), None, None, training=True)
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        nn.BatchNorm2d(3)(mc.randn(1, 3, 1, 1))
    nn.BatchNorm2d(3).eval()(mc.randn(1, 3, 1, 1))  # fine in eval mode


def test_batch_norm_bad_shapes():
    with pytest.raises(ValueError, match=r"weight has shape \(4,\).*3 channels"):
        F.batch_norm(mc.randn(2, 3), None, None, mc.ones(4), training=True)
    with pytest.raises(ValueError, match=r"running_mean has shape \(2,\)"):
        F.batch_norm(mc.randn(2, 3), mc.zeros(2), mc.ones(3))
    with pytest.raises(ValueError, match=r"expected an input of shape \(N, C, \*\)"):
        F.batch_norm(mc.randn(3), mc.zeros(3), mc.ones(3))
    with pytest.raises(ValueError, match=r"BatchNorm2d\(3\): input has 4 channels"):
        nn.BatchNorm2d(3)(mc.randn(2, 4, 2, 2))
    with pytest.raises(ValueError, match="BatchNorm2d: expected a 4-D input"):
        nn.BatchNorm2d(3)(mc.randn(2, 3))
    with pytest.raises(ValueError, match="BatchNorm1d: expected a 2-D or 3-D input"):
        nn.BatchNorm1d(3)(mc.randn(2, 3, 2, 2))


def test_batch_norm_eval_needs_running_stats():
    with pytest.raises(RuntimeError, match="running_mean and running_var must be given"):
        F.batch_norm(mc.randn(2, 3), None, None, training=False)
    with pytest.raises(TypeError, match="running_mean must be a Tensor"):
        F.batch_norm(mc.randn(2, 3), np.zeros(3), mc.ones(3))
    with pytest.raises(ValueError, match="momentum=None"):
        F.batch_norm(mc.randn(2, 3), mc.zeros(3), mc.ones(3), training=True, momentum=None)


# -- local response norm ---------------------------------------------------------------------------

@pytest.mark.parametrize("size,alpha,beta,k", [(5, 1e-4, 0.75, 1.0), (5, 5e-4, 0.75, 2.0), (2, 0.5, 0.6, 1.5),
                                               (1, 0.3, 1.0, 1.0), (4, 1.0, 0.5, 0.5), (9, 0.7, 0.75, 1.0)])
def test_lrn_matches_loops(size, alpha, beta, k):
    rng = np.random.default_rng(12)
    x = rng.standard_normal((2, 6, 3, 4)) * 3
    y = F.local_response_norm(t64(x), size, alpha, beta, k)
    np.testing.assert_allclose(y.numpy(), naive_lrn(x, size, alpha, beta, k), rtol=1e-11, atol=1e-12)


@pytest.mark.parametrize("size", [1, 2, 3, 4, 7])
def test_lrn_gradcheck(size):
    rng = np.random.default_rng(13)
    x = t64(rng.standard_normal((2, 5, 2, 2)) * 2, True)
    assert mc.gradcheck(lambda x: F.local_response_norm(x, size, alpha=0.5, beta=0.75, k=1.0), [x])


def test_lrn_3d_input_and_layer():
    rng = np.random.default_rng(14)
    x = rng.standard_normal((2, 4, 5))
    layer = nn.LocalResponseNorm(3, alpha=0.2, beta=0.75, k=2.0)
    np.testing.assert_allclose(layer(t64(x)).numpy(), naive_lrn(x, 3, 0.2, 0.75, 2.0), atol=1e-12)
    assert mc.gradcheck(lambda x: layer(x), [t64(x[:1, :, :2], True)])
    assert layer(mc.randn(1, 4, 3, 3)).dtype == np.float32


@settings(max_examples=20)
@given(n=st.integers(1, 2), c=st.integers(1, 8), hw=st.integers(1, 3), size=st.integers(1, 10),
       beta=st.floats(0.1, 1.5), seed=st.integers(0, 2**31))
def test_lrn_hypothesis(n, c, hw, size, beta, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, hw, hw)) * 2
    y = F.local_response_norm(t64(x), size, 0.4, beta, 1.0)
    np.testing.assert_allclose(y.numpy(), naive_lrn(x, size, 0.4, beta, 1.0), rtol=1e-11, atol=1e-12)
    assert mc.gradcheck(lambda x: F.local_response_norm(x, size, 0.4, beta, 1.0), [t64(x, True)], fast_mode=True)


def test_lrn_bad_inputs():
    with pytest.raises(ValueError, match="3 or more dimensions"):
        F.local_response_norm(mc.randn(2, 4), 2)
    with pytest.raises(ValueError, match="size must be a positive integer"):
        F.local_response_norm(mc.randn(2, 4, 3), 0)


def test_batch_norm_and_lrn_agree_with_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(15)
    x = rng.standard_normal((3, 4, 5, 5))
    rm, rv = torch.zeros(4, dtype=torch.float64), torch.ones(4, dtype=torch.float64)
    ref = torch.nn.functional.batch_norm(torch.tensor(x), rm, rv, training=True)
    mrm, mrv = t64(np.zeros(4)), t64(np.ones(4))
    np.testing.assert_allclose(F.batch_norm(t64(x), mrm, mrv, training=True).numpy(), ref.numpy(), atol=1e-12)
    np.testing.assert_allclose(mrv.numpy(), rv.numpy(), atol=1e-12)
    ref = torch.nn.functional.local_response_norm(torch.tensor(x), 3, 0.1, 0.75, 2.0)
    np.testing.assert_allclose(F.local_response_norm(t64(x), 3, 0.1, 0.75, 2.0).numpy(), ref.numpy(), atol=1e-12)
