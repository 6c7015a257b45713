"""Losses: explicit-log references, gradchecks, stability at extreme logits, layers, bad inputs."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minicnn as mc
import minicnn.nn as nn
import minicnn.nn.functional as F


def t64(a, grad=False):
    return mc.tensor(np.array(a, dtype=np.float64), requires_grad=grad)


def classes_last(x):
    """(N, C, *d) -> rows (M, C) in the order of the target's elements."""
    return np.moveaxis(x, 1, -1).reshape(-1, x.shape[1])


def naive_cross_entropy(x, t, weight=None, ignore_index=-100, reduction="mean", smoothing=0.0):
    """Per element: log p_c = x_c - log sum_j exp(x_j), by explicit Python loops."""
    rows, flat_t = classes_last(x), t.reshape(-1)
    c = x.shape[1]
    w = np.ones(c) if weight is None else weight
    losses, denom = [], 0.0
    for row, tgt in zip(rows, flat_t):
        if tgt == ignore_index:
            losses.append(0.0)
            continue
        top = max(row)
        lse = top + math.log(sum(math.exp(v - top) for v in row))
        logp = [v - lse for v in row]
        nll = -w[tgt] * logp[tgt]
        smooth = -sum(w[j] * logp[j] for j in range(c)) / c
        losses.append((1 - smoothing) * nll + smoothing * smooth)
        denom += w[tgt]
    losses = np.array(losses).reshape(t.shape)
    if reduction == "none":
        return losses
    return losses.sum() if reduction == "sum" else losses.sum() / denom


def naive_nll(x, t, weight=None, ignore_index=-100, reduction="mean"):
    rows, flat_t = classes_last(x), t.reshape(-1)
    w = np.ones(x.shape[1]) if weight is None else weight
    losses = [0.0 if tgt == ignore_index else -w[tgt] * row[tgt] for row, tgt in zip(rows, flat_t)]
    denom = sum(w[tgt] for tgt in flat_t if tgt != ignore_index)
    losses = np.array(losses).reshape(t.shape)
    if reduction == "none":
        return losses
    return losses.sum() if reduction == "sum" else losses.sum() / denom


def naive_bce_with_logits(x, y, weight=None, pos_weight=None):
    """-w [pw y log sigmoid(x) + (1 - y) log(1 - sigmoid(x))] element by element (moderate |x|)."""
    out = np.empty(x.shape)
    pw = np.broadcast_to(1.0 if pos_weight is None else pos_weight, x.shape)
    w = np.broadcast_to(1.0 if weight is None else weight, x.shape)
    for i in np.ndindex(x.shape):
        s = 1 / (1 + math.exp(-x[i]))
        out[i] = -w[i] * (pw[i] * y[i] * math.log(s) + (1 - y[i]) * math.log(1 - s))
    return out


def reduce(v, reduction):
    return v if reduction == "none" else (v.sum() if reduction == "sum" else v.mean())


# -- cross entropy ----------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(6, 4), (2, 3, 4, 5), (3, 5, 4)])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted,smoothing", [(False, 0.0), (True, 0.0), (True, 0.3), (False, 0.1)])
def test_cross_entropy_matches_explicit_logs(shape, reduction, weighted, smoothing):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape) * 3
    t = rng.integers(0, shape[1], (shape[0],) + shape[2:])
    t.flat[::4] = -100  # some ignored elements
    w = rng.random(shape[1]) + 0.2 if weighted else None
    out = F.cross_entropy(t64(x), mc.tensor(t), None if w is None else t64(w), reduction=reduction,
                          label_smoothing=smoothing)
    np.testing.assert_allclose(out.numpy(), naive_cross_entropy(x, t, w, -100, reduction, smoothing),
                               rtol=1e-11, atol=1e-12)


def test_cross_entropy_other_ignore_index_and_numpy_target():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((5, 3))
    t = np.array([0, 2, 1, 2, 1])
    out = F.cross_entropy(t64(x), t, ignore_index=2)
    np.testing.assert_allclose(out.item(), naive_cross_entropy(x, t, ignore_index=2), rtol=1e-12)


def test_cross_entropy_unbatched_input():
    x = np.array([0.5, -1.0, 2.0])
    out = F.cross_entropy(t64(x), np.array(2))
    assert out.shape == ()
    np.testing.assert_allclose(out.item(), -(2.0 - math.log(sum(math.exp(v) for v in x))), rtol=1e-12)
    assert F.cross_entropy(t64(x), np.array(1), reduction="none").shape == ()


