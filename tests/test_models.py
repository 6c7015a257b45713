"""The model zoo: the models build with the published parameter counts, run forward at a
small input, train (forward + backward) in every family, initialise as torchvision, and
refuse state dicts of the wrong shape by name.

Parameter counts, GMACs and native-size output shapes of every reference model are checked
through ``summary`` in test_summary.py. Equality of logits with torchvision is at the end
(skipped without torch).
"""
import math

import numpy as np
import pytest

import minicnn as mc
import minicnn.models as models
import minicnn.nn as nn
import minicnn.nn.functional as F
from minicnn.models.enet import DownsamplingBottleneck, UpsamplingBottleneck
from minicnn.models.googlenet import GoogLeNetOutputs

ALL = ["alexnet", "alexnet_two_stream", "alexnet_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn",
       "googlenet", "inception_v3", "inception_v4", "nin_bn", "resnet18", "resnet34", "resnet50",
       "resnet101", "resnet152", "enet", "unet", "unet_same", "xception"]

# (name, keyword arguments, parameters, small input (C, H, W), output shape per image).
# Parameter counts: the reference table (models.REFERENCE) plus torchvision's figures for the
# variants it does not list. Small inputs are about the smallest each design accepts.
CASES = [
    ("alexnet", {}, 61_100_840, (3, 64, 64), (1000,)),
    ("alexnet_two_stream", {}, 60_965_224, (3, 67, 67), (1000,)),
    ("vgg16_bn", {}, 138_365_992, (3, 32, 32), (1000,)),
    ("vgg19_bn", {}, 143_678_248, (3, 32, 32), (1000,)),
    ("googlenet", {"aux_logits": False}, 6_624_904, (3, 32, 32), (1000,)),
    ("googlenet", {"aux_logits": True}, 13_004_888, (3, 32, 32), (1000,)),
    ("inception_v3", {"aux_logits": True}, 27_161_264, (3, 75, 75), (1000,)),
    ("inception_v3", {"aux_logits": False}, 23_834_568, (3, 75, 75), (1000,)),
    ("inception_v4", {}, 42_679_816, (3, 75, 75), (1000,)),
    ("nin_bn", {}, 8_655_336, (3, 32, 32), (1000,)),
    ("resnet18", {}, 11_689_512, (3, 32, 32), (1000,)),
    ("resnet34", {}, 21_797_672, (3, 32, 32), (1000,)),
    ("resnet50", {}, 25_557_032, (3, 32, 32), (1000,)),
    ("enet", {"num_classes": 19}, 364_311, (3, 32, 48), (19, 32, 48)),
    # valid convs trim every level's borders: 188 -> 4 at depth 5 (572 -> 388 natively)
    ("unet", {"base_width": 16}, 1_940_834, (1, 188, 188), (2, 4, 4)),
    ("unet_same", {"in_channels": 1, "num_classes": 1}, 31_031_685, (1, 48, 32), (1, 48, 32)),
    ("xception", {}, 22_855_952, (3, 64, 64), (1000,)),  # 31, 29, 15, 8, 4, 2 pixels
]
SLOW = {"vgg16_bn", "vgg19_bn"}
# Every model of the reference table is also built, counted and run on one image at its native
# size (output shape checked) in test_summary.py::test_zoo_totals_match_the_reference; the few
# left out here (vgg16, vgg19, resnet101, resnet152, the full-width unet) are only run there, and
# alexnet_bn at a small input in the training test below.

def n_params(model):
    return sum(p.array.size for p in model.parameters())


def image(size, batch=1, seed=0):
    return mc.tensor(np.random.default_rng(seed).standard_normal((batch, *size)).astype(np.float32))


def run(model, x):
    model.eval()
    with mc.no_grad():
        return model(x)


# -- registry ------------------------------------------------------------------------------
def test_registry_lists_every_model_and_builds_by_name():
    assert models.list_models() == sorted(ALL)
    assert set(models.REFERENCE) <= set(ALL)
    net = models.get_model("resnet18", num_classes=7)
    assert isinstance(net, models.ResNet) and net.fc.weight.shape == (7, 512)
    for name in ALL:
        assert getattr(models, name) is models._MODELS[name]


