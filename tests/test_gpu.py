"""GPU parity: the CuPy backend (minicnn.cuda's CUDA kernels, cuBLAS matmul) gives the
CPU backend's results to float32 round-off, forward and backward, op by op and for a
whole training step of ResNet-18 and U-Net.

Everything that needs a GPU skips, with the reason, when CuPy is missing or sees no
device. The first test checks the error a user gets in that case.
"""
import numpy as np
import pytest

import minicnn as mc
import minicnn.cpu
import minicnn.cuda as cu
import minicnn.nn.functional as F
from minicnn import backend


def _no_gpu_reason():
    try:
        backend.cupy_module()
        return None
    except RuntimeError as e:
        return str(e)


NO_GPU = _no_gpu_reason()
gpu = pytest.mark.skipif(NO_GPU is not None, reason=f"needs CuPy and a CUDA GPU: {NO_GPU}")
DTYPES = [np.float32, np.float64]


@pytest.fixture(scope="module")
def cp():
    return backend.cupy_module()


def assert_close(gpu_value, cpu_value, dtype, what="", scale_tol=None):
    """Agreement to round-off: the largest difference relative to the largest magnitude."""
    a, b = backend.to_numpy(gpu_value), np.asarray(cpu_value)
    assert a.shape == b.shape and a.dtype == b.dtype, f"{what}: {a.shape} {a.dtype} vs {b.shape} {b.dtype}"
    if a.dtype.kind in "iub":
        np.testing.assert_array_equal(a, b, err_msg=what)
        return
    tol = scale_tol or (2e-5 if dtype == np.float32 else 1e-11)
    np.testing.assert_array_equal(np.isnan(a), np.isnan(b), err_msg=what)
    ok = ~np.isnan(b)
    err = np.max(np.abs(a[ok] - b[ok]), initial=0.0) / max(1.0, np.max(np.abs(b[ok]), initial=0.0))
    assert err < tol, f"{what}: relative difference {err:.3g} >= {tol:g}"


# ---------------------------------------------------------------- without a GPU
@pytest.mark.skipif(NO_GPU is None, reason="a GPU is available, so there is no error to check")
def test_cuda_device_error_says_what_is_missing():
    pattern = (r"device 'cuda' is not available: .+ \(install minicnn\[cuda12\] or minicnn\[cuda13\] "
               r"on a machine with an NVIDIA GPU\)")
    t = mc.tensor([1.0, 2.0])
    with pytest.raises(RuntimeError, match=pattern):
        t.to("cuda")
    with pytest.raises(RuntimeError, match=pattern):
        t.cuda()
    with pytest.raises(RuntimeError, match=pattern):
        mc.tensor([1.0], device="cuda")
    net = mc.nn.Linear(2, 3)
    with pytest.raises(RuntimeError, match=pattern):
        net.to("cuda")
    assert net.weight.device == "cpu"  # nothing was half moved
    # a kernel names itself, then gives the same reason
    with pytest.raises(RuntimeError, match=r"^minicnn.cuda.im2col: device 'cuda' is not available"):
        cu.im2col(np.zeros((1, 1, 3, 3), np.float32), 2, 2, 1, 1, 0, 0, 1, 1, 2, 2)
    assert mc.cuda_available() is False


def test_kernels_refuse_numpy_arrays_outside_emulation():
    if NO_GPU is not None:
        pytest.skip("without CuPy the error is the missing device (tested above)")
    with pytest.raises(TypeError, match=r"minicnn.cuda.relu_backward: expected a CuPy array, got numpy.ndarray"):
        cu.relu_backward(np.zeros(3), np.zeros(3))


