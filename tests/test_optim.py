"""Optimizers, learning-rate schedules and gradient clipping against hand-computed values."""
import math

import numpy as np
import pytest

import minicnn as mc
import minicnn.optim as optim
from minicnn.nn.utils import clip_grad_norm_, clip_grad_value_
from minicnn.optim import lr_scheduler as L


def param(values, grad=None, dtype=np.float32):
    p = mc.tensor(np.array(values, dtype), requires_grad=True)
    if grad is not None:
        p.grad = mc.tensor(np.array(grad, dtype))
    return p


def set_grad(p, g):
    p.grad = mc.tensor(np.asarray(g, p.dtype))


# -- reference implementations: the update formulas, step by step, in float64 -------------------

def ref_sgd(p, grads, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
    p, buf = np.array(p, np.float64), None
    for g in grads:
        g = np.array(g, np.float64) + weight_decay * p
        if momentum:
            buf = g.copy() if buf is None else momentum * buf + (1 - dampening) * g
            g = g + momentum * buf if nesterov else buf
        p = p - lr * g
    return p


def ref_adam(p, grads, lr, b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.0, amsgrad=False, decoupled=False):
    p = np.array(p, np.float64)
    m, v, vmax = np.zeros_like(p), np.zeros_like(p), np.zeros_like(p)
    for t, g in enumerate(grads, 1):
        g = np.array(g, np.float64)
        if decoupled:
            p = p * (1 - lr * weight_decay)
        else:
            g = g + weight_decay * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        vmax = np.maximum(vmax, v)
        vhat = (vmax if amsgrad else v) / (1 - b2 ** t)
        p = p - lr * (m / (1 - b1 ** t)) / (np.sqrt(vhat) + eps)
    return p


def ref_rmsprop(p, grads, lr, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False):
    p = np.array(p, np.float64)
    s, a, b = np.zeros_like(p), np.zeros_like(p), np.zeros_like(p)
    for g in grads:
        g = np.array(g, np.float64) + weight_decay * p
        s = alpha * s + (1 - alpha) * g * g
        a = alpha * a + (1 - alpha) * g
        d = np.sqrt(s - a * a if centered else s) + eps
        if momentum:
            b = momentum * b + g / d
            p = p - lr * b
        else:
            p = p - lr * g / d
    return p


GRADS = np.random.default_rng(0).standard_normal((6, 7))
P0 = np.random.default_rng(1).standard_normal(7)


def run(opt_cls, grads=GRADS, p0=P0, dtype=np.float64, **kw):
    p = param(p0, dtype=dtype)
    opt = opt_cls([p], **kw)
    for g in grads:
        set_grad(p, g)
        opt.step()
    return p.numpy()


# -- first steps by hand ---------------------------------------------------------------------------

def test_sgd_momentum_by_hand():
    p = param([1.0, -2.0])
    opt = optim.SGD([p], lr=0.1, momentum=0.9, weight_decay=0.5)
    set_grad(p, [0.5, 1.0])
    opt.step()  # g = [0.5 + 0.5, 1 - 1] = [1, 0]; buf = g; p = [1 - 0.1, -2]
    np.testing.assert_allclose(p.numpy(), [0.9, -2.0], rtol=1e-6)
    set_grad(p, [0.5, 1.0])
    opt.step()  # g = [0.5 + 0.45, 1 - 1] = [0.95, 0]; buf = 0.9 * [1, 0] + g = [1.85, 0]
    np.testing.assert_allclose(p.numpy(), [0.9 - 0.185, -2.0], rtol=1e-6)


def test_sgd_nesterov_by_hand():
    p = param([0.0])
    opt = optim.SGD([p], lr=1.0, momentum=0.5, nesterov=True)
    set_grad(p, [1.0])
    opt.step()  # buf = 1; step = g + 0.5 buf = 1.5
    set_grad(p, [1.0])
    opt.step()  # buf = 0.5 + 1 = 1.5; step = 1 + 0.75 = 1.75
    np.testing.assert_allclose(p.numpy(), [-3.25])


def test_adam_first_step_is_lr_times_sign():
    # m_hat = g and v_hat = g^2 after one step, so the update is lr * g / (|g| + eps)
    p = param([1.0, 1.0, 1.0])
    set_grad(p, [3.0, -0.2, 1e-3])
    optim.Adam([p], lr=0.01).step()
    np.testing.assert_allclose(p.numpy(), [0.99, 1.01, 0.99], rtol=1e-5)


def test_adamw_decays_the_weights_before_the_adam_step():
    p = param([2.0])
    set_grad(p, [4.0])
    optim.AdamW([p], lr=0.1, weight_decay=0.5).step()  # 2 * (1 - 0.05) - 0.1
    np.testing.assert_allclose(p.numpy(), [1.8], rtol=1e-6)
    q = param([2.0])
    set_grad(q, [4.0])
    optim.Adam([q], lr=0.1, weight_decay=0.5).step()  # decay folded into g: still lr * sign
    np.testing.assert_allclose(q.numpy(), [1.9], rtol=1e-6)


def test_rmsprop_first_step_by_hand():
    # s = 0.01 g^2, so the step is lr * g / (0.1 |g|) = 10 lr sign(g)
    p = param([0.0, 0.0])
    set_grad(p, [2.0, -0.5])
    optim.RMSprop([p], lr=0.01).step()
    np.testing.assert_allclose(p.numpy(), [-0.1, 0.1], rtol=1e-5)


# -- many steps against the reference formulas ---------------------------------------------------

@pytest.mark.parametrize("kw", [dict(lr=0.1), dict(lr=0.1, momentum=0.9), dict(lr=0.05, momentum=0.9, dampening=0.3),
                                dict(lr=0.1, momentum=0.8, nesterov=True, weight_decay=0.01)])
def test_sgd_matches_reference(kw):
    np.testing.assert_allclose(run(optim.SGD, **kw), ref_sgd(P0, GRADS, **kw), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kw", [dict(), dict(weight_decay=0.1), dict(amsgrad=True), dict(betas=(0.5, 0.9), eps=1e-3)])
@pytest.mark.parametrize("cls", [optim.Adam, optim.AdamW])
def test_adam_matches_reference(cls, kw):
    b1, b2 = kw.pop("betas", (0.9, 0.999))
    decoupled = cls is optim.AdamW
    if decoupled and "weight_decay" not in kw:
        kw["weight_decay"] = 1e-2  # AdamW's default
    got = run(cls, lr=0.01, betas=(b1, b2), **kw)
    want = ref_adam(P0, GRADS, 0.01, b1, b2, decoupled=decoupled, **kw)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kw", [dict(), dict(momentum=0.9), dict(centered=True, weight_decay=0.1),
                                dict(centered=True, momentum=0.5, alpha=0.9)])