def test_cross_entropy_huge_logits_stay_finite():
    x = t64([[1000.0, -1000.0, 0.0], [-1e4, 1e4, 3.0]], True)
    loss = F.cross_entropy(x, np.array([1, 1]))
    np.testing.assert_allclose(loss.item(), 2000.0 / 2, rtol=1e-12)  # first row: 2000, second: ~0
    loss.backward()
    np.testing.assert_allclose(x.grad.numpy(), [[0.5, -0.5, 0.0], [0.0, 0.0, 0.0]], atol=1e-12)


def test_cross_entropy_all_ignored_mean_is_nan():
    out = F.cross_entropy(mc.randn(3, 4), np.array([-100, -100, -100]))
    assert math.isnan(out.item())
    assert F.cross_entropy(mc.randn(3, 4), np.array([-100, -100, -100]), reduction="sum").item() == 0


def test_cross_entropy_keeps_float32():
    x = mc.randn(2, 5, 3, 3, requires_grad=True)
    loss = F.cross_entropy(x, mc.randint(0, 5, (2, 3, 3)), weight=mc.rand(5), label_smoothing=0.1)
    assert loss.dtype == np.float32
    loss.backward()
    assert x.grad.dtype == np.float32


@pytest.mark.parametrize("shape", [(4, 3), (2, 3, 2, 2)])
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_cross_entropy_gradcheck_weights_and_ignore(shape, smoothing, reduction):
    rng = np.random.default_rng(2)
    x = t64(rng.standard_normal(shape), True)
    t = rng.integers(0, shape[1], (shape[0],) + shape[2:])
    t.flat[1] = -100
    w = t64(rng.random(shape[1]) + 0.5)
    assert mc.gradcheck(lambda x: F.cross_entropy(x, t, w, reduction=reduction, label_smoothing=smoothing), [x])


@settings(max_examples=20)
@given(n=st.integers(1, 3), c=st.integers(1, 5), d=st.lists(st.integers(1, 3), max_size=2),
       reduction=st.sampled_from(["mean", "sum", "none"]), weighted=st.booleans(),
       smoothing=st.sampled_from([0.0, 0.25]), seed=st.integers(0, 2**31))
def test_cross_entropy_hypothesis(n, c, d, reduction, weighted, smoothing, seed):
    rng = np.random.default_rng(seed)
    shape = (n, c) + tuple(d)
    x = rng.standard_normal(shape) * 4
    t = rng.integers(0, c, (n,) + tuple(d))
    t[rng.random(t.shape) < 0.2] = 7 if c < 7 else -1  # an unusual ignore_index
    t.flat[0] = rng.integers(0, c)  # at least one counted element
    ignore = 7 if c < 7 else -1
    w = rng.random(c) + 0.1 if weighted else None
    args = dict(ignore_index=ignore, reduction=reduction, label_smoothing=smoothing)
    out = F.cross_entropy(t64(x), t, None if w is None else t64(w), **args)
    np.testing.assert_allclose(out.numpy(), naive_cross_entropy(x, t, w, ignore, reduction, smoothing),
                               rtol=1e-10, atol=1e-12)
    assert mc.gradcheck(lambda x: F.cross_entropy(x, t, None if w is None else t64(w), **args),
                        [t64(x, True)], fast_mode=True)


# -- nll loss -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(5, 3), (2, 3, 2, 3)])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_nll_loss_matches_reference_and_gradcheck(shape, reduction):
    rng = np.random.default_rng(3)
    x = rng.standard_normal(shape)
    t = rng.integers(0, shape[1], (shape[0],) + shape[2:])
    t.flat[2] = -100
    w = rng.random(shape[1]) + 0.5
    out = F.nll_loss(t64(x), t, t64(w), reduction=reduction)
    np.testing.assert_allclose(out.numpy(), naive_nll(x, t, w, -100, reduction), rtol=1e-12, atol=1e-14)
    assert mc.gradcheck(lambda x: F.nll_loss(x, t, t64(w), reduction=reduction), [t64(x, True)])


def test_log_softmax_then_nll_equals_cross_entropy():
    rng = np.random.default_rng(4)
    x = t64(rng.standard_normal((3, 4, 2, 2)))
    t = rng.integers(0, 4, (3, 2, 2))
    np.testing.assert_allclose(F.nll_loss(F.log_softmax(x, 1), t).item(), F.cross_entropy(x, t).item(),
                               rtol=1e-12)


