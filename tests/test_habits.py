"""PyTorch's habits that classic scripts rely on (issue 15)."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minicnn as torch  # as the scripts write it
from minicnn.utils.data import DataLoader, TensorDataset, random_split


def test_device_and_cuda_availability_read_as_in_pytorch():
    device = torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    assert device.type in ("cpu", "cuda") and isinstance(device, str)
    cuda = torch.device("cuda", 1)
    assert (cuda.type, cuda.index, str(cuda), repr(cuda)) == ("cuda", 1, "cuda:1", "device(type='cuda', index=1)")
    assert torch.zeros(2).to(torch.device("cpu")).device == "cpu"
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        torch.device("tpu")


def test_generator_seeds_random_split_and_the_loader():
    data = TensorDataset(torch.tensor(np.arange(10.0)), torch.tensor(np.arange(10)))
    first = random_split(data, [7, 3], generator=torch.Generator().manual_seed(42))
    again = random_split(data, [7, 3], generator=torch.Generator().manual_seed(42))
    assert [list(s.indices) for s in first] == [list(s.indices) for s in again]
    assert sorted(list(first[0].indices) + list(first[1].indices)) == list(range(10))
    g = torch.Generator().manual_seed(3)
    assert g.initial_seed() == 3
    order = [b[1].numpy().tolist() for b in DataLoader(data, 5, shuffle=True, generator=torch.Generator().manual_seed(1))]
    assert order == [b[1].numpy().tolist()
                     for b in DataLoader(data, 5, shuffle=True, generator=torch.Generator().manual_seed(1))]


def test_data_loader_accepts_workers_and_pinned_memory():
    data = TensorDataset(torch.tensor(np.arange(6.0)))
    loader = DataLoader(data, batch_size=2, num_workers=2, pin_memory=True, persistent_workers=False)
    assert [b[0].numpy().tolist() for b in loader] == [[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]]
    with pytest.raises(TypeError, match="unexpected argument.*bogus"):
        DataLoader(data, bogus=1)
    with pytest.raises(ValueError, match="num_workers must be a non-negative integer"):
        DataLoader(data, num_workers=-1)


def test_an_integer_tensor_indexes_a_list():
    classes = ("plane", "car", "bird")
    labels = torch.tensor(np.array([2, 0]))
    assert classes[labels[0]] == "bird" and classes[labels[1]] == "plane"
    with pytest.raises(TypeError, match="only integer tensors of a single element"):
        classes[torch.tensor(np.array([1.0]))[0]]


def test_tensor_methods_of_pytorch_scripts():
    x = torch.tensor(np.array([1.0, np.nan, np.inf, -2.0]))
    assert x.isnan().numpy().tolist() == [False, True, False, False]
    assert torch.isinf(x).numpy().tolist() == [False, False, True, False]
    assert torch.isfinite(x).any().item() and not x.isfinite().all().item()
    y = torch.tensor(np.array([1.0, 2.0, 3.0]))
    assert [y.eq(2).numpy().tolist(), y.ne(2).numpy().tolist(), y.lt(2).numpy().tolist(), y.ge(2).numpy().tolist()] \
        == [[False, True, False], [True, False, True], [True, False, False], [False, True, True]]
    assert y.int().dtype == np.int32 and y.bool().numpy().all() and y.long().dtype == np.int64
    assert y.std().item() == pytest.approx(1.0) and y.std(unbiased=False).item() == pytest.approx(np.std([1, 2, 3]))
    assert torch.randn(2, 3).view_as(torch.zeros(3, 2)).shape == (3, 2)


def test_in_place_updates_on_data_outside_autograd():
    w = torch.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="add_: in-place change of a tensor that requires grad"):
        w.add_(1)
    with torch.no_grad():
        w.sub_(torch.tensor(np.array([1.0, 2.0, 4.0], np.float32)), alpha=0.5)
        assert w.numpy().tolist() == [0.5, 0.0, -1.0] and w.dtype == np.float32
        w.mul_(2).clamp_(-1.5, 0.5)
        assert w.numpy().tolist() == [0.5, 0.0, -1.5]
        w.copy_(torch.tensor(np.array([7.0, 8.0, 9.0]))).div_(2)
        assert w.numpy().tolist() == [3.5, 4.0, 4.5] and w.fill_(0).numpy().tolist() == [0.0, 0.0, 0.0]


def test_data_is_a_tensor_sharing_storage_without_history():
    f = torch.nn.Linear(3, 2)
    x = torch.randn(4, 3)
    f(x).sum().backward()
    before = f.weight.numpy().copy()
    for p in f.parameters():
        p.data.sub_(p.grad.data * 0.5)  # the tutorial's manual SGD step
    np.testing.assert_allclose(f.weight.numpy(), before - 0.5 * f.weight.grad.numpy())
    d = f.weight.data
    assert isinstance(d, torch.Tensor) and not d.requires_grad and d.grad_fn is None
    assert d.array is f.weight.array  # shared: the array behind both is one
    out = f(x)
    _, predicted = torch.max(out.data, 1)
    assert predicted.tolist() == out.numpy().argmax(1).tolist() and out.data.cpu().shape == (4, 2)
    f.weight.data = torch.zeros(2, 3)
    assert f.weight.numpy().tolist() == [[0.0] * 3] * 2 and f.weight.requires_grad


class ScaledReLU(torch.autograd.Function):
    """A custom op written as PyTorch's tutorial writes one."""

    @staticmethod
    def forward(ctx, input, scale):
        ctx.save_for_backward(input)
        ctx.scale = scale
        return input.clamp(min=0) * scale

    @staticmethod
    def backward(ctx, grad_output):
        input, = ctx.saved_tensors
        assert ctx.needs_input_grad == (True, False)
        grad_input = grad_output.clone()
        grad_input[input < 0] = 0
        return grad_input * ctx.scale, None