def test_rmsprop_matches_reference(kw):
    np.testing.assert_allclose(run(optim.RMSprop, lr=0.01, **kw), ref_rmsprop(P0, GRADS, 0.01, **kw),
                               rtol=1e-10, atol=1e-12)


def test_maximize_ascends():
    up = run(optim.SGD, lr=0.1, maximize=True)
    np.testing.assert_allclose(up, ref_sgd(P0, -GRADS, 0.1), rtol=1e-12)


def test_defaults_are_pytorchs():
    p = [param([0.0])]
    assert optim.SGD(p).defaults == dict(lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False,
                                         maximize=False)
    assert optim.Adam(p).defaults == dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False,
                                          maximize=False)
    assert optim.AdamW(p).defaults["weight_decay"] == 1e-2
    assert optim.RMSprop(p).defaults == dict(lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0,
                                             centered=False, maximize=False)


# -- float32, in-place updates, untouched gradients ---------------------------------------------

@pytest.mark.parametrize("make", [lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=1e-4),
                                  lambda ps: optim.Adam(ps, weight_decay=1e-4), lambda ps: optim.AdamW(ps),
                                  lambda ps: optim.RMSprop(ps, momentum=0.9, centered=True)])
def test_float32_in_place_and_gradients_untouched(make):
    p = param(P0)
    data = p.array
    g = np.asarray(GRADS[0], np.float32)
    g.flags.writeable = False  # a read-only gradient must only be read
    p.grad = mc.Tensor._make(g)
    opt = make([p])
    opt.step()
    opt.step()
    assert p.array is data and p.dtype == np.float32
    assert all(v.dtype == np.float32 for s in opt.state.values() for v in s.values() if hasattr(v, "dtype"))
    np.testing.assert_array_equal(g, np.asarray(GRADS[0], np.float32))


