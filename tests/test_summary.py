"""``minicnn.summary``: per-layer MACs by the hand formulas, totals equal to the published
figures for every model of the zoo, the table, and the training-memory estimate."""
import numpy as np
import pytest

import minicnn as mc
import minicnn.models as models
import minicnn.nn as nn
from minicnn.summary import ModelSummary, max_batch_size, summary

SLOW = {"vgg16", "vgg19", "unet", "unet_same", "inception_v4", "resnet152", "resnet101", "inception_v3"}
NATIVE_OUT = {"enet": (19, 512, 512), "unet": (2, 388, 388), "unet_same": (1, 256, 256)}


# -- MACs of single layers, by hand ------------------------------------------------------------
def test_conv_macs_equal_the_hand_formula():
    # grouped, strided, padded, non-square kernel and image
    conv = nn.Conv2d(6, 4, (3, 5), stride=2, padding=1, groups=2)
    s = summary(conv, (6, 11, 13))
    oh, ow = (11 + 2 - 3) // 2 + 1, (13 + 2 - 5) // 2 + 1          # 6, 6
    assert s.layers[0].output_shape == (4, oh, ow)
    assert s.total_macs == 4 * oh * ow * (6 // 2) * 3 * 5              # 2,160
    assert s.total_params == 4 * 3 * 3 * 5 + 4


def test_transposed_conv_and_linear_macs():
    up = nn.ConvTranspose2d(8, 6, 3, stride=2, padding=1, output_padding=1, groups=2)
    s = summary(up, (8, 5, 7))
    assert s.layers[0].output_shape == (6, 10, 14)
    assert s.total_macs == (8 * 5 * 7) * (6 // 2) * 3 * 3               # each input pixel scatters a kernel
    s = summary(nn.Sequential(nn.Flatten(), nn.Linear(12, 5), nn.ReLU(), nn.Linear(5, 3)), (3, 2, 2))
    assert [r.macs for r in s.layers] == [0, 12 * 5, 0, 5 * 3]
    assert [r.params for r in s.layers] == [0, 65, 0, 18]


def test_vgg_first_conv_row():
    s = summary(nn.Sequential(nn.Conv2d(3, 64, 3, padding=1), nn.ReLU()), (3, 224, 224))
    assert s.layers[0].macs == 64 * 224 * 224 * 3 * 3 * 3 == 86_704_128
    assert s.layers[0].output_bytes == 64 * 224 * 224 * 4


# -- the zoo against the published figures -------------------------------------------------------
@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n
                                  for n in models.REFERENCE])
def test_zoo_totals_match_the_reference(name):
    kwargs, size, params, gmacs, _ = models.REFERENCE[name]
    s = summary(models.get_model(name, **kwargs), size)
    assert s.total_params == params
    assert s.trainable_params == params and s.non_trainable_params == 0
    assert abs(s.gmacs - gmacs) <= 0.005 * gmacs, f"{name}: {s.gmacs:.3f} GMACs vs {gmacs}"
    assert s.layers[-1].output_shape == NATIVE_OUT.get(name, (1000,))  # native-size output


# -- the table and the result object ------------------------------------------------------------
@pytest.fixture(scope="module")
def small_net():
    mc.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
        nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8 * 4 * 4, 10))


def test_table_lists_layers_and_totals(small_net):
    s = summary(small_net, (3, 8, 8), batch_size=32)
    assert isinstance(s, ModelSummary)
    text = str(s)
    assert repr(s) == text
    lines = text.splitlines()
    assert any(line.startswith("0 (Conv2d)") and "[32, 8, 8, 8]" in line and "13,824" in line
               for line in lines)                                        # 8*8*8 * 3*3*3 MACs
    assert any(line.startswith("5 (Linear)") and "[32, 10]" in line and "1,290" in line for line in lines)
    assert "Total params: 1,522" in text                                 # 216 + 16 + 1,290
    assert "Trainable params: 1,522" in text and "Non-trainable params: 0" in text
    assert [r.kind for r in s.layers] == ["Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d", "Flatten", "Linear"]
    assert s.total_macs == 13_824 + 1_280


def test_frozen_parameters_are_non_trainable(small_net):
    small_net[0].weight.requires_grad = False
    try:
        s = summary(small_net, (3, 8, 8))
    finally:
        small_net[0].weight.requires_grad = True
    assert (s.total_params, s.trainable_params, s.non_trainable_params) == (1522, 1306, 216)
    assert "Non-trainable params: 216" in str(s)
    assert s.grad_bytes == 1306 * 4 and s.param_bytes == 1522 * 4


def test_memory_estimate_and_max_batch_size(small_net):
    s = summary(small_net, (3, 8, 8), batch_size=4, optimizer="adam")
    per_image = 4 * (3 * 64 + 3 * 8 * 64 + 8 * 16 + 128 + 10)           # input + each layer's output
    assert s.activation_bytes_per_image == per_image
    fixed = 4 * 1522 * (1 + 1 + 2)                                       # params, grads, 2 Adam slots
    assert s.training_bytes() == 4 * per_image + fixed
    assert s.training_bytes(100) == 100 * per_image + fixed
    n = s.max_batch_size(0.001)
    assert s.training_bytes(n) <= 0.001 * 2 ** 30 < s.training_bytes(n + 1)
    assert max_batch_size(small_net, (3, 8, 8), 0.001) == n
    assert summary(small_net, (3, 8, 8), optimizer="sgd").optimizer_bytes == 0
    assert summary(small_net, (3, 8, 8), optimizer="momentum").optimizer_bytes == 4 * 1522
    with pytest.raises(ValueError, match="optimizer"):
        summary(small_net, (3, 8, 8), optimizer="lbfgs")


def test_max_batch_size_of_resnet18_on_a_16_gb_card():
    net = models.resnet18()
    s = summary(net, (3, 224, 224))
    n = s.max_batch_size(16)
    assert 64 <= n <= 1024  # tens of MB of activations per image, 16 GiB of memory
    assert s.training_bytes(n) <= 16 * 2 ** 30 < s.training_bytes(n + 1)


def test_summary_leaves_the_model_as_it_found_it(small_net):
    small_net.train()
    mc.manual_seed(5)
    expected = mc.randn(3).numpy()
    mc.manual_seed(5)
    summary(small_net, (3, 8, 8))
    assert all(m.training for m in small_net.modules())                 # modes restored
    assert all(not m._forward_hooks for m in small_net.modules())        # hooks removed
    assert np.array_equal(mc.randn(3).numpy(), expected)                 # RNG untouched
    assert int(small_net[1].num_batches_tracked.item()) == 0             # ran in eval mode


def test_shared_layers_and_tuple_outputs():
    # ResNet calls one ReLU several times per block: one row per call
    s = summary(models.resnet18(num_classes=10), (3, 32, 32))
    relu_rows = [r for r in s.layers if r.name == "layer1.0.relu"]
    assert len(relu_rows) == 2
    # a pool returning (values, indices) shows both shapes
    s = summary(nn.MaxPool2d(2, return_indices=True), (2, 4, 4))
    assert s.layers[0].output_shape == [(2, 2, 2), (2, 2, 2)]


def test_bad_input_size():
    with pytest.raises(ValueError, match="input_size"):
        summary(nn.Linear(3, 2), (0, 3))


def test_summary_is_exported():
    assert mc.summary is summary