def test_get_model_unknown_name_suggests_close_ones():
    with pytest.raises(ValueError, match=r"unknown model 'resnet19'.*resnet18"):
        models.get_model("resnet19")


# -- every model: parameter count and a forward pass at a small input -------------------------
def _case_id(case):
    return case[0] + "".join(f"-{k}={v}" for k, v in case[1].items() if k == "aux_logits")


@pytest.mark.parametrize("case", [pytest.param(c, marks=pytest.mark.slow) if c[0] in SLOW else c
                                  for c in CASES], ids=_case_id)
def test_parameter_count_and_small_forward(case):
    name, kwargs, params, size, out_shape = case
    net = models.get_model(name, **kwargs)
    assert n_params(net) == params
    y = run(net, image(size, batch=2))
    assert y.shape == (2, *out_shape)
    assert y.dtype == np.float32 and np.isfinite(y.numpy()).all()


def test_every_model_has_a_case():
    assert {c[0] for c in CASES} | set(models.REFERENCE) == set(ALL)
    for name, kwargs, params, *_ in CASES:
        if name in models.REFERENCE and kwargs == models.REFERENCE[name][0]:
            assert params == models.REFERENCE[name][2]


# -- training: forward + backward reaches every parameter ------------------------------------
def _loss(out):
    outs = [o for o in (out if isinstance(out, tuple) else (out,)) if o is not None]
    return sum(((o * o).mean() for o in outs[1:]), (outs[0] * outs[0]).mean())


TRAIN = {  # one per family (both block types for ResNet, both U-Nets)
    "alexnet_two_stream": ({"num_classes": 4}, (3, 67, 67)),
    "alexnet_bn": ({"num_classes": 4}, (3, 64, 64)),
    "vgg16_bn": ({"num_classes": 4, "init_weights": False}, (3, 32, 32)),
    "googlenet": ({"num_classes": 4, "aux_logits": True}, (3, 64, 64)),
    "inception_v3": ({"num_classes": 4, "aux_logits": False}, (3, 75, 75)),
    "inception_v4": ({"num_classes": 4}, (3, 75, 75)),
    "nin_bn": ({"num_classes": 4}, (3, 32, 32)),
    "resnet18": ({"num_classes": 4}, (3, 32, 32)),
    "resnet50": ({"num_classes": 4}, (3, 32, 32)),
    "enet": ({"num_classes": 3}, (3, 32, 32)),
    "unet": ({"base_width": 4, "depth": 3}, (1, 44, 44)),
    "unet_same": ({"base_width": 4, "depth": 3}, (1, 16, 16)),
    "xception": ({"num_classes": 4}, (3, 64, 64)),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(TRAIN))
def test_forward_backward_reaches_every_parameter(name):
    kwargs, size = TRAIN[name]
    net = models.get_model(name, **kwargs).train()
    out = net(image(size, batch=2))
    if name == "googlenet":  # training mode returns the auxiliary logits too
        assert isinstance(out, GoogLeNetOutputs)
        assert all(o.shape == (2, 4) for o in out)
    _loss(out).backward()
    for pname, p in net.named_parameters():
        assert p.grad is not None, f"{name}: no gradient for {pname}"
        assert p.grad.shape == p.shape and np.isfinite(p.grad.numpy()).all(), pname
    assert any(np.abs(p.grad.numpy()).max() > 0 for p in net.parameters())


def test_inception_v3_aux_head_trains_on_the_17x17_grid():
    net = models.inception_v3(num_classes=4, aux_logits=True, init_weights=False)
    aux = net.AuxLogits.train()
    out = aux(image((768, 17, 17), batch=2))
    assert out.shape == (2, 4)
    (out * out).mean().backward()
    assert all(p.grad is not None for p in aux.parameters())
    assert net.fc.weight.grad is None  # the head is separate from the main path


def test_eval_mode_returns_only_logits():
    net = models.googlenet(num_classes=3, aux_logits=True, init_weights=False)
    assert run(net, image((3, 32, 32))).shape == (1, 3)