def test_pytorch_style_custom_function_and_grad_fn():
    x = torch.tensor(np.array([-1.0, 0.5, 2.0]), requires_grad=True)
    y = ScaledReLU.apply(x, 3.0)
    assert y.tolist() == [0.0, 1.5, 6.0] and y.grad_fn.name == "ScaledReLU"
    (node, k), = y.grad_fn.next_functions
    assert node.name == "AccumulateGrad" and node.variable is x and k == 0
    y.sum().backward()
    assert x.grad.tolist() == [0.0, 3.0, 3.0]
    assert torch.gradcheck(lambda a: ScaledReLU.apply(a, 2.0), [torch.tensor(np.array([-0.7, 0.3]), requires_grad=True)])
    z = (x * 2).sum()
    assert z.grad_fn.name == "Sum" and z.grad_fn.next_functions[0][0].name == "Mul"
    assert z.grad_fn.next_functions[0][0].next_functions[1] == (None, 0)  # the constant 2
    assert x.grad_fn is None and torch.ones(2).grad_fn is None
    with pytest.raises(TypeError, match="ReLU.apply: call it on an instance"):
        from minicnn.ops.activation import ReLU
        ReLU.apply(x)  # minicnn's style needs an instance


def test_creation_grad_modes_one_hot_and_memory_formats():
    import minicnn.nn as nn
    import minicnn.nn.functional as F

    assert torch.eye(3).numpy().tolist() == np.eye(3).tolist() and torch.empty(2, 4).shape == (2, 4)
    torch.manual_seed(0)
    like = torch.randn_like(torch.zeros(2, 3, dtype=torch.float64))
    assert like.shape == (2, 3) and like.dtype == np.float64 and torch.rand_like(like).numpy().max() < 1
    with torch.set_grad_enabled(False):
        assert not torch.is_grad_enabled()
    with torch.inference_mode():
        assert not (torch.ones(2, requires_grad=True) * 2).requires_grad
    assert torch.is_grad_enabled()
    assert F.one_hot(torch.tensor(np.array([[0, 2], [1, 1]])), 3).numpy().tolist() == \
        [[[1, 0, 0], [0, 0, 1]], [[0, 1, 0], [0, 1, 0]]]
    assert F.one_hot(torch.tensor(np.array([3]))).shape == (1, 4)
    with pytest.raises(ValueError, match=r"class indices must lie in \[0, 2\), got values from 0 to 3"):
        F.one_hot(torch.tensor(np.array([0, 3])), 2)
    net = nn.Conv2d(3, 4, 3).to(memory_format=torch.channels_last)
    x = torch.randn(1, 3, 5, 5).to("cpu", memory_format=torch.channels_last)
    assert net(x).shape == (1, 4, 3, 3)