# ---------------------------------------------------------------- kernels, one by one
def _kernel_cases(dtype, rng):
    """name -> arguments (NumPy), sized so that every grid-stride loop goes round."""
    def r(*shape):
        return rng.standard_normal(shape).astype(dtype)

    x = r(3, 8, 37, 33)
    conv = (3, 5, 2, 3, 1, 2, 2, 1, 17, 11)  # kh kw sh sw ph pw dh dw oh ow
    pool = (3, 3, 2, 2, 1, 1, 1, 1, 19, 17)
    ties = rng.integers(-2, 3, size=x.shape).astype(dtype)
    _, idx = minicnn.cpu.max_pool2d_forward(ties, *pool)
    avg = (3, 2, 2, 2, 1, 1, 19, 18, False, None)
    unpool_idx = np.stack([rng.permutation(37 * 33)[:19 * 17] for _ in range(24)]).reshape(3, 8, 19, 17)
    y_lrn, scale = minicnn.cpu.lrn_forward(x, 5, 1e-2, 0.75, 2.0)
    mean, weight, bias = r(8), r(8), r(8)
    invstd = np.abs(r(8)) + dtype(0.5)
    w_dw, dw = r(16, 1, 3, 5), conv[2:8]  # depthwise, multiplier 2, the convolution's strides etc.
    return {
        "im2col": (x, *conv),
        "col2im": (r(3, 8 * 15, 17 * 11), 37, 33, *conv),
        "depthwise_conv2d": (x, w_dw, r(16), *dw, 17, 11),
        "depthwise_conv2d_input_grad": (r(3, 16, 17, 11), w_dw, x.shape, *dw),
        "depthwise_conv2d_weight_grad": (x, r(3, 16, 17, 11), 3, 5, *dw),
        "max_pool2d_forward": (ties, *pool),
        "max_pool2d_backward": (r(3, 8, 19, 17), idx, 37, 33, *pool[:8]),
        "avg_pool2d_forward": (x, *avg),
        "avg_pool2d_backward": (r(3, 8, 19, 18), 37, 33, *avg),
        "max_unpool2d_forward": (r(3, 8, 19, 17), unpool_idx, 37, 33),
        "max_unpool2d_backward": (x, unpool_idx),
        "lrn_forward": (x, 5, 1e-2, 0.75, 2.0),
        "lrn_backward": (r(*x.shape), x, y_lrn, scale, 5, 1e-2, 0.75),
        "batch_norm_stats": (x * 3 + 50,),  # an offset mean: the two-pass variance stays accurate
        "batch_norm_forward": (x, mean, invstd, weight, bias),
        "batch_norm_backward": (r(*x.shape), x, mean, invstd, weight, True),
        "relu_backward": (r(*x.shape), x),
        "bias_relu": (x, bias),
    }


def _cpu_reference(name, args):
    twin = getattr(minicnn.cpu, name, None)
    if twin is not None:
        return twin(*args)
    if name == "bias_relu":
        x, b = args
        return np.maximum(x + b.reshape(1, -1, 1, 1), 0)
    if name == "relu_backward":
        gy, y = args
        return np.where(y > 0, gy, 0).astype(gy.dtype)
    raise AssertionError(f"no CPU reference for {name}")


@gpu
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", cu.__all__)
def test_kernel_matches_cpu(cp, name, dtype):
    args = _kernel_cases(dtype, np.random.default_rng(0))[name]
    expected = _cpu_reference(name, args)
    got = getattr(cu, name)(*(cp.asarray(a) if isinstance(a, np.ndarray) else a for a in args))
    if not isinstance(expected, tuple):
        got, expected = (got,), (expected,)
    for i, (g, e) in enumerate(zip(got, expected)):
        assert isinstance(g, cp.ndarray)
        assert_close(g, e, dtype, f"{name} output {i}")


@gpu
def test_backend_dispatches_cupy_arrays_to_minicnn_cuda(cp):
    assert backend.kernels(cp.zeros(3)) is cu
    assert backend.kernels(np.zeros(3)) is minicnn.cpu


@gpu
def test_gather_kernels_are_deterministic(cp):
    rng = np.random.default_rng(1)
    col = cp.asarray(rng.standard_normal((4, 16 * 9, 30 * 30)).astype(np.float32))
    a = cu.col2im(col, 32, 32, 3, 3, 1, 1, 0, 0, 1, 1, 30, 30)
    b = cu.col2im(col, 32, 32, 3, 3, 1, 1, 0, 0, 1, 1, 30, 30)
    assert bool((a == b).all())
    gy = cp.asarray(rng.standard_normal((4, 16, 30, 30)).astype(np.float32))
    idx = cp.zeros((4, 16, 30, 30), dtype=np.int64)  # every window chose pixel 0: 900 terms
    a = cu.max_pool2d_backward(gy, idx, 32, 32, 3, 3, 1, 1, 0, 0, 1, 1)
    b = cu.max_pool2d_backward(gy, idx, 32, 32, 3, 3, 1, 1, 0, 0, 1, 1)
    assert bool((a == b).all())