# -- model-specific behaviour -----------------------------------------------------------------
def test_googlenet_transform_input_renormalises_channels():
    a = models.googlenet(num_classes=5, aux_logits=False, transform_input=True)
    b = models.googlenet(num_classes=5, aux_logits=False, transform_input=False)
    b.load_state_dict(a.state_dict())
    x = image((3, 32, 32), batch=2).numpy()
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    x_t = (x * (std / 0.5)[:, None, None] + ((mean - 0.5) / 0.5)[:, None, None]).astype(np.float32)
    np.testing.assert_allclose(run(a, mc.tensor(x)).numpy(), run(b, mc.tensor(x_t)).numpy(),
                               rtol=1e-5, atol=1e-6)


def test_two_stream_alexnet_layout_and_paper_init():
    net = models.alexnet_two_stream()
    convs = [m for m in net.features if isinstance(m, nn.Conv2d)]
    assert [c.groups for c in convs] == [1, 2, 1, 2, 2]
    assert [tuple(c.weight.shape) for c in convs] == [
        (96, 3, 11, 11), (256, 48, 5, 5), (384, 256, 3, 3), (384, 192, 3, 3), (256, 192, 3, 3)]
    lrn = [m for m in net.features if isinstance(m, nn.LocalResponseNorm)]
    assert len(lrn) == 2
    assert [float(c.bias.numpy()[0]) for c in convs] == [0.0, 1.0, 0.0, 1.0, 1.0]
    assert abs(float(convs[2].weight.numpy().std()) - 0.01) < 5e-4


def test_resnet_init_follows_torchvision():
    net = models.resnet18(zero_init_residual=True)
    w = net.layer3[0].conv2.weight.numpy()  # (256, 256, 3, 3), fan_out = 256 * 9
    assert abs(w.std() - math.sqrt(2.0 / (256 * 9))) < 0.02 * math.sqrt(2.0 / (256 * 9))
    assert (net.bn1.weight.numpy() == 1).all() and (net.bn1.bias.numpy() == 0).all()
    assert (net.layer1[0].bn2.weight.numpy() == 0).all()  # zero_init_residual
    assert net.layer2[0].conv1.stride == (2, 2) and net.layer2[0].downsample is not None


def test_resnet50_stride_is_on_the_3x3_conv():
    block = models.resnet50().layer3[0]
    assert block.conv1.stride == (1, 1) and block.conv2.stride == (2, 2)


def test_enet_rejects_sizes_not_divisible_by_8():
    with pytest.raises(ValueError, match="multiples of 8"):
        run(models.enet(), image((3, 36, 32)))


def test_enet_decoder_unpools_at_the_encoder_argmax():
    # UpsamplingBottleneck's shortcut puts each value where the encoder's pool found its max
    down, up = DownsamplingBottleneck(4, 8).eval(), UpsamplingBottleneck(8, 4).eval()
    x = image((4, 8, 8))
    with mc.no_grad():
        _, idx = down(x)
        main = up.unpool(up.main_bn(up.main_conv(mc.tensor(np.ones((1, 8, 4, 4), np.float32)))), idx)
    pooled_from = (main.numpy() != 0)
    expected = np.zeros((1, 4, 64), bool)
    np.put_along_axis(expected, idx.numpy().reshape(1, 4, 16), True, axis=2)
    assert pooled_from.shape == (1, 4, 8, 8)
    assert (pooled_from.reshape(1, 4, 64) == expected).all()


def test_unet_valid_crops_the_skip_and_same_keeps_the_size():
    valid = models.unet(base_width=4)
    assert run(valid, image((1, 204, 236))).shape == (1, 2, 204 - 184, 236 - 184)
    same = models.unet(base_width=4, padding="same", num_classes=3)
    assert run(same, image((1, 32, 48))).shape == (1, 3, 32, 48)
    with pytest.raises(ValueError, match="padding"):
        models.unet(padding="full")