def _tree():
    import collections
    rng = np.random.default_rng(0)
    state = collections.OrderedDict([("conv.weight", rng.standard_normal((4, 3, 3, 3)).astype(np.float32)),
                                     ("bn.num_batches_tracked", np.array(7, np.int64)),
                                     ("fc.weight_t", rng.standard_normal((5, 2)).T),  # not contiguous
                                     ("mask", rng.random(6) > 0.5), ("empty", np.zeros((2, 0), np.float16))])
    return {"model": state, "epoch": 3, "lr": 0.1, "tag": "run", 7: [1, (2.5, None)], "big": 2 ** 40}


def test_save_with_a_pt_suffix_writes_pytorchs_zip_format(tmp_path):
    import zipfile

    tree = _tree()
    for name in ("ck.pt", "ck.pth"):
        path = str(tmp_path / name)
        torch.save(tree, path)
        assert "archive/data.pkl" in zipfile.ZipFile(path).namelist()
        back = torch.load(path, map_location="cpu", weights_only=True)
        assert list(back["model"]) == list(tree["model"]) and back[7] == [1, (2.5, None)] and back["big"] == 2 ** 40
        for k, v in tree["model"].items():
            assert back["model"][k].shape == v.shape and back["model"][k].dtype == v.dtype
            np.testing.assert_array_equal(back["model"][k], v)
    with pytest.raises(TypeError, match=r"cannot write obj\['s'\] of type set"):
        torch.save({"s": {1}}, str(tmp_path / "bad.pt"))
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        torch.load(str(tmp_path / "ck.pt"), map_location="tpu")


def test_pytorch_reads_what_save_wrote():
    real = pytest.importorskip("torch")
    import os
    import tempfile

    tree = _tree()
    with tempfile.TemporaryDirectory() as d:
        torch.save(tree, os.path.join(d, "ck.pt"))
        back = real.load(os.path.join(d, "ck.pt"), weights_only=True)
    for k, v in tree["model"].items():
        np.testing.assert_array_equal(back["model"][k].numpy(), v)
    assert back["epoch"] == 3 and back[7] == [1, (2.5, None)] and back["tag"] == "run"


def test_dtype_promotion_follows_pytorch():
    f32, f64 = torch.ones(3), torch.ones(3, dtype=torch.float64)
    i64 = torch.tensor(np.arange(3))
    assert (f32 + i64).dtype == np.float32 and (i64 * f32).dtype == np.float32 and (f32 - i64).dtype == np.float32
    assert (f32 + f64).dtype == np.float64 and (i64 + 1.5).dtype == np.float32 and (i64 * 2).dtype == np.int64
    assert (i64 / 2).dtype == np.float32 and (i64 / (i64 + 1)).dtype == np.float32
    import minicnn.nn.functional as F
    assert F.mse_loss(f32, torch.arange(3)).dtype == np.float32  # an arange target, as in the tutorials
    x = torch.ones(2, requires_grad=True)
    (x * torch.tensor(np.array([2, 3]))).sum().backward()
    assert x.grad.dtype == np.float32 and x.grad.numpy().tolist() == [2.0, 3.0]


def test_torch_style_module_access_after_one_import():
    assert torch.nn.Conv2d is not None and torch.optim.SGD is not None and torch.utils.data.DataLoader is not None
    assert issubclass(torch.cuda.OutOfMemoryError, BaseException)  # `except torch.cuda.OutOfMemoryError:` resolves


def test_grad_scaler_scales_unscales_and_skips_non_finite_steps():
    import minicnn.nn as nn

    torch.manual_seed(0)
    model = nn.Linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    scaler = torch.cuda.amp.GradScaler(init_scale=8.0, growth_interval=2)
    x = torch.ones(4, 2)
    with torch.autocast("cpu"):  # runs as is
        loss = (model(x) ** 2).mean()
    scaler.scale(loss).backward()
    raw = model.weight.grad.numpy().copy()
    before = model.weight.numpy().copy()
    scaler.step(opt)
    np.testing.assert_allclose(model.weight.numpy(), before - 0.1 * raw / 8, rtol=1e-6)  # unscaled gradient
    scaler.update()
    assert scaler.get_scale() == 8.0
    opt.zero_grad()
    scaler.scale((model(x) ** 2).mean()).backward()
    scaler.step(opt)
    scaler.update()
    assert scaler.get_scale() == 16.0  # two good steps: it grows
    model.weight.grad = torch.tensor(np.array([[np.inf, 0.0]], np.float32))
    kept = model.weight.numpy().copy()
    scaler.step(opt)
    scaler.update()
    assert np.array_equal(model.weight.numpy(), kept) and scaler.get_scale() == 8.0  # skipped, backed off
    assert torch.amp.GradScaler(enabled=False).scale(loss) is loss