def test_params_without_grad_are_skipped_and_zero_grad():
    a, b = param([1.0]), param([1.0])
    set_grad(a, [1.0])
    opt = optim.SGD([a, b], lr=0.5, momentum=0.9)
    opt.step()
    assert a.numpy()[0] == 0.5 and b.numpy()[0] == 1.0 and opt.state_dict()["state"].keys() == {0}
    shared = a.grad.array
    opt.zero_grad(set_to_none=False)
    assert a.grad.numpy()[0] == 0 and shared[0] == 1.0 and b.grad is None
    opt.zero_grad()
    assert a.grad is None


# -- parameter groups and state dicts ------------------------------------------------------------

def test_param_groups_take_their_own_settings():
    a, b = param([1.0]), param([1.0])
    opt = optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1, momentum=0.9)
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.5]
    assert opt.param_groups[1]["momentum"] == 0.9
    set_grad(a, [1.0])
    set_grad(b, [1.0])
    opt.step()
    np.testing.assert_allclose([a.item(), b.item()], [0.9, 0.5])


def test_param_group_errors():
    a = param([1.0])
    with pytest.raises(ValueError, match="more than one parameter group"):
        optim.SGD([{"params": [a]}, {"params": [a]}], lr=0.1)
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.Adam([])
    with pytest.raises(TypeError, match="single Tensor"):
        optim.SGD(a, lr=0.1)
    with pytest.raises(ValueError, match="invalid learning rate"):
        optim.SGD([a], lr=-1)
    with pytest.raises(ValueError, match="beta parameter at index 1"):
        optim.Adam([a], betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="Nesterov"):
        optim.SGD([a], lr=0.1, nesterov=True)


def test_state_dict_layout_is_pytorchs():
    a, b, c = param([1.0, 2.0]), param([3.0]), param([4.0])
    opt = optim.Adam([{"params": [a, b]}, {"params": [c], "lr": 0.1}], amsgrad=True)
    for p in (a, c):
        set_grad(p, np.ones(p.shape))
    opt.step()
    sd = opt.state_dict()
    assert sorted(sd) == ["param_groups", "state"]
    assert sorted(sd["state"]) == [0, 2]  # b had no gradient: no state
    assert sorted(sd["state"][0]) == ["exp_avg", "exp_avg_sq", "max_exp_avg_sq", "step"]
    assert sd["state"][0]["step"] == 1
    assert [g["params"] for g in sd["param_groups"]] == [[0, 1], [2]]
    assert sd["param_groups"][1]["lr"] == 0.1 and sd["param_groups"][0]["betas"] == (0.9, 0.999)
    assert isinstance(sd["state"][0]["exp_avg"], np.ndarray)


@pytest.mark.parametrize("make", [lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9),
                                  lambda ps: optim.Adam(ps, lr=0.01, amsgrad=True),
                                  lambda ps: optim.RMSprop(ps, momentum=0.5, centered=True)])
def test_state_dict_round_trip_through_a_file_continues_exactly(make, tmp_path):
    def fresh():
        return [param(P0), param(P0[:3] * 2)]

    ps, qs = fresh(), fresh()
    opt = make(ps)
    for g in GRADS[:3]:
        for p in ps:
            set_grad(p, g[:p.shape[0]])
        opt.step()
    mc.save(opt.state_dict(), tmp_path / "opt.npz")
    for q, p in zip(qs, ps):
        q.array[...] = p.array
    opt2 = make(qs)
    opt2.load_state_dict(mc.load(tmp_path / "opt.npz"))
    for g in GRADS[3:]:
        for p, q in zip(ps, qs):
            set_grad(p, g[:p.shape[0]])
            set_grad(q, g[:q.shape[0]])
        opt.step()
        opt2.step()
    for p, q in zip(ps, qs):
        np.testing.assert_array_equal(p.numpy(), q.numpy())