# -- binary cross entropy -----------------------------------------------------------------------------

@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted,pos_weighted", [(False, False), (True, False), (False, True), (True, True)])
def test_bce_with_logits_matches_reference(reduction, weighted, pos_weighted):
    rng = np.random.default_rng(5)
    x, y = rng.standard_normal((3, 4)) * 4, rng.random((3, 4))
    w = rng.random((1, 4)) if weighted else None
    pw = rng.random(4) * 3 if pos_weighted else None
    out = F.binary_cross_entropy_with_logits(t64(x), t64(y), None if w is None else t64(w), reduction,
                                             None if pw is None else t64(pw))
    np.testing.assert_allclose(out.numpy(), reduce(naive_bce_with_logits(x, y, w, pw), reduction), rtol=1e-11)


def test_bce_with_logits_large_logits_stay_finite():
    x = t64([100.0, -100.0, 100.0, -100.0, 1e4, -1e4], True)
    y = t64([0.0, 1.0, 1.0, 0.0, 0.0, 1.0], True)
    loss = F.binary_cross_entropy_with_logits(x, y, reduction="none", pos_weight=t64([2.0]))
    # tiny losses come out as differences of large terms (as in PyTorch), so only to ~1e-13 absolute
    np.testing.assert_allclose(loss.numpy(), [100, 200, 2 * math.exp(-100), math.exp(-100), 1e4, 2e4],
                               rtol=1e-12, atol=1e-13)
    loss.sum().backward()
    assert np.isfinite(x.grad.numpy()).all() and np.isfinite(y.grad.numpy()).all()
    np.testing.assert_allclose(x.grad.numpy(), [1, -2, 0, 0, 1, -2], atol=1e-12)
    assert mc.gradcheck(lambda x, y: F.binary_cross_entropy_with_logits(x, y, pos_weight=t64([2.0, 0.5])),
                        [t64([[100.0, -100.0], [-100.0, 3.0]], True), t64([[0.2, 0.7], [1.0, 0.4]], True)])


@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_bce_with_logits_gradcheck_input_and_target(reduction):
    rng = np.random.default_rng(6)
    x, y = t64(rng.standard_normal((2, 3, 2)) * 3, True), t64(rng.random((2, 3, 2)), True)
    w, pw = t64(rng.random((3, 1)) + 0.5), t64(rng.random(2) + 0.5)
    assert mc.gradcheck(lambda x, y: F.binary_cross_entropy_with_logits(x, y, w, reduction, pw), [x, y])


def test_bce_with_logits_accepts_integer_labels_and_keeps_float32():
    x = mc.randn(4, 3, requires_grad=True)
    labels = mc.randint(0, 2, (4, 3))
    loss = F.binary_cross_entropy_with_logits(x, labels)
    assert loss.dtype == np.float32
    expected = naive_bce_with_logits(x.numpy().astype(np.float64), labels.numpy().astype(np.float64)).mean()
    np.testing.assert_allclose(loss.item(), expected, rtol=1e-5)


@settings(max_examples=15)
@given(shape=st.lists(st.integers(1, 3), min_size=1, max_size=3), reduction=st.sampled_from(["mean", "sum", "none"]),
       seed=st.integers(0, 2**31))
def test_bce_with_logits_hypothesis(shape, reduction, seed):
    rng = np.random.default_rng(seed)
    x, y = rng.standard_normal(shape) * 5, rng.random(shape)
    pw = rng.random(shape[-1]) + 0.1
    out = F.binary_cross_entropy_with_logits(t64(x), t64(y), reduction=reduction, pos_weight=t64(pw))
    np.testing.assert_allclose(out.numpy(), reduce(naive_bce_with_logits(x, y, None, pw), reduction), rtol=1e-10)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_binary_cross_entropy_on_probabilities(reduction):
    rng = np.random.default_rng(7)
    p, y, w = rng.uniform(0.05, 0.95, (3, 4)), rng.random((3, 4)), rng.random(4)
    ref = -w * (y * np.log(p) + (1 - y) * np.log(1 - p))
    out = F.binary_cross_entropy(t64(p), t64(y), t64(w), reduction)
    np.testing.assert_allclose(out.numpy(), reduce(ref, reduction), rtol=1e-12)
    assert mc.gradcheck(lambda p, y: F.binary_cross_entropy(p, y, t64(w), reduction), [t64(p, True), t64(y, True)])