def test_tensor_hooks_see_and_replace_gradients():
    x = torch.tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    w = torch.tensor(np.array([0.5, -1.0, 2.0]), requires_grad=True)
    y = x * w
    seen = []
    handle = y.register_hook(lambda g: seen.append(g.numpy().copy()) or g * 2)
    (3 * y.sum()).backward()
    assert seen[0].tolist() == [3.0, 3.0, 3.0]
    assert x.grad.numpy().tolist() == [3.0, -6.0, 12.0] and w.grad.numpy().tolist() == [6.0, 12.0, 18.0]
    handle.remove()
    x.grad = None
    x.register_hook(lambda g: g * 10)  # on a leaf: before it is accumulated
    (x * x).sum().backward()
    assert x.grad.numpy().tolist() == [20.0, 40.0, 60.0]
    with pytest.raises(RuntimeError, match="doesn't require grad"):
        torch.ones(2).register_hook(lambda g: g)


def test_autograd_grad_leaves_every_grad_alone():
    a = torch.tensor(np.array([1.0, 2.0]), requires_grad=True)
    b = torch.tensor(np.array([3.0, 4.0]), requires_grad=True)
    b.grad = torch.tensor(np.array([9.0, 9.0]))
    z = (a * b).sum() + (a ** 2).sum()
    (ga,) = torch.autograd.grad(z, [a], retain_graph=True)
    assert ga.numpy().tolist() == [5.0, 8.0] and a.grad is None and b.grad.numpy().tolist() == [9.0, 9.0]
    ga, gb = torch.autograd.grad(z, (a, b))
    assert ga.numpy().tolist() == [5.0, 8.0] and gb.numpy().tolist() == [1.0, 2.0]
    c = torch.tensor(np.array([1.0]), requires_grad=True)
    with pytest.raises(RuntimeError, match="input 1 was not used"):
        torch.autograd.grad((a * 2).sum(), [a, c])
    assert torch.autograd.grad((a * 2).sum(), [a, c], allow_unused=True)[1] is None


def test_full_backward_hooks_get_grad_input_and_grad_output():
    import minicnn.nn as nn

    layer = nn.Linear(3, 2)
    calls = []
    handle = layer.register_full_backward_hook(
        lambda m, gi, go: calls.append((m, [None if g is None else g.numpy().copy() for g in gi], go[0].numpy())))
    x = torch.randn(4, 3, requires_grad=True)
    layer(x).sum().backward()
    module, grad_input, grad_output = calls[0]
    assert module is layer and grad_output.tolist() == np.ones((4, 2)).tolist()
    np.testing.assert_allclose(grad_input[0], x.grad.numpy())
    calls.clear()
    layer(torch.randn(4, 3)).sum().backward()  # the input needs no gradient: grad_input is (None,)
    assert calls[0][1] == [None]
    handle.remove()
    layer.register_full_backward_hook(lambda m, gi, go: (gi[0] * 0,))
    x.grad = None
    layer(x).sum().backward()
    assert np.abs(x.grad.numpy()).max() == 0


def test_reductions_take_pytorchs_arguments():
    x = torch.tensor(np.arange(12.0).reshape(3, 4))
    a = np.arange(12.0).reshape(3, 4)
    np.testing.assert_allclose(x.var(1).numpy(), a.var(1, ddof=1))
    np.testing.assert_allclose(x.var(1, False).numpy(), a.var(1))  # (dim, unbiased, keepdim), as PyTorch
    assert x.var(1, True, True).shape == (3, 1) and x.std(0, False, True).shape == (1, 4)
    assert torch.std(x).item() == pytest.approx(a.std(ddof=1)) and x.var(correction=0).item() == pytest.approx(a.var())
    assert torch.sum(x, ()).item() == 66.0 and x.mean([]).item() == 5.5  # an empty dim reduces everything
    for call, error, message in ((lambda: x.var(True), TypeError, "var: dim must be an int or a tuple of ints, got True"),
                                 (lambda: torch.sum(x, True), TypeError, "sum: dim must be an int"),
                                 (lambda: torch.amax(x, (0, 0)), ValueError, "amax: dim 0 appears more than once"),
                                 (lambda: x.var(0, 1), TypeError, "unbiased must be a bool")):
        with pytest.raises(error, match=message):
            call()