def test_load_state_dict_checks_the_groups():
    opt = optim.SGD([param([1.0]), param([2.0])], lr=0.1)
    other = optim.SGD([param([1.0])], lr=0.1)
    with pytest.raises(ValueError, match="group 0 has 1 parameters but the saved group has 2"):
        other.load_state_dict(opt.state_dict())


def test_one_step_agrees_with_torch():
    torch = pytest.importorskip("torch")
    for name, kw in [("SGD", dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)),
                     ("Adam", dict(lr=0.01, amsgrad=True, weight_decay=0.1)), ("AdamW", dict(lr=0.01)),
                     ("RMSprop", dict(lr=0.01, momentum=0.9, centered=True))]:
        tp = torch.tensor(P0.astype(np.float32), requires_grad=True)
        mp = param(P0)
        topt, mopt = getattr(torch.optim, name)([tp], **kw), getattr(optim, name)([mp], **kw)
        for g in GRADS[:3]:
            tp.grad = torch.tensor(g.astype(np.float32))
            set_grad(mp, g)
            topt.step()
            mopt.step()
        np.testing.assert_allclose(mp.numpy(), tp.detach().numpy(), rtol=1e-6, atol=1e-6)


# -- learning-rate schedules -----------------------------------------------------------------

def lrs(make, n, lr=0.5):
    opt = optim.SGD([param([0.0])], lr=lr)
    sched = make(opt)
    out = []
    for _ in range(n):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return np.array(out), sched


