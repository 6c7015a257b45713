"""nn.Module: registration, state_dict keys and round trip, strict loading errors,
train/eval, hooks, dtype conversion, containers, Linear and the initialisers."""
import math
from collections import OrderedDict

import numpy as np
import pytest

import minicnn as mc
import minicnn.nn as nn
import minicnn.nn.functional as F
from minicnn.nn import init


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 4)
        self.scale = nn.Parameter(np.ones(4, np.float32))
        self.register_buffer("running", np.zeros(4, np.float32))
        self.register_buffer("scratch", np.zeros(2, np.float32), persistent=False)
        self.plain = mc.tensor([1.0])  # a plain tensor attribute is not registered
        self.act = nn.Tanh()

    def forward(self, x):
        return self.act(self.fc(x)) * self.scale


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.block = Block()
        self.layers = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))
        self.heads = nn.ModuleList([nn.Linear(2, 1), nn.Linear(2, 1, bias=False)])

    def forward(self, x):
        h = self.layers(self.block(x))
        return self.heads[0](h) + self.heads[1](h)


KEYS = ["block.scale", "block.running", "block.fc.weight", "block.fc.bias", "layers.0.weight",
        "layers.0.bias", "layers.2.weight", "layers.2.bias", "heads.0.weight", "heads.0.bias", "heads.1.weight"]


def test_registration_and_traversal():
    net = Net()
    assert list(net.state_dict()) == KEYS
    names = [k for k, _ in net.named_parameters()]
    assert names == [k for k in KEYS if k != "block.running"]
    assert [k for k, _ in net.named_buffers()] == ["block.running", "block.scratch"]
    assert [k for k, _ in net.named_modules()] == [
        "", "block", "block.fc", "block.act", "layers", "layers.0", "layers.1", "layers.2", "heads",
        "heads.0", "heads.1"]
    assert [k for k, _ in net.named_children()] == ["block", "layers", "heads"]
    assert sum(p.numel() for p in net.parameters()) == (12 + 4 + 4) + (16 + 4 + 8 + 2) + (2 + 1 + 2)
    assert isinstance(net.block.plain, mc.Tensor) and "plain" not in dict(net.block.named_buffers())
    del net.block.scale
    assert "block.scale" not in net.state_dict()


def test_shared_parameters_are_listed_once_but_saved_under_every_key():
    a = nn.Linear(2, 2)
    seq = nn.Sequential(a, nn.ReLU(), a)
    assert len(list(seq.parameters())) == 2
    assert list(seq.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]


def test_assignment_rules():
    m = Block()
    with pytest.raises(TypeError, match="cannot assign ndarray to parameter 'scale'"):
        m.scale = np.ones(4)
    m.scale = None
    assert "scale" not in m.state_dict()
    m.running = np.ones(4, np.float32)  # buffers accept arrays
    assert isinstance(m.running, mc.Tensor) and m.state_dict()["running"].sum() == 4

    class NoInit(nn.Module):
        def __init__(self):
            self.w = 1

    with pytest.raises(AttributeError, match="call super\\(\\).__init__\\(\\)"):
        NoInit()
    with pytest.raises(AttributeError, match="'Block' object has no attribute 'nope'"):
        m.nope


def test_state_dict_round_trip_reproduces_outputs():
    mc.manual_seed(0)
    src, dst = Net(), Net()
    x = mc.randn(5, 3)
    sd = src.state_dict()
    assert all(isinstance(v, np.ndarray) for v in sd.values())
    sd["block.fc.weight"][...] = 0  # a copy: changing it does not touch the model
    assert np.abs(src.block.fc.weight.numpy()).sum() > 0
    sd = src.state_dict()
    params_before = [id(p) for p in dst.parameters()]
    result = dst.load_state_dict(sd)
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert [id(p) for p in dst.parameters()] == params_before  # optimizers keep working
    np.testing.assert_array_equal(dst(x).numpy(), src(x).numpy())
    dst.load_state_dict({k: mc.tensor(v, dtype=mc.float64) for k, v in sd.items()})  # Tensors, cast back
    assert dst.block.fc.weight.dtype == np.float32


def test_load_state_dict_strict_errors_name_keys_and_shapes():
    net = Net()
    sd = net.state_dict()
    bad = dict(sd)
    bad["layers.0.weight"] = np.zeros((4, 5), np.float32)
    with pytest.raises(RuntimeError, match=r"size mismatch for layers.0.weight: copying a param with shape "
                                           r"\(4, 5\) from checkpoint, the shape in current model is \(4, 4\)"):
        net.load_state_dict(bad)
    with pytest.raises(RuntimeError, match=r"size mismatch for layers.0.weight"):
        net.load_state_dict(bad, strict=False)  # shapes are checked even when not strict
    missing = {k: v for k, v in sd.items() if k != "heads.0.bias"}
    with pytest.raises(RuntimeError, match=r"missing keys: heads.0.bias"):
        net.load_state_dict(missing)
    extra = dict(sd, **{"head.extra": np.zeros(1)})
    with pytest.raises(RuntimeError, match=r"unexpected keys: head.extra"):
        net.load_state_dict(extra)
    before = net.heads[0].bias.numpy().copy()
    result = net.load_state_dict({**missing, "head.extra": np.zeros(1)}, strict=False)
    assert result.missing_keys == ["heads.0.bias"] and result.unexpected_keys == ["head.extra"]
    np.testing.assert_array_equal(net.heads[0].bias.numpy(), before)


def test_train_eval_propagates():
    net = Net()
    assert net.training and net.block.act.training
    assert net.eval() is net
    assert not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())
    net.block.train(False)
    assert net.training and not net.block.fc.training