def test_elementwise_extrema_alpha_rounding_softmax_dtype_and_squeeze_tuples():
    a = torch.tensor(np.array([1.0, 5.0, 3.0]), requires_grad=True)
    b = torch.tensor(np.array([2.0, 4.0, 3.0]), requires_grad=True)
    y = torch.maximum(a, b)
    assert y.numpy().tolist() == [2.0, 5.0, 3.0] and torch.max(a, b).numpy().tolist() == [2.0, 5.0, 3.0]
    y.sum().backward()
    assert a.grad.numpy().tolist() == [0.0, 1.0, 0.5] and b.grad.numpy().tolist() == [1.0, 0.0, 0.5]  # ties split
    assert torch.minimum(a, b).numpy().tolist() == [1.0, 4.0, 3.0] == torch.min(a, b).numpy().tolist()
    rng = np.random.default_rng(0)
    p, q = (torch.tensor(rng.standard_normal(6), requires_grad=True) for _ in range(2))
    assert torch.gradcheck(torch.maximum, [p, q]) and torch.gradcheck(torch.minimum, [p, q])
    x = torch.tensor(np.arange(4.0))
    assert torch.add(x, x, alpha=2).numpy().tolist() == [0.0, 3.0, 6.0, 9.0]
    assert torch.sub(x, 1.0, alpha=2).numpy().tolist() == [-2.0, -1.0, 0.0, 1.0]
    n = torch.tensor(np.array([-7.0, 7.0]))
    assert torch.div(n, 2.0, rounding_mode="trunc").numpy().tolist() == [-3.0, 3.0]
    assert torch.div(n, 2.0, rounding_mode="floor").numpy().tolist() == [-4.0, 3.0]
    ints = torch.tensor(np.array([-7, 7]))
    assert torch.div(ints, torch.tensor(np.array([2, 2])), rounding_mode="floor").numpy().tolist() == [-4, 3]
    with pytest.raises(ValueError, match="rounding_mode must be None, 'trunc' or 'floor'"):
        torch.div(n, 2.0, rounding_mode="round")
    assert torch.softmax(torch.ones(2, 3), 1, dtype=torch.float64).dtype == np.float64
    assert torch.squeeze(torch.zeros(1, 3, 1, 2), (0, 2)).shape == (3, 2)
    assert torch.squeeze(torch.zeros(1, 3, 1, 2), (1, 2)).shape == (1, 3, 2)  # size-3 axis 1 stays


@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=3), data=st.data())
def test_gather_scatter_sort_topk_against_loops(shape, data):
    rng = np.random.default_rng(len(shape) * 7 + shape[0])
    x = rng.standard_normal(shape)
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    axis = dim % len(shape)
    idx_shape = [data.draw(st.integers(1, n)) if d != axis else data.draw(st.integers(1, 5))
                 for d, n in enumerate(shape)]
    index = rng.integers(0, shape[axis], idx_shape)
    # gather: out[p] = x[p with p[axis] replaced by index[p]]
    want = np.empty(idx_shape)
    for p in np.ndindex(*idx_shape):
        q = list(p)
        q[axis] = index[p]
        want[p] = x[tuple(q)]
    np.testing.assert_array_equal(torch.tensor(x).gather(dim, torch.tensor(index)).numpy(), want)
    assert torch.gradcheck(lambda t: torch.gather(t, dim, torch.tensor(index)), [torch.tensor(x, requires_grad=True)])
    # scatter with distinct positions (repeated ones leave the winner unspecified, as in PyTorch)
    unique = np.argsort(rng.random(shape), axis=axis)[tuple(slice(0, min(n, i)) for n, i in zip(shape, idx_shape))]
    src = rng.standard_normal(unique.shape)
    want = x.copy()
    for p in np.ndindex(*unique.shape):
        q = list(p)
        q[axis] = unique[p]
        want[tuple(q)] = src[p]
    np.testing.assert_array_equal(torch.tensor(x).scatter(dim, torch.tensor(unique), torch.tensor(src)).numpy(), want)
    assert torch.gradcheck(lambda a, b: a.scatter(dim, torch.tensor(unique), b),
                           [torch.tensor(x, requires_grad=True), torch.tensor(src, requires_grad=True)])
    # sort and topk: values and indices as NumPy's stable sort gives them
    values, indices = torch.tensor(x).sort(dim, descending=True)
    order = np.argsort(-x, axis=axis, kind="stable")
    np.testing.assert_array_equal(indices.numpy(), order)
    np.testing.assert_array_equal(values.numpy(), np.take_along_axis(x, order, axis))
    k = data.draw(st.integers(0, shape[axis]))
    top = torch.tensor(x).topk(k, dim, largest=False)
    np.testing.assert_array_equal(top.indices.numpy(), np.take(np.argsort(x, axis=axis, kind="stable"), range(k), axis))
    assert torch.gradcheck(lambda t: t.topk(k, dim).values, [torch.tensor(x, requires_grad=True)])


