"""Every basic op against NumPy: forward values, gradients against complex-step
differentiation of the NumPy formula (exact to rounding), ``mc.gradcheck`` in float64,
float32/float64 preservation, numerical stability, and the errors for bad input."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import mutually_broadcastable_shapes

import minicnn as mc
import minicnn.nn.functional as F

H = 1e-30  # complex step


def complex_step_grads(np_fn, arrays, v):
    """d/dx_j sum(np_fn(*arrays) * v) for every element of every array, as Im f(x + i h e_j) / h.

    Exact to rounding for functions that are analytic (or locally analytic: masks
    taken from the real part) in their inputs; no cancellation, unlike differences.
    """
    grads = []
    for k, a in enumerate(arrays):
        g = np.zeros(a.shape)
        for j in range(a.size):
            z = [np.asarray(b, dtype=complex) for b in arrays]
            z[k] = z[k].copy()
            z[k].reshape(-1)[j] += 1j * H
            g.reshape(-1)[j] = (np.asarray(np_fn(*z)) * v).sum().imag / H
        grads.append(g)
    return grads


# --- NumPy references that also accept complex arrays ---------------------------------
def np_softmax(z, axis):
    e = np.exp(z - z.real.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def np_log_softmax(z, axis):
    s = z - z.real.max(axis=axis, keepdims=True)
    return s - np.log(np.exp(s).sum(axis=axis, keepdims=True))


def np_take_extreme(z, axis, keepdims, use_max):
    idx = (z.real.argmax if use_max else z.real.argmin)(axis=axis, keepdims=True)
    out = np.take_along_axis(z, idx, axis)
    return out if keepdims else out.squeeze(axis)


def np_clamp(z, lo, hi):
    r = z.real
    out = np.where(r < lo, lo, z) if lo is not None else z
    return np.where(r > hi, hi, out) if hi is not None else out


def np_pad_indexed(z, widths, mode):
    return np.pad(z, widths, mode={"reflect": "reflect", "replicate": "edge", "circular": "wrap"}[mode])


def sig(z):
    return 1 / (1 + np.exp(-z))


MASK = np.array([[True, False, True, True], [False, False, True, False], [True, True, False, True]])


def positive(shape):
    return lambda rng: rng.uniform(0.5, 2.0, shape)


def normal(shape):
    return lambda rng: rng.standard_normal(shape)


def away_from_zero(shape):
    """Values in +-[0.2, 1.5] so |x|, relu, clamp kinks are not within eps."""
    return lambda rng: rng.uniform(0.2, 1.5, shape) * rng.choice([-1.0, 1.0], shape)


def distinct(shape):
    """A permutation of well separated values (no ties for max/min)."""
    return lambda rng: rng.permutation(np.prod(shape)).reshape(shape) * 0.25 - 1.0


# name, minicnn function, NumPy function (complex-capable), input makers
CASES = [
    ("add", lambda a, b: a + b, lambda a, b: a + b, [normal((3, 4)), normal((4,))]),
    ("add_scalar", lambda a: 2.5 + a, lambda a: 2.5 + a, [normal((3,))]),
    ("sub", lambda a, b: a - b, lambda a, b: a - b, [normal((3, 1)), normal((1, 4))]),
    ("rsub", lambda a: 1 - a, lambda a: 1 - a, [normal((3,))]),
    ("mul", lambda a, b: a * b, lambda a, b: a * b, [normal((2, 3, 4)), normal((3, 1))]),
    ("div", lambda a, b: a / b, lambda a, b: a / b, [normal((3, 4)), positive((4,))]),
    ("rdiv", lambda a: 2 / a, lambda a: 2 / a, [positive((3,))]),
    ("neg", lambda a: -a, lambda a: -a, [normal((3, 2))]),
    ("pow2", lambda a: a ** 2, lambda a: a ** 2, [normal((3, 4))]),
    ("pow3", lambda a: a ** 3, lambda a: a ** 3, [normal((5,))]),
    ("pow_half", lambda a: a ** 0.5, lambda a: a ** 0.5, [positive((5,))]),
    ("pow_neg", lambda a: a ** -1.5, lambda a: a ** -1.5, [positive((2, 3))]),
    ("pow_zero", lambda a: a ** 0, lambda a: a ** 0 + 0 * a, [normal((4,))]),
    ("pow_tensor", lambda a, b: a ** b, lambda a, b: a ** b, [positive((3, 4)), normal((4,))]),
    ("rpow", lambda a: 2 ** a, lambda a: 2 ** a, [normal((4,))]),
    ("matmul_2d", lambda a, b: a @ b, lambda a, b: a @ b, [normal((3, 4)), normal((4, 5))]),
    ("matmul_vec_mat", lambda a, b: a @ b, lambda a, b: a @ b, [normal((4,)), normal((4, 5))]),
    ("matmul_mat_vec", lambda a, b: a @ b, lambda a, b: a @ b, [normal((3, 4)), normal((4,))]),
    ("matmul_dot", lambda a, b: mc.matmul(a, b), lambda a, b: a @ b, [normal((4,)), normal((4,))]),
    ("matmul_batched", lambda a, b: a @ b, lambda a, b: a @ b, [normal((2, 3, 4)), normal((4, 2))]),
    ("matmul_batch_bcast", lambda a, b: a @ b, lambda a, b: a @ b, [normal((2, 1, 3, 4)), normal((3, 4, 2))]),
    ("matmul_batch_vec", lambda a, b: a @ b, lambda a, b: a @ b, [normal((4,)), normal((2, 4, 3))]),
    ("sum_all", lambda a: a.sum(), lambda a: a.sum(), [normal((3, 4))]),
    ("sum_axis", lambda a: a.sum(1), lambda a: a.sum(1), [normal((2, 3, 4))]),
    ("sum_axes_keep", lambda a: mc.sum(a, (0, 2), keepdim=True), lambda a: a.sum((0, 2), keepdims=True),
     [normal((2, 3, 4))]),
    ("mean_all", lambda a: a.mean(), lambda a: a.mean(), [normal((3, 4))]),
    ("mean_neg_axis", lambda a: a.mean(-1, keepdim=True), lambda a: a.mean(-1, keepdims=True), [normal((2, 3, 4))]),
    ("var", lambda a: a.var(1), lambda a: ((a - a.mean(1, keepdims=True)) ** 2).sum(1) / 3, [normal((3, 4))]),
    ("max_all", lambda a: a.max(), lambda a: a.reshape(-1)[a.real.argmax()], [distinct((3, 4))]),
    ("min_all", lambda a: mc.min(a), lambda a: a.reshape(-1)[a.real.argmin()], [distinct((3, 4))]),
    ("max_dim", lambda a: a.max(1)[0], lambda a: np_take_extreme(a, 1, False, True), [distinct((3, 4))]),
    ("min_dim_keep", lambda a: a.min(0, keepdim=True).values, lambda a: np_take_extreme(a, 0, True, False),
     [distinct((3, 4))]),
    ("amax_axes", lambda a: mc.amax(a, (0, 2)), lambda a: np_take_extreme(a.reshape(2, 3, 4).transpose(1, 0, 2)
                                                                          .reshape(3, 8), 1, False, True),
     [distinct((2, 3, 4))]),
    ("reshape", lambda a: a.reshape(4, 3) * 1.5, lambda a: a.reshape(4, 3) * 1.5, [normal((2, 6))]),
    ("view_infer", lambda a: a.view(-1, 2), lambda a: a.reshape(-1, 2), [normal((2, 3, 2))]),
    ("flatten", lambda a: a.flatten(1), lambda a: a.reshape(2, -1), [normal((2, 3, 2))]),
    ("transpose", lambda a: a.transpose(0, 2), lambda a: a.swapaxes(0, 2), [normal((2, 3, 4))]),
    ("T", lambda a: a.T, lambda a: a.T, [normal((2, 3))]),
    ("permute", lambda a: a.permute(2, 0, 1), lambda a: a.transpose(2, 0, 1), [normal((2, 3, 4))]),
    ("squeeze_unsqueeze", lambda a: a.squeeze(1).unsqueeze(0), lambda a: a[:, 0][None], [normal((3, 1, 2))]),
    ("expand", lambda a: a.expand(2, 3, 4), lambda a: np.broadcast_to(a, (2, 3, 4)), [normal((3, 1))]),
    ("getitem_slice", lambda a: a[1:, ::-2], lambda a: a[1:, ::-2], [normal((3, 5))]),
    ("getitem_int_none_ellipsis", lambda a: a[1, None, ..., 2], lambda a: a[1, None, ..., 2], [normal((3, 4, 5))]),
    ("getitem_repeat", lambda a: a[[0, 2, 0, 0]], lambda a: a[[0, 2, 0, 0]], [normal((3, 4))]),
    ("getitem_two_arrays", lambda a: a[np.array([1, 1, 0]), np.array([2, 2, 3])],
     lambda a: a[np.array([1, 1, 0]), np.array([2, 2, 3])], [normal((3, 4))]),
    ("getitem_mixed", lambda a: a[1:, [3, 3, 0]], lambda a: a[1:, [3, 3, 0]], [normal((3, 4))]),
    ("getitem_bool", lambda a: a[mc.tensor(MASK)], lambda a: a[MASK], [normal((3, 4))]),
    ("getitem_tensor_index", lambda a: a[mc.tensor([2, 2, 1])], lambda a: a[[2, 2, 1]], [normal((3, 2))]),
    ("cat", lambda a, b: mc.cat([a, b, a], dim=1), lambda a, b: np.concatenate([a, b, a], 1),
     [normal((2, 3)), normal((2, 1))]),
    ("stack", lambda a, b: mc.stack([a, b], dim=-1), lambda a, b: np.stack([a, b], -1),
     [normal((2, 3)), normal((2, 3))]),
    ("split", lambda a: mc.split(a, 2, dim=1)[1] * 2, lambda a: a[:, 2:4] * 2, [normal((2, 5))]),
    ("split_sections", lambda a: mc.split(a, [1, 3], dim=0)[1], lambda a: a[1:], [normal((4, 2))]),
    ("chunk_all_used", lambda a: mc.cat(mc.chunk(a, 3, 1)[::-1], 1),
     lambda a: np.concatenate([a[:, 4:], a[:, 2:4], a[:, :2]], 1), [normal((2, 5))]),
    ("pad_constant", lambda a: F.pad(a, (1, 2, 0, 1), value=0.5),
     lambda a: np.pad(a, ((0, 0), (0, 1), (1, 2)), constant_values=0.5), [normal((2, 3, 4))]),
    ("pad_crop", lambda a: F.pad(a, (-1, 2)), lambda a: np.pad(a[:, 1:], ((0, 0), (0, 2))), [normal((2, 4))]),
    ("pad_reflect", lambda a: F.pad(a, (2, 1, 1, 2), mode="reflect"),
     lambda a: np_pad_indexed(a, ((0, 0), (1, 2), (2, 1)), "reflect"), [normal((2, 3, 4))]),
    ("pad_replicate", lambda a: F.pad(a, (3, 1, 2, 0), mode="replicate"),
     lambda a: np_pad_indexed(a, ((0, 0), (2, 0), (3, 1)), "replicate"), [normal((1, 3, 4))]),
    ("pad_circular", lambda a: F.pad(a, (2, 3, 1, 1), mode="circular"),
     lambda a: np_pad_indexed(a, ((0, 0), (1, 1), (2, 3)), "circular"), [normal((1, 3, 4))]),
    ("exp", mc.exp, np.exp, [normal((3, 4))]),
    ("log", mc.log, np.log, [positive((3, 4))]),
    ("sqrt", mc.sqrt, np.sqrt, [positive((3, 4))]),
    ("abs", mc.abs, lambda a: a * np.sign(a.real), [away_from_zero((3, 4))]),
    ("tanh", mc.tanh, np.tanh, [normal((3, 4))]),
    ("sigmoid", mc.sigmoid, sig, [normal((3, 4))]),
    ("relu", mc.relu, lambda a: a * (a.real > 0), [away_from_zero((3, 4))]),
    ("leaky_relu", lambda a: F.leaky_relu(a, 0.2), lambda a: np.where(a.real > 0, a, 0.2 * a),
     [away_from_zero((3, 4))]),
    ("softmax", lambda a: mc.softmax(a, 1), lambda a: np_softmax(a, 1), [normal((3, 4))]),
    ("softmax_dim0", lambda a: a.softmax(0), lambda a: np_softmax(a, 0), [normal((3, 4))]),
    ("log_softmax", lambda a: mc.log_softmax(a, -1), lambda a: np_log_softmax(a, -1), [normal((2, 3, 4))]),
    ("where", lambda a, b: mc.where(mc.tensor(MASK), a, b), lambda a, b: np.where(MASK, a, b),
     [normal((3, 4)), normal((4,))]),
    ("where_scalar", lambda a: mc.where(MASK, a, 0.5), lambda a: np.where(MASK, a, 0.5), [normal((3, 4))]),
    ("clamp", lambda a: mc.clamp(a, -0.5, 0.5), lambda a: np_clamp(a, -0.5, 0.5), [away_from_zero((3, 4))]),
    ("clip_min", lambda a: a.clip(min=0.7), lambda a: np_clamp(a, 0.7, None), [away_from_zero((3, 4))]),
    ("linear", F.linear, lambda x, w, b: x @ w.T + b, [normal((2, 3, 4)), normal((5, 4)), normal((5,))]),
    ("linear_nobias", F.linear, lambda x, w: x @ w.T, [normal((4,)), normal((5, 4))]),
    ("clone", lambda a: a.clone() * a, lambda a: a * a, [normal((3,))]),
    ("cast_round_trip", lambda a: a.to(mc.float64).to(a.dtype) * a, lambda a: a * a, [normal((3,))]),
]
IDS = [c[0] for c in CASES]


def _inputs(case, seed=0):
    rng = np.random.default_rng(seed)
    return [make(rng) for make in case[3]]


def _backward(fn, arrays, dtype, v):
    xs = [mc.tensor(a, dtype=dtype, requires_grad=True) for a in arrays]
    y = fn(*xs)
    y.backward(mc.tensor(v, dtype=y.dtype))
    return y, xs


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_forward_and_gradient_match_numpy_float64(case):
    name, fn, np_fn, _ = case
    arrays = _inputs(case)
    expected = np.asarray(np_fn(*arrays))
    v = np.random.default_rng(1).standard_normal(expected.shape)
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        y, xs = _backward(fn, arrays, np.float64, v)
    assert y.dtype == np.float64 and y.shape == expected.shape
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-13, atol=1e-14)
    for x, g in zip(xs, complex_step_grads(np_fn, arrays, v)):
        assert x.grad.dtype == np.float64 and x.grad.shape == x.shape
        np.testing.assert_allclose(x.grad.numpy(), g, rtol=1e-12, atol=1e-13 * (1 + np.abs(g).max()))


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_gradcheck_float64(case):
    xs = [mc.tensor(a, dtype=mc.float64, requires_grad=True) for a in _inputs(case, seed=2)]
    assert mc.gradcheck(case[1], xs)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_float32_stays_float32(case):
    name, fn, np_fn, _ = case
    arrays = _inputs(case)
    expected = np.asarray(np_fn(*arrays))
    v = np.random.default_rng(1).standard_normal(expected.shape)
    y, xs = _backward(fn, arrays, np.float32, v)
    assert y.dtype == np.float32, f"{name} forward gave {y.dtype}"
    np.testing.assert_allclose(y.numpy(), expected, rtol=2e-5, atol=2e-5)
    _, xs64 = _backward(fn, arrays, np.float64, v)
    for x, x64 in zip(xs, xs64):
        assert x.grad.dtype == np.float32, f"{name} gradient is {x.grad.dtype}"
        np.testing.assert_allclose(x.grad.numpy(), x64.grad.numpy(), rtol=1e-4, atol=1e-4)


# --- broadcasting, drawn by hypothesis ---------------------------------------------------
def _reduce_to(g, shape, out_shape):
    """Sum g (out_shape) back to ``shape`` by counting where each broadcast copy came from."""
    idx = np.broadcast_to(np.arange(int(np.prod(shape))).reshape(shape), out_shape)
    return np.bincount(idx.ravel(), weights=g.ravel(), minlength=int(np.prod(shape))).reshape(shape)


BINARY = {
    "add": (lambda a, b: a + b, lambda a, b, g: (g, g)),
    "sub": (lambda a, b: a - b, lambda a, b, g: (g, -g)),
    "mul": (lambda a, b: a * b, lambda a, b, g: (g * b, g * a)),
    "div": (lambda a, b: a / b, lambda a, b, g: (g / b, -g * a / b ** 2)),
    "pow": (lambda a, b: a ** b, lambda a, b, g: (g * b * a ** (b - 1), g * a ** b * np.log(a))),
    "where": (lambda a, b: mc.where(mc.tensor(np.arange(a.numel()).reshape(a.shape) % 2 == 0), a, b), None),
}


@settings(max_examples=40)
@given(shapes=mutually_broadcastable_shapes(num_shapes=2, max_dims=4, max_side=3),
       op=st.sampled_from(sorted(BINARY)), seed=st.integers(0, 2 ** 16))
def test_broadcasting_binary_ops(shapes, op, seed):
    (sa, sb), out_shape = shapes.input_shapes, shapes.result_shape
    rng = np.random.default_rng(seed)
    a, b = rng.uniform(0.5, 2, sa), rng.uniform(0.5, 2, sb)
    fn, grads = BINARY[op]
    ta, tb = mc.tensor(a, requires_grad=True), mc.tensor(b, requires_grad=True)
    y = fn(ta, tb)
    g = rng.standard_normal(out_shape)
    y.backward(g)
    ab, bb = np.broadcast_to(a, out_shape), np.broadcast_to(b, out_shape)
    if op == "where":
        cond = np.arange(np.prod(sa)).reshape(sa) % 2 == 0
        expected = np.where(cond, ab, bb)
        cb = np.broadcast_to(cond, out_shape)
        ga, gb = np.where(cb, g, 0), np.where(cb, 0, g)
    else:
        expected = fn(ab, bb)
        ga, gb = grads(ab, bb, g)
    assert y.shape == out_shape
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-13)
    np.testing.assert_allclose(ta.grad.numpy(), _reduce_to(ga, sa, out_shape), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(tb.grad.numpy(), _reduce_to(gb, sb, out_shape), rtol=1e-12, atol=1e-12)
    assert ta.grad.dtype == np.float64 and tb.grad.shape == sb


@st.composite
def shape_and_axes(draw):
    shape = draw(st.lists(st.integers(1, 4), min_size=1, max_size=4).map(tuple))
    axes = draw(st.one_of(st.none(), st.integers(-len(shape), len(shape) - 1),
                          st.lists(st.integers(0, len(shape) - 1), min_size=1, unique=True).map(tuple)))
    return shape, axes, draw(st.booleans())


@settings(max_examples=40)
@given(spec=shape_and_axes(), op=st.sampled_from(["sum", "mean", "amax"]), seed=st.integers(0, 2 ** 16))
def test_reductions_over_random_shapes_and_axes(spec, op, seed):
    shape, axes, keep = spec
    rng = np.random.default_rng(seed)
    a = rng.permutation(int(np.prod(shape))).reshape(shape) * 0.5  # distinct: no ties
    x = mc.tensor(a, requires_grad=True)
    y = getattr(mc, op)(x, axes, keepdim=keep)
    np_axes = axes if axes is None or isinstance(axes, tuple) else (axes,)
    expected = getattr(np, op)(a, axis=np_axes, keepdims=keep)
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-13)
    g = rng.standard_normal(expected.shape)
    y.backward(g)
    gk = g.reshape(getattr(np, op)(a, axis=np_axes, keepdims=True).shape)
    if op == "sum":
        want = np.broadcast_to(gk, shape)
    elif op == "mean":
        want = np.broadcast_to(gk, shape) / (a.size / gk.size)
    else:
        want = np.where(a == np.max(a, axis=np_axes, keepdims=True), gk, 0)
    np.testing.assert_allclose(x.grad.numpy(), want, rtol=1e-13)


@settings(max_examples=30)
@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=4).map(tuple), data=st.data())
def test_permute_and_reshape_round_trip(shape, data):
    perm = data.draw(st.permutations(range(len(shape))))
    a = np.random.default_rng(0).standard_normal(shape)
    x = mc.tensor(a, requires_grad=True)
    y = x.permute(*perm).reshape(-1)
    np.testing.assert_array_equal(y.numpy(), a.transpose(perm).reshape(-1))
    g = np.arange(y.shape[0], dtype=float)
    y.backward(g)
    np.testing.assert_array_equal(x.grad.numpy().transpose(perm).reshape(-1), g)


# --- specific semantics --------------------------------------------------------------------
def test_repeated_indices_accumulate():
    x = mc.tensor([1.0, 2.0, 3.0], requires_grad=True)
    x[[0, 0, 2, 0]].sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [3, 0, 1])


def test_amax_ties_share_and_max_dim_picks_first_index():
    x = mc.tensor([[1.0, 3.0, 3.0], [2.0, 0.0, 2.0]], requires_grad=True)
    mc.amax(x, 1).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[0, 0.5, 0.5], [0.5, 0, 0.5]])
    x.grad = None
    values, indices = x.max(1)
    np.testing.assert_array_equal(indices.numpy(), [1, 0])
    assert indices.dtype == np.int64 and not indices.requires_grad
    values.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[0, 1, 0], [1, 0, 0]])


def test_max_without_dim_reduces_everything():
    x = mc.tensor([[1.0, 5.0], [7.0, 2.0]])
    assert x.max().item() == 7.0 and x.min().item() == 1.0
    assert mc.argmax(x).item() == 2 and mc.argmin(x, 1).tolist() == [0, 1]


def test_kinks_follow_pytorch_conventions():
    x = mc.tensor([-1.0, 0.0, 2.0], dtype=mc.float64, requires_grad=True)
    (x.relu() + x.abs() + x.clamp(0.0, 2.0)).sum().backward()
    # relu'(0) = 0, abs'(0) = 0, clamp passes the gradient at both (inclusive) bounds
    np.testing.assert_array_equal(x.grad.numpy(), [-1 + 0, 0 + 0 + 1, 1 + 1 + 1])
    y = mc.tensor([0.0, 2.0], dtype=mc.float64, requires_grad=True)
    (y ** 0).sum().backward()
    np.testing.assert_array_equal(y.grad.numpy(), [0, 0])


def test_pow_with_zero_base_has_finite_exponent_gradient():
    a = mc.tensor([0.0, 2.0], dtype=mc.float64, requires_grad=True)
    b = mc.tensor([2.0, 3.0], dtype=mc.float64, requires_grad=True)
    (a ** b).sum().backward()
    np.testing.assert_allclose(b.grad.numpy(), [0.0, 8 * np.log(2)])
    np.testing.assert_allclose(a.grad.numpy(), [0.0, 12.0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_family_is_stable_at_plus_minus_1000(dtype):
    a = np.array([[1000.0, -1000.0, 0.0], [-1000.0, -1000.0, -999.0]])
    x = mc.tensor(a, dtype=dtype, requires_grad=True)
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        s, ls, sg = mc.softmax(x, 1), mc.log_softmax(x, 1), mc.sigmoid(x)
        (s.sum() + ls[:, 0].sum() + sg.sum() + mc.tanh(x).sum()).backward()
    for t in (s, ls, sg, x.grad):
        assert np.isfinite(t.numpy()).all() and t.dtype == dtype
    np.testing.assert_allclose(s.numpy(), [[1, 0, 0], [np.exp(-1) / (2 * np.exp(-1) + 1)] * 2 + [1 / (2 * np.exp(-1) + 1)]],
                               rtol=1e-6)
    np.testing.assert_allclose(ls.numpy()[0], [0, -2000, -1000], rtol=1e-6)
    np.testing.assert_array_equal(sg.numpy()[0], [1, 0, 0.5])


def test_split_returns_views_and_unused_pieces_get_zero_gradient():
    x = mc.tensor(np.arange(6.0), requires_grad=True)
    a, b, c = mc.split(x, 2)
    (b * 3).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0, 0, 3, 3, 0, 0])
    assert [p.shape for p in mc.split(mc.zeros(5), 2)] == [(2,), (2,), (1,)]
    assert [p.shape for p in mc.chunk(mc.zeros(5, 2), 2)] == [(3, 2), (2, 2)]


def test_cast_is_differentiable_and_gives_the_gradient_back_in_the_input_dtype():
    x = mc.tensor([1.5, -2.0], requires_grad=True)
    y = x.double()
    assert y.dtype == np.float64 and x.to(mc.float32) is x
    (y * y).sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, -4.0])


def test_cat_of_mixed_dtypes_gives_each_input_its_own_dtype():
    a = mc.tensor([1.0], dtype=mc.float32, requires_grad=True)
    b = mc.tensor([2.0], dtype=mc.float64, requires_grad=True)
    y = mc.cat([a, b])
    assert y.dtype == np.float64
    y.sum().backward()
    assert a.grad.dtype == np.float32 and b.grad.dtype == np.float64


def test_relu_keeps_only_its_output_for_backward():
    x = mc.tensor([-1.0, 2.0], requires_grad=True)
    y = x.relu()
    fn = y._creator
    assert set(k for k, v in vars(fn).items() if isinstance(v, np.ndarray)) == {"y"}
    assert fn.y is y.array


def test_mul_by_constant_saves_only_the_constant():
    x = mc.tensor([1.0, 2.0], requires_grad=True)
    y = x * mc.tensor([3.0, 4.0])
    assert y._creator.a is None and y._creator.b is not None


# --- bad input -------------------------------------------------------------------------------
@pytest.mark.parametrize("op,fn", [
    ("add", lambda a, b: a + b), ("sub", lambda a, b: a - b), ("mul", lambda a, b: a * b),
    ("div", lambda a, b: a / b), ("pow", lambda a, b: a ** b),
    ("where", lambda a, b: mc.where(mc.ones(2, 3) > 0, a, b)),
])
def test_broadcast_mismatch_names_op_and_shapes(op, fn):
    a, b = mc.ones(2, 3), mc.ones(4)
    with pytest.raises(ValueError, match=rf"{op}: shapes .*\(2, 3\).* and \(4,\) cannot be broadcast"):
        fn(a, b)


def test_matmul_mismatches_name_both_shapes():
    with pytest.raises(ValueError, match=r"matmul: shapes \(2, 3\) and \(4, 5\) do not align"):
        mc.ones(2, 3) @ mc.ones(4, 5)
    with pytest.raises(ValueError, match=r"matmul: the batch dimensions of shapes \(2, 2, 3\) and \(3, 3, 4\)"):
        mc.ones(2, 2, 3) @ mc.ones(3, 3, 4)
    with pytest.raises(ValueError, match=r"matmul: both operands need at least 1 dimension"):
        mc.matmul(mc.ones(3), mc.tensor(2.0))


def test_linear_mismatch_names_shapes():
    with pytest.raises(ValueError, match=r"linear: input of shape \(2, 3\) does not fit weight of shape \(4, 5\)"):
        F.linear(mc.ones(2, 3), mc.ones(4, 5))
    with pytest.raises(ValueError, match=r"linear: bias of shape \(3,\)"):
        F.linear(mc.ones(2, 5), mc.ones(4, 5), mc.ones(3))


@pytest.mark.parametrize("call,err,pattern", [
    (lambda x: x.reshape(4, 4), ValueError, r"reshape: cannot view a tensor of shape \(2, 3\)"),
    (lambda x: x[5], IndexError, r"getitem: cannot index a tensor of shape \(2, 3\)"),
    (lambda x: x[mc.tensor([0.5])], IndexError, r"getitem: .*float"),
    (lambda x: mc.cat([x, mc.ones(3, 2)]), ValueError, r"cat: tensor 1 has shape \(3, 2\)"),
    (lambda x: mc.stack([x, mc.ones(3)]), ValueError, r"stack: all tensors need the same shape"),
    (lambda x: mc.split(x, [1, 1], 1), ValueError, r"split: sections \[1, 1\] do not add up to size 3"),
    (lambda x: F.pad(x, (3, 0), mode="reflect"), ValueError, r"pad: reflect padding \(3, 0\)"),
    (lambda x: F.pad(x, (1,)), ValueError, r"pad: padding \(1,\) must have an even length"),
    (lambda x: F.pad(x, (1, 1), mode="wrap"), ValueError, r"pad: unknown mode 'wrap'"),
    (lambda x: x.sum(2), IndexError, r"sum: dim 2 is out of range for a tensor with 2 dimensions"),
    (lambda x: x.sum(x), TypeError, r"sum: dim must be an int or a tuple of ints"),
    (lambda x: mc.softmax(x, None), TypeError, r"softmax: dim must be given"),
    (lambda x: x.clamp(), ValueError, r"clamp: at least one of min and max"),
    (lambda x: x.expand(3, 3), ValueError, r"expand: cannot expand shape \(2, 3\) to \(3, 3\)"),
    (lambda x: x.permute(0, 0), ValueError, r"permute: \(0, 0\) is not a permutation"),
    (lambda x: x + "a", TypeError, r"Add: data of dtype <U1 \(str\) is not numeric"),
    (lambda x: x * None, TypeError, r"Mul: data of dtype object \(NoneType\) is not numeric"),
    (lambda x: mc.where(x, x, x), TypeError, r"where: condition must be boolean"),
    (lambda x: mc.max(mc.zeros(0)), ValueError, r"max: cannot reduce an empty tensor of shape \(0,\)"),
])
def test_bad_input_raises_a_clear_error(call, err, pattern):
    with pytest.raises(err, match=pattern):
        call(mc.ones(2, 3))
