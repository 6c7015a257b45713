"""The autograd engine: graph semantics (accumulation, no_grad, detach, retain_graph,
retain_grad, leaves), memory (what is kept, what is freed), errors, and agreement with an
independent reference -- complex-step differentiation of a plain NumPy interpreter -- on
random expression graphs drawn by hypothesis."""
import gc
import weakref

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minicnn as mc
import minicnn.nn as nn
from minicnn.autograd import Function

H = 1e-30  # complex step


# --- accumulation and graph order -----------------------------------------------------
def test_tensor_used_twice_accumulates():
    x = mc.tensor([1.0, -2.0, 3.0], dtype=mc.float64, requires_grad=True)
    (x * x + x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), 2 * x.numpy() + 1)


def test_shared_subgraph_is_finished_before_it_is_back_propagated():
    # c feeds a both directly and through b: c's node must wait for both consumers
    x = mc.tensor([1.0, 2.0], requires_grad=True)
    c = x * 2
    b = c * 3
    a = c + b
    a.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [8.0, 8.0])


def test_deep_chain_does_not_hit_the_recursion_limit():
    x = mc.tensor(1.0, dtype=mc.float64, requires_grad=True)
    y = x
    for _ in range(5000):
        y = y * 1.0001
    y.backward()
    assert x.grad.item() == pytest.approx(1.0001 ** 5000, rel=1e-10)


def test_gradients_accumulate_across_backward_calls_until_reset():
    x = mc.tensor([1.0, 2.0], requires_grad=True)
    (x * 3).sum().backward()
    (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [3 + 2, 3 + 4])
    x.grad = None
    (x * 3).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [3, 3])


def test_leaf_gradients_never_share_memory():
    a = mc.tensor([1.0, 2.0], requires_grad=True)
    b = mc.tensor([3.0, 4.0], requires_grad=True)
    seed = np.array([1.0, 1.0], dtype=np.float32)
    (a + b).backward(seed)
    assert not np.shares_memory(a.grad.array, b.grad.array)
    assert not np.shares_memory(a.grad.array, seed)
    c = mc.tensor([[1.0, 2.0]], requires_grad=True)
    c.sum().backward()  # Sum's backward hands out a read-only broadcast view
    assert c.grad.array.flags.writeable and c.grad.array.flags.c_contiguous
    a.grad.array[0] = 99.0  # in-place changes to one .grad leave the others alone
    assert b.grad.numpy()[0] == 1.0 and seed[0] == 1.0


def test_backward_on_a_leaf_stores_a_copy_of_the_seed():
    x = mc.tensor([1.0, 2.0], requires_grad=True)
    g = mc.tensor([5.0, 6.0])
    x.backward(g)
    np.testing.assert_array_equal(x.grad.numpy(), [5, 6])
    assert not np.shares_memory(x.grad.array, g.array)


# --- graph modes ----------------------------------------------------------------------
def test_no_grad_records_nothing_and_enable_grad_restores():
    x = mc.tensor([1.0], requires_grad=True)
    with mc.no_grad():
        y = x * 2
        assert not mc.is_grad_enabled()
        with mc.enable_grad():
            z = x * 2
    assert mc.is_grad_enabled()
    assert not y.requires_grad and y.is_leaf and y._creator is None
    assert z.requires_grad and not z.is_leaf
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.backward()


def test_no_grad_works_as_a_decorator():
    @mc.no_grad()
    def f(t):
        return t * 2

    assert not f(mc.tensor([1.0], requires_grad=True)).requires_grad
    assert mc.is_grad_enabled()


def test_detach_shares_data_and_stops_the_gradient():
    x = mc.tensor([1.0, 2.0], requires_grad=True)
    d = (x * 2).detach()
    assert not d.requires_grad and d.is_leaf
    y = x * d  # d is a constant here
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 4.0])
    e = x.detach()
    assert np.shares_memory(e.array, x.array)


def test_backward_twice_raises_unless_retain_graph():
    x = mc.tensor([1.0, 2.0], requires_grad=True)
    y = (x.exp() * x).sum()
    y.backward(retain_graph=True)
    first = x.grad.numpy().copy()
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * first)
    with pytest.raises(RuntimeError, match=r"already been freed \(at .*\).*retain_graph=True"):
        y.backward()