def test_step_and_multistep():
    got, s = lrs(lambda o: L.StepLR(o, step_size=3, gamma=0.5), 8)
    np.testing.assert_allclose(got, [0.5 * 0.5 ** (t // 3) for t in range(8)])
    assert s.get_last_lr() == [0.5 * 0.5 ** 2]
    got, _ = lrs(lambda o: L.MultiStepLR(o, milestones=[4, 2], gamma=0.1), 6)
    np.testing.assert_allclose(got, [0.5, 0.5, 0.05, 0.05, 0.005, 0.005])


def test_cosine_annealing_closed_form():
    got, _ = lrs(lambda o: L.CosineAnnealingLR(o, T_max=10, eta_min=0.01), 11)
    want = [0.01 + 0.49 * (1 + math.cos(math.pi * t / 10)) / 2 for t in range(11)]
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert got[-1] == pytest.approx(0.01)


def test_linear_warmup_then_cosine():
    got, _ = lrs(lambda o: L.SequentialLR(o, [L.LinearLR(o, start_factor=0.1, total_iters=4),
                                              L.CosineAnnealingLR(o, T_max=6)], milestones=[4]), 10, lr=1.0)
    want = [0.1 + 0.9 * t / 4 for t in range(4)] + [(1 + math.cos(math.pi * t / 6)) / 2 for t in range(6)]
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_scheduler_scales_each_group_from_its_initial_lr():
    opt = optim.SGD([{"params": [param([0.0])]}, {"params": [param([0.0])], "lr": 1.0}], lr=0.1)
    s = L.StepLR(opt, 1, gamma=0.5)
    s.step()
    assert [g["lr"] for g in opt.param_groups] == [0.05, 0.5]


def test_scheduler_state_dict_round_trip(tmp_path):
    def make(o):
        return L.SequentialLR(o, [L.LinearLR(o, 0.2, total_iters=3), L.CosineAnnealingLR(o, 8)], [3])

    full, _ = lrs(make, 12)
    opt = optim.SGD([param([0.0])], lr=0.5)
    s = make(opt)
    for _ in range(5):
        s.step()
    mc.save(s.state_dict(), tmp_path / "s.npz")
    opt2 = optim.SGD([param([0.0])], lr=0.5)
    s2 = make(opt2)
    s2.load_state_dict(mc.load(tmp_path / "s.npz"))
    s2.step()
    assert opt2.param_groups[0]["lr"] == pytest.approx(full[6], rel=1e-15)


def test_scheduler_curves_agree_with_torch():
    torch = pytest.importorskip("torch")
    TL = torch.optim.lr_scheduler
    for mt, mm in [(lambda o: TL.StepLR(o, 3, 0.5), lambda o: L.StepLR(o, 3, 0.5)),
                   (lambda o: TL.CosineAnnealingLR(o, 7, 0.01), lambda o: L.CosineAnnealingLR(o, 7, 0.01)),
                   (lambda o: TL.SequentialLR(o, [TL.LinearLR(o, 0.1, total_iters=3), TL.CosineAnnealingLR(o, 9)], [3]),
                    lambda o: L.SequentialLR(o, [L.LinearLR(o, 0.1, total_iters=3), L.CosineAnnealingLR(o, 9)], [3]))]:
        topt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.5)
        ts, want = mt(topt), []
        for _ in range(12):
            want.append(topt.param_groups[0]["lr"])
            topt.step()
            ts.step()
        got, _ = lrs(mm, 12)
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)


# -- gradient clipping -----------------------------------------------------------------------

def test_clip_grad_norm_scales_to_max_norm():
    a, b = param([0.0, 0.0], grad=[3.0, 0.0]), param([0.0], grad=[4.0])
    shared = a.grad.array
    total = clip_grad_norm_([a, b], max_norm=1.0)
    assert total.item() == pytest.approx(5.0) and total.dtype == np.float32
    np.testing.assert_allclose(a.grad.numpy(), [0.6, 0.0], rtol=1e-5)
    np.testing.assert_allclose(b.grad.numpy(), [0.8], rtol=1e-5)
    assert shared[0] == 3.0  # the old gradient array was not written to


def test_clip_grad_norm_leaves_small_gradients_and_other_norms():
    a = param([0.0, 0.0], grad=[0.3, -0.4])
    assert clip_grad_norm_([a], 1.0).item() == pytest.approx(0.5)
    np.testing.assert_allclose(a.grad.numpy(), [0.3, -0.4])
    assert clip_grad_norm_([a], 10.0, norm_type=math.inf).item() == pytest.approx(0.4)
    assert clip_grad_norm_([a], 10.0, norm_type=1).item() == pytest.approx(0.7)
    a.grad = mc.tensor(np.array([np.nan, 1.0], np.float32))
    with pytest.raises(RuntimeError, match="total norm of order 2.0 of the gradients is nan"):
        clip_grad_norm_([a], 1.0, error_if_nonfinite=True)


def test_clip_grad_value():
    a = param([0.0, 0.0, 0.0], grad=[-3.0, 0.5, 2.0])
    clip_grad_value_([a], 1.0)
    np.testing.assert_array_equal(a.grad.numpy(), [-1.0, 0.5, 1.0])


# -- the CPU's fused one-pass updates (minicnn.cpu.optim) against the NumPy code, bit for bit -----

FUSED_CASES = [
    (optim.SGD, dict(lr=0.1)),
    (optim.SGD, dict(lr=0.1, momentum=0.9)),
    (optim.SGD, dict(lr=0.05, momentum=0.8, dampening=0.3, weight_decay=1e-2)),
    (optim.SGD, dict(lr=0.05, momentum=0.9, weight_decay=1e-3, nesterov=True, maximize=True)),
    (optim.Adam, dict(lr=1e-2)),
    (optim.Adam, dict(lr=1e-2, weight_decay=0.1, amsgrad=True)),
    (optim.AdamW, dict(lr=1e-2, betas=(0.8, 0.99), weight_decay=0.5)),
    (optim.AdamW, dict(lr=1e-2, amsgrad=True, maximize=True)),
]


def _run(opt_cls, kw, shape, dtype, steps=4):
    rng = np.random.default_rng(11)
    p = mc.tensor(rng.standard_normal(shape).astype(dtype), requires_grad=True)
    opt = opt_cls([p], **kw)
    for _ in range(steps):
        set_grad(p, rng.standard_normal(shape))
        opt.step()
    return p.array, opt.state_dict()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(3, 5), (70000,)])  # the serial and the multi-threaded kernel
@pytest.mark.parametrize("opt_cls, kw", FUSED_CASES)
def test_fused_cpu_update_matches_numpy_bit_for_bit(opt_cls, kw, shape, dtype, monkeypatch):
    import minicnn.cpu as cpu

    fused_p, fused_state = _run(opt_cls, kw, shape, dtype)
    monkeypatch.delattr(cpu, "sgd_step")
    monkeypatch.delattr(cpu, "adam_step")
    numpy_p, numpy_state = _run(opt_cls, kw, shape, dtype)
    assert fused_p.dtype == dtype
    np.testing.assert_array_equal(fused_p, numpy_p)
    assert fused_state["state"].keys() == numpy_state["state"].keys() == ({0} if opt_cls is not optim.SGD or kw.get("momentum") else set())
    a, b = fused_state["state"].get(0, {}), numpy_state["state"].get(0, {})
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
        assert np.asarray(a[k]).dtype == np.asarray(b[k]).dtype