def test_binary_cross_entropy_clamps_log_at_zero_and_one():
    p = t64([0.0, 1.0, 0.0, 1.0], True)
    loss = F.binary_cross_entropy(p, t64([1.0, 0.0, 0.0, 1.0]), reduction="none")
    np.testing.assert_allclose(loss.numpy(), [100, 100, 0, 0])
    loss.sum().backward()
    assert np.isfinite(p.grad.numpy()).all()


# -- regression losses ------------------------------------------------------------------------------

@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_and_l1(reduction):
    rng = np.random.default_rng(8)
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    np.testing.assert_allclose(F.mse_loss(t64(a), t64(b), reduction).numpy(), reduce((a - b) ** 2, reduction),
                               rtol=1e-12)
    np.testing.assert_allclose(F.l1_loss(t64(a), t64(b), reduction).numpy(), reduce(np.abs(a - b), reduction),
                               rtol=1e-12)
    assert mc.gradcheck(lambda a, b: F.mse_loss(a, b, reduction), [t64(a, True), t64(b, True)])
    assert mc.gradcheck(lambda a, b: F.l1_loss(a, b, reduction), [t64(a, True), t64(b, True)])


# -- loss layers ----------------------------------------------------------------------------------------

def test_loss_layers_match_functional():
    rng = np.random.default_rng(9)
    x, t = t64(rng.standard_normal((4, 3))), rng.integers(0, 3, 4)
    w = t64(rng.random(3))
    ce = nn.CrossEntropyLoss(weight=w, label_smoothing=0.1)
    assert ce(x, t).item() == F.cross_entropy(x, t, w, label_smoothing=0.1).item()
    assert list(ce.state_dict()) == ["weight"]
    assert list(nn.CrossEntropyLoss().state_dict()) == []
    assert nn.NLLLoss(reduction="sum")(x, t).item() == F.nll_loss(x, t, reduction="sum").item()
    y = t64(rng.random((4, 3)))
    pw = t64(rng.random(3))
    assert nn.BCEWithLogitsLoss(pos_weight=pw)(x, y).item() == F.binary_cross_entropy_with_logits(
        x, y, pos_weight=pw).item()
    p = t64(rng.uniform(0.1, 0.9, (4, 3)))
    assert nn.BCELoss()(p, y).item() == F.binary_cross_entropy(p, y).item()
    assert nn.MSELoss()(x, y).item() == F.mse_loss(x, y).item()
    assert nn.L1Loss(reduction="none")(x, y).shape == (4, 3)


# -- bad inputs ----------------------------------------------------------------------------------------------

def test_cross_entropy_target_out_of_range_names_value_and_classes():
    with pytest.raises(IndexError, match=r"target value 5 is out of range for 4 classes"):
        F.cross_entropy(mc.randn(3, 4), np.array([0, 5, 1]))
    with pytest.raises(IndexError, match=r"target value -1 is out of range for 4 classes"):
        F.nll_loss(mc.randn(3, 4), np.array([0, -1, 1]))
    with pytest.raises(IndexError, match=r"target value 4 is out of range for 4 classes"):
        F.cross_entropy(mc.randn(1, 4, 2, 2), np.array([[[0, 1], [4, 2]]]))


def test_cross_entropy_float_targets_are_probabilities_of_the_inputs_shape():
    with pytest.raises(ValueError, match=r"probability targets must have the input's shape \(3, 4\), got \(3,\)"):
        F.cross_entropy(mc.randn(3, 4), mc.tensor([0.0, 1.0, 2.0]))


@given(n=st.integers(1, 3), c=st.integers(2, 4), spatial=st.lists(st.integers(1, 3), max_size=2),
       reduction=st.sampled_from(["mean", "sum", "none"]), smoothing=st.sampled_from([0.0, 0.3]),
       weighted=st.booleans())