def unet_params(width, cin=1, classes=2, depth=5):
    """Hand count: two 3x3 convs per level down; per step up a 2x2 up-conv and two 3x3 convs
    (the first reading the concatenation); a 1x1 head. All convs have a bias."""
    widths = [width * 2 ** i for i in range(depth)]
    total, c = 0, cin
    for w in widths:
        total += (c * 9 + 1) * w + (w * 9 + 1) * w
        c = w
    for big, w in zip(widths[:0:-1], widths[-2::-1]):
        total += (big * 4 + 1) * w + (2 * w * 9 + 1) * w + (w * 9 + 1) * w
    return total + (widths[0] + 1) * classes


def test_unet_parameter_count_formula():
    assert unet_params(64) == 31_030_658  # the paper's network (reference table)
    assert unet_params(16) == 1_940_834
    for kw in ({"base_width": 8, "depth": 3, "in_channels": 3, "num_classes": 5},
               {"base_width": 4, "depth": 6}):
        net = models.unet(**kw)
        assert n_params(net) == unet_params(kw["base_width"], kw.get("in_channels", 1),
                                            kw.get("num_classes", 2), kw["depth"])


def test_unet_is_configurable():
    net = models.unet(in_channels=3, num_classes=5, base_width=8, depth=4)
    assert len(net.down) == 4 and len(net.up) == 3
    assert net.down[0].conv1.weight.shape == (8, 3, 3, 3)
    assert net.down[3].conv2.weight.shape == (64, 64, 3, 3)
    assert net.head[-1].weight.shape == (5, 8, 1, 1)


# -- state dicts ---------------------------------------------------------------------------
def test_state_dict_round_trip_gives_identical_outputs():
    a, b = models.resnet18(num_classes=10), models.resnet18(num_classes=10)
    x = image((3, 32, 32), batch=2)
    assert not np.allclose(run(a, x).numpy(), run(b, x).numpy())
    b.load_state_dict(a.state_dict(), strict=True)
    np.testing.assert_array_equal(run(a, x).numpy(), run(b, x).numpy())


def test_wrong_shape_in_state_dict_names_key_and_both_shapes():
    net = models.resnet18()
    sd = net.state_dict()
    sd["layer2.0.conv1.weight"] = np.zeros((128, 64, 5, 5), np.float32)
    with pytest.raises(RuntimeError, match=r"layer2\.0\.conv1\.weight.*\(128, 64, 5, 5\).*\(128, 64, 3, 3\)"):
        net.load_state_dict(sd)


def test_missing_and_unexpected_keys_are_named():
    net = models.nin_bn()
    sd = net.state_dict()
    del sd["features.2.layers.4.running_var"]
    with pytest.raises(RuntimeError, match=r"missing keys: features\.2\.layers\.4\.running_var"):
        net.load_state_dict(sd)
    sd = net.state_dict()
    sd["fc.weight"] = np.zeros((1000, 1024), np.float32)
    with pytest.raises(RuntimeError, match=r"unexpected keys: fc\.weight"):
        net.load_state_dict(sd)
    assert net.load_state_dict(sd, strict=False).unexpected_keys == ["fc.weight"]


def test_torchvision_key_names():
    keys = list(models.inception_v3().state_dict())
    assert keys[:3] == ["Conv2d_1a_3x3.conv.weight", "Conv2d_1a_3x3.bn.weight", "Conv2d_1a_3x3.bn.bias"]
    assert "AuxLogits.conv1.conv.weight" in keys and keys[-2:] == ["fc.weight", "fc.bias"]
    keys = list(models.googlenet(aux_logits=False).state_dict())
    assert "inception4e.branch4.1.conv.weight" in keys and "aux1.fc1.weight" not in keys
    keys = list(models.inception_v4().state_dict())
    assert keys[0] == "features.0.conv.weight" and keys[-1] == "last_linear.bias"
    assert "features.21.branch2_3b.bn.num_batches_tracked" in keys