def test_fused_sgd_takes_the_numpy_path_for_other_arrays():
    from minicnn.cpu import sgd_step

    p = np.ones((4, 4), np.float32)
    assert not sgd_step(p, np.ones((4, 4), np.float64), None, 0.1, 0, 0, 0, False, False)  # mixed dtypes
    assert not sgd_step(p, np.ones((4, 8), np.float32)[:, ::2], None, 0.1, 0, 0, 0, False, False)  # a view
    np.testing.assert_array_equal(p, 1)
    assert sgd_step(p, np.ones((4, 4), np.float32), None, 0.5, 0, 0, 0, False, False)
    np.testing.assert_array_equal(p, 0.5)


# -- schedules added for PyTorch's classic scripts (their formulas written out here) ------------

def _sgd(lr=0.1):
    import minicnn.nn as nn
    return optim.SGD(nn.Linear(2, 2).parameters(), lr=lr, momentum=0.9)


def _trace(opt, sched, steps, key="lr", metrics=None):
    values = [opt.param_groups[0][key]]
    for i in range(steps):
        opt.step()
        sched.step() if metrics is None else sched.step(metrics[i])
        values.append(opt.param_groups[0][key])
    return values


def test_one_cycle_follows_its_two_cosine_phases():
    opt = _sgd()
    sched = optim.lr_scheduler.OneCycleLR(opt, max_lr=1.0, total_steps=10)
    lrs = _trace(opt, sched, 9)
    cos = lambda a, b, p: b + (a - b) / 2 * (math.cos(math.pi * p) + 1)  # noqa: E731
    start, low = 1.0 / 25, 1.0 / 25 / 1e4
    want = [cos(start, 1.0, t / 2) for t in range(3)] + [cos(1.0, low, (t - 2) / 7) for t in range(3, 10)]
    np.testing.assert_allclose(lrs, want, rtol=1e-12)
    moms = _trace(*(lambda o: (o, optim.lr_scheduler.OneCycleLR(o, 1.0, total_steps=10)))(_sgd()), 9, "momentum")
    assert moms[0] == 0.95 and moms[2] == pytest.approx(0.85) and moms[-1] == pytest.approx(0.95)
    with pytest.raises(ValueError, match="stepped 11 times, but total_steps is 10"):
        sched.step()
    adam = optim.Adam(_sgd().param_groups[0]["params"], lr=0.1)
    optim.lr_scheduler.OneCycleLR(adam, max_lr=0.5, epochs=2, steps_per_epoch=3)
    assert adam.param_groups[0]["betas"][0] == 0.95 and adam.param_groups[0]["lr"] == pytest.approx(0.02)


def test_exponential_and_lambda_schedules():
    opt = _sgd()
    np.testing.assert_allclose(_trace(opt, optim.lr_scheduler.ExponentialLR(opt, 0.5), 4),
                               [0.1, 0.05, 0.025, 0.0125, 0.00625], rtol=1e-12)
    opt = _sgd()
    np.testing.assert_allclose(_trace(opt, optim.lr_scheduler.LambdaLR(opt, lambda e: 1 / (e + 1)), 3),
                               [0.1, 0.05, 0.1 / 3, 0.025], rtol=1e-12)