def test_cross_entropy_with_probability_targets(n, c, spatial, reduction, smoothing, weighted):
    rng = np.random.default_rng(n * 100 + c)
    shape = (n, c, *spatial)
    x, t = rng.standard_normal(shape), rng.random(shape)
    w = rng.random(c) + 0.5 if weighted else None
    # the definition, by loops over rows: -sum_c w_c * t'_c * log softmax(x)_c
    t_s = t * (1 - smoothing) + smoothing / c
    rows = np.moveaxis(x, 1, -1).reshape(-1, c), np.moveaxis(t_s, 1, -1).reshape(-1, c)
    per = np.array([-sum((1 if w is None else w[k]) * tr[k] * (xr[k] - np.log(np.exp(xr).sum())) for k in range(c))
                    for xr, tr in zip(*rows)]).reshape((n, *spatial))
    want = {"none": per, "sum": per.sum(), "mean": per.mean()}[reduction]
    loss = lambda a, b: F.cross_entropy(a, b, None if w is None else mc.tensor(w), reduction=reduction,  # noqa: E731
                                        label_smoothing=smoothing)
    np.testing.assert_allclose(loss(mc.tensor(x), mc.tensor(t)).numpy(), want, rtol=1e-10, atol=1e-12)
    assert mc.gradcheck(loss, [mc.tensor(x, requires_grad=True), mc.tensor(t, requires_grad=True)])


def test_cross_entropy_shape_mismatch():
    with pytest.raises(ValueError, match=r"input of shape \(3, 4\) needs a target of shape \(3,\), got target of shape \(2,\)"):
        F.cross_entropy(mc.randn(3, 4), np.array([0, 1]))
    with pytest.raises(ValueError, match=r"needs a target of shape \(2, 5, 5\)"):
        F.cross_entropy(mc.randn(2, 3, 5, 5), np.zeros((2, 4, 5), np.int64))
    with pytest.raises(ValueError, match=r"weight has shape \(3,\).*4 classes"):
        F.cross_entropy(mc.randn(2, 4), np.array([0, 1]), weight=mc.ones(3))


def test_loss_bad_arguments():
    with pytest.raises(ValueError, match="reduction must be 'none', 'mean' or 'sum', got 'avg'"):
        F.cross_entropy(mc.randn(2, 3), np.array([0, 1]), reduction="avg")
    with pytest.raises(ValueError, match="reduction must be"):
        nn.MSELoss(reduction="max")
    with pytest.raises(ValueError, match="label_smoothing must be in"):
        F.cross_entropy(mc.randn(2, 3), np.array([0, 1]), label_smoothing=1.5)
    with pytest.raises(TypeError, match="input must be floating point"):
        F.cross_entropy(mc.tensor([[1, 2]]), np.array([0]))


def test_binary_losses_bad_inputs():
    with pytest.raises(ValueError, match=r"target of shape \(4,\) must have the input's shape \(3, 4\)"):
        F.binary_cross_entropy_with_logits(mc.randn(3, 4), mc.rand(4))
    with pytest.raises(ValueError, match=r"pos_weight of shape \(3,\) does not broadcast"):
        F.binary_cross_entropy_with_logits(mc.randn(3, 4), mc.rand(3, 4), pos_weight=mc.ones(3))
    with pytest.raises(ValueError, match=r"probabilities in \[0, 1\].*with_logits"):
        F.binary_cross_entropy(mc.tensor([0.5, 1.5]), mc.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="probabilities"):
        F.binary_cross_entropy(mc.tensor([0.5, float("nan")]), mc.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"mse_loss: target of shape \(4,\) must have the input's shape"):
        F.mse_loss(mc.randn(3, 4), mc.randn(4))
    with pytest.raises(ValueError, match="l1_loss"):
        F.l1_loss(mc.randn(3, 4), mc.randn(3, 1))


def test_losses_agree_with_torch():
    torch = pytest.importorskip("torch")
    TF = torch.nn.functional
    rng = np.random.default_rng(10)
    x, t, w = rng.standard_normal((2, 4, 3, 3)), rng.integers(0, 4, (2, 3, 3)), rng.random(4)
    t[0, 0, 0] = -100
    ref = TF.cross_entropy(torch.tensor(x), torch.tensor(t), torch.tensor(w), label_smoothing=0.2)
    np.testing.assert_allclose(F.cross_entropy(t64(x), t, t64(w), label_smoothing=0.2).item(), ref.item(), rtol=1e-12)
    y, pw = rng.random((2, 4, 3, 3)), rng.random((4, 1, 1))
    ref = TF.binary_cross_entropy_with_logits(torch.tensor(x), torch.tensor(y), pos_weight=torch.tensor(pw))
    np.testing.assert_allclose(F.binary_cross_entropy_with_logits(t64(x), t64(y), pos_weight=t64(pw)).item(),
                               ref.item(), rtol=1e-12)