@gpu
@pytest.mark.slow
def test_im2col_indexes_past_2_to_the_31(cp):
    """A column buffer of more than 2**31 elements: the kernels index with 64 bits."""
    free, _ = cp.cuda.runtime.memGetInfo()
    if free < 12 * 2**30:
        pytest.skip(f"needs 12 GiB of free GPU memory, {free / 2**30:.1f} GiB free")
    h = w = 2048
    k = 23  # col has 529 * 2048 * 2048 = 2.2e9 elements (8.9 GB)
    x = cp.arange(h * w, dtype=cp.float32).reshape(1, 1, h, w) / (h * w)
    col = cu.im2col(x, k, k, 1, 1, k // 2, k // 2, 1, 1, h, w)
    assert col.size > 2**31
    rng = np.random.default_rng(2)
    rows = rng.integers(0, k * k, 64).tolist() + [k * k - 1]
    cols = rng.integers(0, h * w, 64).tolist() + [h * w - 1]
    got = col[0, cp.asarray(rows), cp.asarray(cols)].get()
    xh = x.get()[0, 0]
    for v, row, p in zip(got, rows, cols):
        i, j, y, x_ = row // k, row % k, p // w, p % w
        hh, ww = y - k // 2 + i, x_ - k // 2 + j
        assert v == (xh[hh, ww] if 0 <= hh < h and 0 <= ww < w else 0)
    del col
    cp.get_default_memory_pool().free_all_blocks()


# ---------------------------------------------------------------- ops, CPU vs GPU, with gradients
def _op_cases():
    """(id, fn(*tensors), shapes of the inputs that get gradients, extra constant inputs)."""
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 5, (4,))
    pixel_labels = rng.integers(0, 3, (2, 6, 7))
    return [
        ("conv2d", lambda x, w, b: F.conv2d(x, w, b, stride=(2, 1), padding=1, dilation=(1, 2), groups=2),
         [(2, 4, 9, 11), (6, 2, 3, 3), (6,)], []),
        ("conv2d_1x1", lambda x, w: F.conv2d(x, w), [(2, 8, 5, 5), (4, 8, 1, 1)], []),
        ("conv2d_depthwise", lambda x, w, b: F.conv2d(x, w, b, padding=1, groups=4),
         [(2, 4, 9, 11), (8, 1, 3, 3), (8,)], []),
        ("conv2d_depthwise_strided", lambda x, w: F.conv2d(x, w, stride=2, padding=(1, 2), dilation=(1, 2), groups=4),
         [(2, 4, 9, 11), (4, 1, 3, 3)], []),
        ("conv_transpose2d", lambda x, w, b: F.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1),
         [(2, 4, 5, 6), (4, 3, 3, 3), (3,)], []),
        ("max_pool2d_ceil", lambda x: F.max_pool2d(x, 3, 2, 1, ceil_mode=True, return_indices=True),
         [(2, 3, 10, 9)], []),
        ("max_pool2d_dilated", lambda x: F.max_pool2d(x, 2, 1, 0, dilation=2), [(2, 3, 8, 7)], []),
        ("avg_pool2d", lambda x: F.avg_pool2d(x, 3, 2, 1, ceil_mode=True, count_include_pad=False),
         [(2, 3, 10, 9)], []),
        ("avg_pool2d_include_pad", lambda x: F.avg_pool2d(x, 2, 2, 1), [(2, 3, 7, 7)], []),
        ("max_unpool2d", lambda x: F.max_unpool2d(*F.max_pool2d(x, 2, 2, return_indices=True), 2),
         [(2, 3, 8, 6)], []),
        ("adaptive_avg_pool2d", lambda x: F.adaptive_avg_pool2d(x, (3, 2)), [(2, 3, 7, 5)], []),
        ("batch_norm_train", lambda x, w, b, rm, rv: (F.batch_norm(x, rm, rv, w, b, training=True), rm, rv),
         [(4, 5, 6, 7), (5,), (5,)], [np.zeros(5), np.ones(5)]),
        ("batch_norm_eval", lambda x, w, b, rm, rv: F.batch_norm(x, rm, rv, w, b, training=False),
         [(4, 5, 6, 7), (5,), (5,)], [rng.standard_normal(5), rng.uniform(0.5, 2, 5)]),
        ("batch_norm_1d", lambda x, rm, rv: F.batch_norm(x, rm, rv, training=True), [(6, 4)],
         [np.zeros(4), np.ones(4)]),
        ("local_response_norm", lambda x: F.local_response_norm(x, 5, 1e-2, 0.75, 2.0), [(2, 7, 5, 5)], []),
        ("relu", lambda x: F.relu(x), [(3, 4, 5)], []),
        ("sigmoid_tanh", lambda x: F.sigmoid(x) * F.tanh(x), [(3, 4, 5)], []),
        ("log_softmax", lambda x: F.log_softmax(x, 1), [(3, 4, 5)], []),
        ("linear", lambda x, w, b: F.linear(x, w, b), [(3, 6), (4, 6), (4,)], []),
        ("cross_entropy", lambda x, t: F.cross_entropy(x, t), [(4, 5)], [labels]),
        ("cross_entropy_2d", lambda x, t: F.cross_entropy(x, t), [(2, 3, 6, 7)], [pixel_labels]),
        ("interpolate", lambda x: F.interpolate(x, scale_factor=2, mode="nearest"), [(2, 3, 4, 5)], []),
    ]