# -- against torchvision / timm (extras: skipped where torch is not installed) -------------------
def _torch_parity(torch_model, net, size):
    """Load the torch model's state dict into ``net`` (strict) and compare eval-mode logits."""
    torch = pytest.importorskip("torch")
    g = torch.Generator().manual_seed(0)
    for m in torch_model.modules():  # non-trivial BatchNorm statistics and affine parameters
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.array.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.array.copy_(torch.randn(m.num_features, generator=g) * 0.1)
    torch_model.eval()
    state = {k: v.detach().numpy() for k, v in torch_model.state_dict().items()}
    net.load_state_dict(state, strict=True)
    assert list(net.state_dict()) == list(state)
    x = image(size, batch=2).numpy()
    with torch.no_grad():
        ref = torch_model(torch.from_numpy(x)).numpy()
    out = run(net, mc.tensor(x)).numpy()
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-5 * np.abs(ref).max())


@pytest.mark.slow
@pytest.mark.parametrize("name", ["googlenet", "resnet18"])
def test_matches_torchvision(name):
    # quick members only; every torchvision/timm model was compared at its native size during
    # development (max abs logit difference at float32 round-off, see the zoo's README section)
    pytest.importorskip("torch")
    tv = pytest.importorskip("torchvision.models")
    kwargs = {"googlenet": {"aux_logits": True, "transform_input": True, "init_weights": True}}.get(name, {})
    _torch_parity(getattr(tv, name)(**kwargs), models.get_model(name, **kwargs), (3, 48, 48))


# -- Xception in timm's legacy_xception layout ---------------------------------------------------
def timm_xception_layout(num_classes=1000):
    """(key, shape) of every entry of timm's legacy_xception state dict, in order, written from
    timm's definition (timm/models/xception.py), not from minicnn's model."""
    entries = []

    def conv(name, cout, cin, k):
        entries.append((f"{name}.weight", (cout, cin, k, k)))

    def bn(name, c):
        entries.extend([(f"{name}.weight", (c,)), (f"{name}.bias", (c,)), (f"{name}.running_mean", (c,)),
                        (f"{name}.running_var", (c,)), (f"{name}.num_batches_tracked", ())])

    def separable(name, cin, cout):
        conv(f"{name}.conv1", cin, 1, 3)  # depthwise: groups = cin
        conv(f"{name}.pointwise", cout, cin, 1)

    def block(name, cin, cout, reps, stride, start_with_relu=True, grow_first=True):
        if cout != cin or stride != 1:  # registered first in timm's __init__
            conv(f"{name}.skip", cout, cin, 1)
            bn(f"{name}.skipbn", cout)
        rep = []  # timm's list: ReLU, SeparableConv2d, BatchNorm2d per rep
        for i in range(reps):
            if grow_first:
                a, b = (cin if i == 0 else cout), cout
            else:
                a, b = cin, (cin if i < reps - 1 else cout)
            rep += [("relu",), ("sep", a, b), ("bn", b)]
        if not start_with_relu:
            rep = rep[1:]
        for index, layer in enumerate(rep):
            if layer[0] == "sep":
                separable(f"{name}.rep.{index}", layer[1], layer[2])
            elif layer[0] == "bn":
                bn(f"{name}.rep.{index}", layer[1])

    conv("conv1", 32, 3, 3)
    bn("bn1", 32)
    conv("conv2", 64, 32, 3)
    bn("bn2", 64)
    block("block1", 64, 128, 2, 2, start_with_relu=False)
    block("block2", 128, 256, 2, 2)
    block("block3", 256, 728, 2, 2)
    for i in range(4, 12):
        block(f"block{i}", 728, 728, 3, 1)
    block("block12", 728, 1024, 2, 2, grow_first=False)
    separable("conv3", 1024, 1536)
    bn("bn3", 1536)
    separable("conv4", 1536, 2048)
    bn("bn4", 2048)
    entries += [("fc.weight", (num_classes, 2048)), ("fc.bias", (num_classes,))]
    return entries