def test_a_freed_shared_subgraph_raises_for_the_second_output():
    x = mc.tensor([1.0], requires_grad=True)
    h = x.exp()
    a, b = h * 2, h * 3
    a.backward()
    with pytest.raises(RuntimeError, match="already been freed"):
        b.backward()


def test_retain_grad_and_leaf_versus_non_leaf():
    x = mc.tensor([1.0, 2.0], requires_grad=True)
    h = x * 3
    h.retain_grad()
    k = x * 4  # not retained
    y = (h * h + k).sum()
    y.retain_grad()
    y.backward()
    assert x.is_leaf and not h.is_leaf
    np.testing.assert_array_equal(h.grad.numpy(), 2 * h.numpy())
    np.testing.assert_array_equal(x.grad.numpy(), 3 * 2 * h.numpy() + 4)
    assert k.grad is None and y.grad.item() == 1.0
    assert not np.shares_memory(h.grad.array, x.grad.array)


def test_requires_grad_rules():
    with pytest.raises(TypeError, match="only floating point tensors can require gradients"):
        mc.tensor([1, 2], requires_grad=True)
    x = mc.tensor([1.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf"):
        (x * 2).requires_grad = False
    c = mc.tensor([1.0]).requires_grad_()
    assert c.requires_grad and c.is_leaf
    y = x * mc.tensor([2.0])  # requires grad because x does
    assert y.requires_grad
    assert not (mc.tensor([1.0]) * 2).requires_grad


def test_integer_outputs_never_require_grad():
    x = mc.tensor([[1.0, 3.0]], requires_grad=True)
    assert not x.max(1).indices.requires_grad
    assert not x.to(mc.int64).requires_grad


# --- memory: the graph keeps only what backward needs and frees it ----------------------
def test_nodes_are_freed_right_after_their_backward():
    x = mc.tensor([1.0, 2.0], requires_grad=True)
    h = x.exp()
    y = (h * 2).sum()
    nodes = [h._creator, y._creator]
    y.backward()
    for fn in nodes:
        assert vars(fn) == {"_freed": True}


def test_intermediates_that_backward_does_not_need_are_not_kept_alive():
    x = mc.tensor(np.ones(1000, np.float32), requires_grad=True)
    h = x + 1  # Add keeps nothing; Mul by a constant keeps only the constant
    ref = weakref.ref(h.array)
    y = (h * 2.0).sum()
    del h
    gc.collect()
    assert ref() is None, "an intermediate array was kept by the graph"
    y.backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.full(1000, 2.0))


def test_saved_arrays_are_released_by_backward():
    x = mc.tensor(np.ones(1000, np.float32), requires_grad=True)
    h = x.exp()  # Exp keeps its output for backward
    ref = weakref.ref(h.array)
    y = h.sum()
    del h
    gc.collect()
    assert ref() is not None
    y.backward()
    gc.collect()
    assert ref() is None


# --- errors ---------------------------------------------------------------------------------
def test_backward_of_non_scalar_needs_a_gradient():
    x = mc.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"only for scalar outputs, but this tensor has shape \(2,\)"):
        (x * 2).backward()
    with pytest.raises(RuntimeError, match=r"grad has shape \(3,\) but the tensor has shape \(2,\)"):
        (x * 2).backward(mc.ones(3))


class _FakeCuda(mc.Tensor):
    device = property(lambda self: "cuda")


def test_mixing_devices_is_refused_before_computing():
    a = mc.tensor([1.0, 2.0])
    b = _FakeCuda(np.array([1.0, 2.0], np.float32))
    with pytest.raises(RuntimeError, match=r"Add: inputs are on different devices \(cpu, cuda\)"):
        a + b


@pytest.mark.parametrize("data,pattern", [
    ("abc", r"tensor\(\): data of dtype <U3 \(str\) is not numeric"),
    ([1.0, "a"], r"is not numeric"),
    (object(), r"data of dtype object \(object\) is not numeric"),
    ([[1.0, 2.0], [3.0]], r"tensor\(\): cannot build a tensor from list"),
    (1 + 2j, r"dtype complex128 \(complex\) is not numeric"),
])
def test_non_numeric_data_is_refused(data, pattern):
    with pytest.raises(TypeError, match=pattern):
        mc.tensor(data)


class _WrongShape(Function):
    def forward(self, x):
        return x * 2

    def backward(self, gy):
        return gy.sum(0)