def _run_op(fn, grad_arrays, consts, device, dtype, weights=None):
    """Outputs and input gradients of fn; the loss is sum(output * fixed random weights)."""
    inputs = [mc.tensor(a.astype(dtype), requires_grad=True, device=device) for a in grad_arrays]
    extra = [mc.tensor(c.astype(dtype) if c.dtype.kind == "f" else c, device=device) for c in consts]
    out = fn(*inputs, *extra)
    outs = out if isinstance(out, tuple) else (out,)
    if weights is None:  # drawn once, on the CPU run, and reused on the GPU
        rng = np.random.default_rng(4)
        weights = [rng.standard_normal(o.shape).astype(dtype) if o.dtype.kind == "f" else None for o in outs]
    loss = None
    for o, w in zip(outs, weights):
        if w is not None and o.requires_grad:
            term = (o * mc.tensor(w, device=device)).sum()
            loss = term if loss is None else loss + term
    loss.backward()
    return [o.numpy() for o in outs], [t.grad.numpy() for t in inputs], weights


@gpu
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", _op_cases(), ids=lambda c: c[0])
def test_op_matches_cpu_forward_and_backward(case, dtype):
    name, fn, shapes, consts = case
    rng = np.random.default_rng(5)
    arrays = [rng.standard_normal(s) for s in shapes]
    cpu_out, cpu_grads, weights = _run_op(fn, arrays, consts, "cpu", dtype)
    gpu_out, gpu_grads, _ = _run_op(fn, arrays, consts, "cuda", dtype, weights)
    for i, (g, c) in enumerate(zip(gpu_out, cpu_out)):
        assert_close(g, c, dtype, f"{name} output {i}")
    for i, (g, c) in enumerate(zip(gpu_grads, cpu_grads)):
        assert_close(g, c, dtype, f"{name} gradient of input {i}")


# ---------------------------------------------------------------- whole training steps
def _train_step(model, x, target, device):
    """One SGD step; returns loss, output, the gradients and the state after the step."""
    from minicnn import optim

    model.train()
    opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
    out = model(mc.tensor(x, device=device))
    loss = F.cross_entropy(out, mc.tensor(target, device=device))
    opt.zero_grad()
    loss.backward()
    grads = {name: p.grad.numpy() for name, p in model.named_parameters()}
    opt.step()
    return loss.item(), out.numpy(), grads, model.state_dict()


def _compare_training_step(make_model, x, target, tol):
    mc.manual_seed(0)
    cpu_model = make_model()
    gpu_model = make_model()
    gpu_model.load_state_dict(cpu_model.state_dict())
    gpu_model.to("cuda")
    assert all(p.device == "cuda" for p in gpu_model.parameters())
    cpu_loss, cpu_out, cpu_grads, cpu_state = _train_step(cpu_model, x, target, "cpu")
    gpu_loss, gpu_out, gpu_grads, gpu_state = _train_step(gpu_model, x, target, "cuda")
    assert abs(gpu_loss - cpu_loss) <= tol * max(1.0, abs(cpu_loss))
    assert_close(gpu_out, cpu_out, np.float32, "logits", tol)
    assert gpu_grads.keys() == cpu_grads.keys()
    for name in cpu_grads:  # relative to each gradient's own size: small layers count too
        g, c = gpu_grads[name], cpu_grads[name]
        err = np.linalg.norm(g - c) / max(np.linalg.norm(c), 1e-12)
        assert err < tol, f"gradient of {name}: relative error {err:.3g}"
    for name in cpu_state:  # parameters after the step and the BN running statistics
        assert_close(gpu_state[name], cpu_state[name], np.float32, f"state {name}", tol)


@gpu
@pytest.mark.slow
def test_resnet18_training_step_matches_cpu():
    from minicnn import models

    rng = np.random.default_rng(6)
    x = rng.standard_normal((4, 3, 64, 64)).astype(np.float32)
    target = rng.integers(0, 10, (4,))
    _compare_training_step(lambda: models.resnet18(num_classes=10), x, target, tol=1e-3)


@gpu
@pytest.mark.slow
def test_unet_training_step_matches_cpu():
    """The paper's U-Net (valid convs, crop and concat, 31M parameters) on a 188x188 tile
    (the smallest input its four poolings accept: 4x4 out)."""
    from minicnn import models

    rng = np.random.default_rng(7)
    x = rng.standard_normal((1, 1, 188, 188)).astype(np.float32)
    target = rng.integers(0, 2, (1, 4, 4))
    _compare_training_step(lambda: models.unet(in_channels=1, num_classes=2), x, target, tol=1e-3)