def test_clamp_with_tensor_bounds_zero_d_dims_and_cropping_pads():
    x = torch.tensor(np.array([-2.0, 0.5, 3.0]), requires_grad=True)
    lo = torch.tensor(np.array([-1.0, 0.0, 0.0]), requires_grad=True)
    hi = torch.tensor(np.array([1.0, 1.0, 1.0]), requires_grad=True)
    y = torch.clamp(x, lo, hi)
    assert y.tolist() == [-1.0, 0.5, 1.0]
    y.sum().backward()  # the bound that won gets the gradient, as in PyTorch
    assert x.grad.tolist() == [0.0, 1.0, 0.0] and lo.grad.tolist() == [1.0, 0.0, 0.0] and hi.grad.tolist() == [0, 0, 1]
    assert x.clamp(max=hi).tolist() == [-2.0, 0.5, 1.0]
    s = torch.tensor(np.float32(2.0))
    assert s.squeeze(0).shape == () and s.transpose(0, -1).shape == () and s.sum(-1).item() == 2.0
    assert torch.softmax(s, 0).item() == 1.0 and torch.log_softmax(s, -1).item() == 0.0
    with pytest.raises(IndexError, match="dim 1 is out of range for a tensor with 0 dimensions"):
        s.squeeze(1)
    v = torch.tensor(np.arange(5.0)).reshape(1, 1, 5)  # negative widths crop first, then pad
    F = torch.nn.functional
    assert F.pad(v, (-1, 2), mode="reflect").flatten().tolist() == [1, 2, 3, 4, 3, 2]
    assert F.pad(v, (-1, 2), mode="circular").flatten().tolist() == [1, 2, 3, 4, 1, 2]
    assert F.pad(v, (2, -1), mode="replicate").flatten().tolist() == [0, 0, 0, 1, 2, 3]
    assert torch.accelerator.is_available() == torch.cuda.is_available()
    assert (torch.accelerator.current_accelerator() is None) == (not torch.cuda.is_available())


def test_indexing_ops_refuse_bad_arguments_by_name():
    x = torch.randn(3, 4)
    with pytest.raises(TypeError, match="gather: index must be an integer tensor, got float32"):
        x.gather(1, torch.zeros(3, 1))
    with pytest.raises(ValueError, match=r"gather: index of shape \(5, 1\) does not fit input of shape \(3, 4\)"):
        x.gather(1, torch.tensor(np.zeros((5, 1), np.int64)))
    with pytest.raises(IndexError, match=r"scatter: index values must lie in \[0, 4\) along dim 1, got \[0, 7\]"):
        x.scatter(1, torch.tensor(np.array([[0], [7], [1]])), value=1.0)
    with pytest.raises(TypeError, match="scatter: give exactly one of src and value"):
        x.scatter(1, torch.tensor(np.zeros((3, 1), np.int64)))
    with pytest.raises(ValueError, match="topk: k=5 is out of range for dim 1 of size 4"):
        x.topk(5)
    with pytest.raises(IndexError, match="sort: dim 2 is out of range for a tensor with 2 dimensions"):
        x.sort(2)
    with pytest.raises(TypeError, match="clamp: min must be a number or a Tensor, got str"):
        x.clamp("0")
    with pytest.raises(ValueError, match=r"interpolate: mode 'bicubic' needs a 4-D input, got shape \(1, 1, 4\)"):
        torch.nn.functional.interpolate(torch.randn(1, 1, 4), scale_factor=2, mode="bicubic")