def test_forward_hooks_see_and_may_replace_inputs_and_outputs():
    lin = nn.Linear(2, 2)
    seen = []
    h1 = lin.register_forward_hook(lambda m, args, out: seen.append((m, args[0].shape, out.shape)))
    h2 = lin.register_forward_hook(lambda m, args, out: out * 0)
    h3 = lin.register_forward_pre_hook(lambda m, args: (args[0] * 2,))
    x = mc.ones(3, 2)
    y = lin(x)
    assert seen == [(lin, (3, 2), (3, 2))] and np.all(y.numpy() == 0)
    h2.remove()
    h3.remove()
    np.testing.assert_allclose(lin(x).numpy(), F.linear(x, lin.weight, lin.bias).numpy())
    h1.remove()
    lin(x)
    assert len(seen) == 2


def test_to_dtype_casts_parameters_buffers_and_grads_in_place():
    net = Net()
    net.block.register_buffer("steps", np.array(3))  # integer buffers keep their dtype
    params = list(net.parameters())
    net(mc.randn(2, 3)).sum().backward()
    assert net.to(mc.float64) is net
    assert all(a is b for a, b in zip(net.parameters(), params))
    assert all(p.dtype == np.float64 and p.grad.dtype == np.float64 for p in net.parameters())
    assert net.block.running.dtype == np.float64 and net.block.steps.dtype == np.int64
    y = net(mc.randn(2, 3, dtype=mc.float64))
    assert y.dtype == np.float64
    net.float()
    assert all(p.dtype == np.float32 for p in net.parameters())
    net.to(dtype=mc.float64)
    assert net.block.fc.weight.dtype == np.float64
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        net.to("tpu")


def test_zero_grad_and_requires_grad_():
    lin = nn.Linear(2, 2)
    lin(mc.ones(1, 2)).sum().backward()
    lin.zero_grad(set_to_none=False)
    assert np.all(lin.weight.grad.numpy() == 0)
    lin.zero_grad()
    assert lin.weight.grad is None
    lin.requires_grad_(False)
    assert not lin(mc.ones(1, 2)).requires_grad


def test_containers():
    seq = nn.Sequential(OrderedDict([("conv", nn.Linear(2, 3)), ("act", nn.ReLU())]))
    assert list(seq.state_dict()) == ["conv.weight", "conv.bias"]
    assert len(seq) == 2 and isinstance(seq[-1], nn.ReLU) and isinstance(seq[:1], nn.Sequential)
    seq.append(nn.Linear(3, 1))
    assert list(seq.state_dict())[-1] == "2.bias"
    ml = nn.ModuleList([nn.ReLU()]).extend([nn.Tanh()])
    assert [type(m).__name__ for m in ml] == ["ReLU", "Tanh"]
    md = nn.ModuleDict({"a": nn.Linear(1, 1)})
    md["b"] = nn.Linear(1, 2)
    md.update({"c": nn.ReLU()})
    assert "b" in md and list(md.keys()) == ["a", "b", "c"]
    assert list(md.state_dict()) == ["a.weight", "a.bias", "b.weight", "b.bias"]
    assert "(0): ReLU()" in repr(ml) and "Linear(in_features=1, out_features=2, bias=True)" in repr(md)


def test_linear_matches_numpy_and_gradchecks():
    lin = nn.Linear(4, 3).double()
    x = mc.tensor(np.random.default_rng(0).standard_normal((2, 5, 4)), requires_grad=True)
    y = lin(x)
    np.testing.assert_allclose(y.numpy(), x.numpy() @ lin.weight.numpy().T + lin.bias.numpy(), rtol=1e-13)
    assert mc.gradcheck(lambda x, w, b: F.linear(x, w, b), [x, lin.weight, lin.bias])
    no_bias = nn.Linear(4, 3, bias=False)
    assert no_bias.bias is None and list(no_bias.state_dict()) == ["weight"]
    assert nn.Linear(2, 2, dtype=mc.float64).weight.dtype == np.float64


def test_linear_initialisation_follows_pytorch():
    mc.manual_seed(0)
    lin = nn.Linear(300, 200)
    bound = 1 / math.sqrt(300)  # kaiming_uniform(a=sqrt(5)) gives the same bound for the weight
    w, b = lin.weight.numpy(), lin.bias.numpy()
    assert w.dtype == np.float32 and np.abs(w).max() <= bound and np.abs(w).max() > 0.98 * bound
    assert np.abs(b).max() <= bound and abs(w.std() - bound / math.sqrt(3)) < 0.01 * bound


def test_init_functions():
    mc.manual_seed(0)
    t = nn.Parameter(np.empty((400, 300), np.float32))
    assert init.calculate_fan_in_and_fan_out(mc.zeros(8, 4, 3, 3)) == (36, 72)
    init.kaiming_normal_(t, mode="fan_out", nonlinearity="relu")
    assert t.dtype == np.float32 and abs(t.numpy().std() - math.sqrt(2 / 400)) < 2e-3
    init.xavier_uniform_(t)
    assert np.abs(t.numpy()).max() <= math.sqrt(6 / 700)
    init.trunc_normal_(t, std=1.0, a=-0.5, b=0.5)
    assert np.abs(t.numpy()).max() <= 0.5
    init.constant_(t, 0.25)
    assert np.all(t.numpy() == 0.25)
    assert init.calculate_gain("leaky_relu", 0.2) == pytest.approx(math.sqrt(2 / 1.04))
    with pytest.raises(ValueError, match="fan in/out need a tensor with at least 2 dims"):
        init.xavier_uniform_(mc.zeros(3))
    with pytest.raises(ValueError, match="unsupported nonlinearity 'swish'"):
        init.calculate_gain("swish")