class _WrongDtype(Function):
    def forward(self, x):
        return x * 2

    def backward(self, gy):
        return (gy * 2).astype(np.float64)


class _WrongCount(Function):
    def forward(self, x):
        return x * 2

    def backward(self, gy):
        return gy, gy


@pytest.mark.parametrize("cls,pattern", [
    (_WrongShape, r"_WrongShape.backward produced a gradient of shape \(3,\) and dtype float32 for an input "
                  r"of shape \(2, 3\)"),
    (_WrongDtype, r"_WrongDtype.backward produced a gradient .* dtype float64 for an input .* dtype float32"),
    (_WrongCount, r"_WrongCount.backward returned 2 gradients for 1 inputs"),
])
def test_engine_catches_broken_functions(cls, pattern):
    x = mc.ones(2, 3, requires_grad=True)
    with pytest.raises(RuntimeError, match=pattern):
        cls().apply(x).sum().backward()


# --- tensors and dtypes ---------------------------------------------------------------------
def test_default_dtypes_and_float64_end_to_end():
    assert mc.tensor([1.0]).dtype == np.float32 and mc.tensor(2.5).dtype == np.float32
    assert mc.tensor([1, 2]).dtype == np.int64 and mc.tensor(np.ones(2)).dtype == np.float64
    assert mc.randn(2).dtype == np.float32 and mc.zeros(2, dtype=mc.float64).dtype == np.float64
    x = mc.tensor([0.5, 1.5], dtype=mc.float64, requires_grad=True)
    y = (mc.softmax(x * 2 + 1, 0) ** 2 / 3).sum()
    y.backward()
    assert y.dtype == np.float64 and x.grad.dtype == np.float64
    f = mc.tensor([0.5, 1.5], requires_grad=True)
    z = (mc.softmax(f * 2 + 1, 0) ** 2 / 3 - 0.5).mean() + np.float64(1.0)
    z.backward()
    assert z.dtype == np.float32 and f.grad.dtype == np.float32


def test_tensor_copies_and_from_numpy_shares():
    a = np.ones(3, np.float32)
    t, s = mc.tensor(a), mc.from_numpy(a)
    a[0] = 5
    assert t.numpy()[0] == 1 and s.numpy()[0] == 5


def test_numpy_interoperability():
    x = mc.tensor([1.0, 2.0])
    y = np.array([3.0, 4.0], np.float32) * x
    assert isinstance(y, mc.Tensor) and y.tolist() == [3.0, 8.0]
    assert np.asarray(x).tolist() == [1.0, 2.0]
    with pytest.raises(TypeError):
        np.exp(x)
    assert f"{x.sum():.2f}" == "3.00"
    assert [t.item() for t in x] == [1.0, 2.0]


def test_manual_seed_repeats_every_random_source():
    mc.manual_seed(3)
    a, lin_a = mc.randn(4).numpy(), nn.Linear(3, 2).weight.numpy()
    mc.manual_seed(3)
    b, lin_b = mc.randn(4).numpy(), nn.Linear(3, 2).weight.numpy()
    mc.manual_seed(4)
    c = mc.randn(4).numpy()
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(lin_a, lin_b)
    assert not np.array_equal(a, c)


# --- random expression graphs against complex-step differentiation -------------------------
INPUT_SHAPES = [(3, 4), (4,), (3, 1), (2, 3, 4)]


def sig(z):
    return 1 / (1 + np.exp(-z))