def test_reduce_on_plateau_waits_patience_epochs_then_cools_down():
    opt = _sgd()
    sched = optim.lr_scheduler.ReduceLROnPlateau(opt, patience=2, cooldown=1, factor=0.5)
    losses = [1.0, 0.9, 0.95, 0.95, 0.96, 0.97, 0.97, 0.97, 0.97, 0.97]
    lrs = _trace(opt, sched, len(losses), metrics=losses)
    # epochs 3, 4, 5 do not improve on 0.9: the third bad epoch halves the lr; one epoch of cooldown,
    # then three more bad ones halve it again
    assert lrs == [0.1, 0.1, 0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05, 0.025, 0.025]
    assert sched.get_last_lr() == [0.025]
    opt = _sgd()
    sched = optim.lr_scheduler.ReduceLROnPlateau(opt, mode="max", patience=0, min_lr=0.03, factor=0.1)
    assert _trace(opt, sched, 3, metrics=[0.5, 0.4, 0.3]) == [0.1, 0.1, pytest.approx(0.03), pytest.approx(0.03)]
    state = sched.state_dict()
    again = optim.lr_scheduler.ReduceLROnPlateau(_sgd(), mode="max")
    again.load_state_dict(state)
    assert again.best == 0.5 and again.min_lrs == [0.03]


def test_new_schedules_match_pytorch_when_available():
    torch = pytest.importorskip("torch")
    makers = [
        lambda o, lib: lib.optim.lr_scheduler.OneCycleLR(o, 1.0, epochs=3, steps_per_epoch=7, three_phase=True),
        lambda o, lib: lib.optim.lr_scheduler.ExponentialLR(o, 0.9),
        lambda o, lib: lib.optim.lr_scheduler.LambdaLR(o, lambda e: 0.95 ** e),
    ]
    import minicnn
    for make in makers:
        ours, theirs = _sgd(), torch.optim.SGD(torch.nn.Linear(2, 2).parameters(), lr=0.1, momentum=0.9)
        a, b = _trace(ours, make(ours, minicnn), 20), _trace(theirs, make(theirs, torch), 20)
        np.testing.assert_allclose(a, b, rtol=1e-12)


def _steps(opt_class, grads, w0, **kw):
    w = mc.tensor(w0.copy(), requires_grad=True)
    opt = opt_class([w], **kw)
    for g in grads:
        w.grad = mc.tensor(g)
        opt.step()
    return w.numpy()


def test_adagrad_and_adadelta_follow_their_formulas():
    rng = np.random.default_rng(0)
    w0, grads = rng.standard_normal(5), [rng.standard_normal(5) for _ in range(4)]
    w, acc = w0.copy(), np.full(5, 0.2)
    for t, g in enumerate(grads, 1):  # Adagrad with lr_decay and weight decay, written out
        g = g + 0.1 * w
        acc += g * g
        w = w - 0.1 / (1 + (t - 1) * 0.01) * g / (np.sqrt(acc) + 1e-10)
    got = _steps(optim.Adagrad, grads, w0, lr=0.1, lr_decay=0.01, weight_decay=0.1, initial_accumulator_value=0.2,
                 foreach=True)
    np.testing.assert_allclose(got, w, rtol=1e-12)
    w, s, u = w0.copy(), np.zeros(5), np.zeros(5)
    for g in grads:  # Adadelta, written out
        s = 0.8 * s + 0.2 * g * g
        delta = np.sqrt(u + 1e-6) / np.sqrt(s + 1e-6) * g
        u = 0.8 * u + 0.2 * delta * delta
        w = w - 0.5 * delta
    np.testing.assert_allclose(_steps(optim.Adadelta, grads, w0, lr=0.5, rho=0.8), w, rtol=1e-12)
    with pytest.raises(ValueError, match=r"invalid rho value: 1.5"):
        optim.Adadelta([mc.zeros(2, requires_grad=True)], rho=1.5)
    assert optim.SGD([mc.zeros(2, requires_grad=True)], lr=0.1, foreach=False)  # accepted, as PyTorch's


def test_adagrad_and_adadelta_match_pytorch_when_available():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    w0, grads = rng.standard_normal((3, 4)), [rng.standard_normal((3, 4)) for _ in range(5)]
    for name, kw in (("Adagrad", dict(lr=0.1, lr_decay=0.01, weight_decay=0.1)), ("Adadelta", dict(rho=0.85))):
        t = torch.tensor(w0.copy(), requires_grad=True)
        opt = getattr(torch.optim, name)([t], **kw)
        for g in grads:
            t.grad = torch.tensor(g)
            opt.step()
        np.testing.assert_allclose(_steps(getattr(optim, name), grads, w0, **kw), t.detach().numpy(), rtol=1e-12)