def timm_xception_forward(sd, x):
    """legacy_xception's eval-mode forward on a state dict, written from timm's code with the
    functional ops and the reference convolution (an oracle independent of minicnn's model)."""
    def t(key):
        return mc.tensor(sd[key])

    def bn(name, v):
        return F.batch_norm(v, t(f"{name}.running_mean"), t(f"{name}.running_var"), t(f"{name}.weight"),
                            t(f"{name}.bias"), training=False)

    def separable(name, v):
        v = F.conv2d(v, t(f"{name}.conv1.weight"), padding=1, groups=v.shape[1])
        return F.conv2d(v, t(f"{name}.pointwise.weight"))

    def block(name, v, reps, stride, start_with_relu=True):
        inp, index = v, 0
        for r in range(reps):
            if r > 0 or start_with_relu:
                v, index = F.relu(v), index + 1
            v, index = separable(f"{name}.rep.{index}", v), index + 1
            v, index = bn(f"{name}.rep.{index}", v), index + 1
        if stride != 1:
            v = F.max_pool2d(v, 3, stride, 1)
        skip = bn(f"{name}.skipbn", F.conv2d(inp, t(f"{name}.skip.weight"), stride=stride)) \
            if f"{name}.skip.weight" in sd else inp
        return v + skip

    with mc.no_grad(), mc.backends.conv_algorithm("reference"):
        v = F.relu(bn("bn1", F.conv2d(x, t("conv1.weight"), stride=2)))
        v = F.relu(bn("bn2", F.conv2d(v, t("conv2.weight"))))
        v = block("block1", v, 2, 2, start_with_relu=False)
        v = block("block2", v, 2, 2)
        v = block("block3", v, 2, 2)
        for i in range(4, 12):
            v = block(f"block{i}", v, 3, 1)
        v = block("block12", v, 2, 2)
        v = F.relu(bn("bn3", separable("conv3", v)))
        v = F.relu(bn("bn4", separable("conv4", v)))
        return F.linear(F.adaptive_avg_pool2d(v, 1).flatten(1), t("fc.weight"), t("fc.bias"))


@pytest.mark.slow
def test_xception_loads_a_timm_state_dict_and_computes_timms_logits():
    layout = timm_xception_layout(num_classes=10)
    assert sum(int(np.prod(s)) for k, s in layout if "running" not in k and "num_batches" not in k) \
        == 22_855_952 - 2048 * 990 - 990  # the 1000-class count, less 990 classes of fc
    rng = np.random.default_rng(0)
    sd = {}
    for key, shape in layout:
        if key.endswith("num_batches_tracked"):
            sd[key] = np.array(7, np.int64)
        elif key.endswith("running_var") or (key.endswith(".weight") and len(shape) == 1):
            sd[key] = rng.uniform(0.5, 1.5, shape).astype(np.float32)
        else:
            fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 10
            sd[key] = (rng.standard_normal(shape) / np.sqrt(fan_in)).astype(np.float32)
    net = models.xception(num_classes=10)
    assert [(k, v.shape) for k, v in net.state_dict().items()] == [(k, tuple(s)) for k, s in layout]
    net.load_state_dict(sd, strict=True)
    x = image((3, 71, 71), batch=2)
    out, ref = run(net, x).numpy(), timm_xception_forward(sd, x).numpy()
    assert np.abs(out - ref).max() <= 1e-4 * np.abs(ref).max()


def test_xception_separable_convolution_is_depthwise_then_pointwise():
    from minicnn.models.xception import SeparableConv2d

    sep = SeparableConv2d(8, 16, 3, padding=1)
    assert sep.conv1.weight.shape == (8, 1, 3, 3) and sep.conv1.groups == 8 and sep.conv1.bias is None
    assert sep.pointwise.weight.shape == (16, 8, 1, 1) and sep.pointwise.bias is None
    x = image((8, 6, 5))
    want = F.conv2d(F.conv2d(x, sep.conv1.weight, padding=1, groups=8), sep.pointwise.weight)
    np.testing.assert_allclose(run(sep, x).numpy(), want.numpy(), rtol=1e-6, atol=1e-6)


@pytest.mark.slow
def test_xception_matches_timm_legacy_xception():
    pytest.importorskip("torch")
    timm = pytest.importorskip("timm")
    _torch_parity(timm.create_model("legacy_xception", pretrained=False), models.xception(), (3, 71, 71))