def np_softmax(z, axis):
    e = np.exp(z - z.real.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def np_max(z, axis, keep):
    out = np.take_along_axis(z, z.real.argmax(axis=axis, keepdims=True), axis)
    return out if keep else out.squeeze(axis)


def _mask(shape, p):
    return np.random.default_rng(p).random(shape) > 0.5


# op -> (NumPy version on complex or real arrays, minicnn version); p is the op's parameter
OPS = {
    "exp": (lambda a, p: np.exp(a), lambda a, p: a.exp()),
    "tanh": (lambda a, p: np.tanh(a), lambda a, p: mc.tanh(a)),
    "sigmoid": (lambda a, p: sig(a), lambda a, p: a.sigmoid()),
    "neg": (lambda a, p: -a, lambda a, p: -a),
    "square": (lambda a, p: a ** 2, lambda a, p: a ** 2),
    "relu": (lambda a, p: a * (a.real > 0), lambda a, p: a.relu()),
    "log": (lambda a, p: np.log(a), lambda a, p: a.log()),
    "sqrt": (lambda a, p: np.sqrt(a), lambda a, p: a.sqrt()),
    "pow_frac": (lambda a, p: a ** -1.5, lambda a, p: a ** -1.5),
    "sum": (lambda a, p: a.sum(axis=p[0], keepdims=p[1]), lambda a, p: a.sum(p[0], keepdim=p[1])),
    "mean": (lambda a, p: a.mean(axis=p[0], keepdims=p[1]), lambda a, p: a.mean(p[0], keepdim=p[1])),
    "max": (lambda a, p: np_max(a, *p), lambda a, p: a.max(p[0], keepdim=p[1]).values),
    "softmax": (lambda a, p: np_softmax(a, p), lambda a, p: mc.softmax(a, p)),
    "log_softmax": (lambda a, p: np.log(np_softmax(a, p)), lambda a, p: mc.log_softmax(a, p)),
    "reshape": (lambda a, p: a.reshape(p), lambda a, p: a.reshape(p)),
    "transpose": (lambda a, p: a.swapaxes(-1, -2), lambda a, p: a.transpose(-1, -2)),
    "permute": (lambda a, p: a.transpose(p), lambda a, p: a.permute(*p)),
    "index": (lambda a, p: a[p], lambda a, p: a[p]),
    "slice": (lambda a, p: a[..., p], lambda a, p: a[..., p]),
    "where": (lambda a, p: np.where(_mask(a.shape, p), a, 0.5), lambda a, p: mc.where(_mask(a.shape, p), a, 0.5)),
    "add": (lambda a, b, p: a + b, lambda a, b, p: a + b),
    "sub": (lambda a, b, p: a - b, lambda a, b, p: a - b),
    "mul": (lambda a, b, p: a * b, lambda a, b, p: a * b),
    "div": (lambda a, b, p: a / b, lambda a, b, p: a / b),
    "pow": (lambda a, b, p: a ** b, lambda a, b, p: a ** b),
    "matmul": (lambda a, b, p: a @ b, lambda a, b, p: a @ b),
    "cat": (lambda a, b, p: np.concatenate([a, b], 0), lambda a, b, p: mc.cat([a, b], 0)),
}
UNARY = [k for k, (f, _) in OPS.items() if f.__code__.co_argcount == 2]
BINARY = [k for k in OPS if k not in UNARY]


def _positive(v):
    return v.min() > 0.2 and v.max() < 50  # a safe argument for log, sqrt, x^-1.5, a divisor, a base


def _broadcastable(a, b):
    try:
        np.broadcast_shapes(a, b)
        return True
    except ValueError:
        return False


def _matmul_ok(a, b):
    if a.ndim == 0 or b.ndim == 0 or a.shape[-1] != (b.shape[0] if b.ndim == 1 else b.shape[-2]):
        return False
    return _broadcastable(a.shape[:-2], b.shape[:-2])


def _candidates(op, values):
    """Argument tuples (node indices) that ``op`` accepts, judged from the real values."""
    idx = range(len(values))
    if op in ("log", "sqrt", "pow_frac"):
        return [(i,) for i in idx if _positive(values[i])]
    if op in ("transpose",):
        return [(i,) for i in idx if values[i].ndim >= 2]
    if op == "permute":
        return [(i,) for i in idx if values[i].ndim == 3]
    if op in ("max", "softmax", "log_softmax", "index", "slice"):
        return [(i,) for i in idx if values[i].ndim >= 1]
    if op in UNARY:
        return [(i,) for i in idx]
    pairs = [(i, j) for i in idx for j in idx]
    if op in ("add", "sub", "mul"):
        return [(i, j) for i, j in pairs if _broadcastable(values[i].shape, values[j].shape)]
    if op == "div":
        return [(i, j) for i, j in pairs if _broadcastable(values[i].shape, values[j].shape) and _positive(values[j])]
    if op == "pow":
        return [(i, j) for i, j in pairs if _broadcastable(values[i].shape, values[j].shape)
                and _positive(values[i]) and np.abs(values[j]).max() < 3]
    if op == "matmul":
        return [(i, j) for i, j in pairs if _matmul_ok(values[i], values[j])]
    if op == "cat":
        return [(i, j) for i, j in pairs if values[i].ndim >= 1 and values[i].shape[1:] == values[j].shape[1:]
                and values[j].ndim >= 1]
    raise AssertionError(op)


def _param(draw, op, v):
    if op in ("sum", "mean"):
        return draw(st.sampled_from([None] + list(range(v.ndim)))), draw(st.booleans())
    if op == "max":
        return draw(st.integers(0, v.ndim - 1)), draw(st.booleans())
    if op in ("softmax", "log_softmax"):
        return draw(st.integers(-v.ndim, v.ndim - 1))
    if op == "reshape":
        n = v.size
        return draw(st.sampled_from([(n,), v.shape[::-1]] + [(n // k, k) for k in range(1, n + 1) if n % k == 0]))
    if op == "permute":
        return tuple(draw(st.permutations([0, 1, 2])))
    if op == "index":  # an integer array along the first axis, repeats included
        return np.array(draw(st.lists(st.integers(0, v.shape[0] - 1), min_size=1, max_size=5)))
    if op == "slice":
        return draw(st.sampled_from([slice(1, None), slice(None, None, -1), slice(None, None, 2)]))
    if op == "where":
        return draw(st.integers(0, 100))
    return None


def _evaluate(nodes, inputs, fns):
    """Run the DAG: ``fns`` picks the NumPy (0) or minicnn (1) version of every op."""
    values = list(inputs)
    for op, args, p in nodes:
        values.append(OPS[op][fns](*[values[i] for i in args], p))
    return values


@st.composite
def expression_graphs(draw):
    """A small DAG of ops over the inputs; any earlier node (input or intermediate) may be
    an argument, so nodes are reused, also twice by the same op."""
    seed = draw(st.integers(0, 2 ** 16))
    rng = np.random.default_rng(seed)
    inputs = [rng.uniform(-1.5, 1.5, s) for s in INPUT_SHAPES]
    values, nodes = list(inputs), []
    for _ in range(draw(st.integers(4, 12))):
        op = draw(st.sampled_from(sorted(OPS)))
        # newest nodes first: hypothesis favours early choices, so graphs grow deep and reuse nodes
        cands = sorted(_candidates(op, values), key=lambda a: [-i for i in a])
        if not cands:
            continue
        args = draw(st.sampled_from(cands))
        p = _param(draw, op, values[args[0]])
        with np.errstate(all="ignore"):
            v = np.asarray(OPS[op][0](*[values[i] for i in args], p))
        if v.size == 0 or v.size > 200 or not np.isfinite(v).all() or np.abs(v).max() > 1e4:
            continue  # keep the graph well conditioned
        values.append(v)
        nodes.append((op, args, p))
    weights = [rng.standard_normal(v.shape) for v in values[len(inputs):]]
    return inputs, nodes, weights


def _loss_np(nodes, inputs, weights):
    values = _evaluate(nodes, inputs, 0)[len(inputs):]
    return sum((v * w).sum() for v, w in zip(values, weights))


@settings(max_examples=80)
@given(graph=expression_graphs())
def test_engine_matches_complex_step_on_random_expression_graphs(graph):
    inputs, nodes, weights = graph
    # the reference: Im L(x + i h e_j) / h, exact to rounding for analytic ops (no subtraction)
    expected = []
    for k, a in enumerate(inputs):
        g = np.zeros(a.shape)
        for j in range(a.size):
            z = [x.astype(complex) for x in inputs]
            z[k].reshape(-1)[j] += 1j * H
            g.reshape(-1)[j] = _loss_np(nodes, z, weights).imag / H
        expected.append(g)
    # minicnn: every node contributes sum(node * w) to the loss, so every path is exercised
    xs = [mc.tensor(a, requires_grad=True) for a in inputs]
    values = _evaluate(nodes, xs, 1)
    loss = mc.tensor(0.0, dtype=mc.float64)
    for v, w, ref in zip(values[len(inputs):], weights, _evaluate(nodes, inputs, 0)[len(inputs):]):
        np.testing.assert_allclose(v.numpy(), ref, rtol=1e-12, atol=1e-12)
        loss = loss + (v * mc.tensor(w)).sum()
    if not nodes:
        return
    loss.backward()
    for x, g in zip(xs, expected):
        got = np.zeros(x.shape) if x.grad is None else x.grad.numpy()
        scale = 1 + np.abs(g).max()
        np.testing.assert_allclose(got, g, rtol=1e-12, atol=1e-13 * scale)
