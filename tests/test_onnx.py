"""ONNX (issue 18): export checked by ONNX's checker and onnxruntime, import of files written by
minicnn and by other exporters, the round trip, ONNX's own backend node tests, hostile files."""
import os
import subprocess
import sys

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
import warnings  # noqa: E402
import onnx.backend.test  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import minicnn as mc  # noqa: E402
import minicnn.onnx.backend as minicnn_backend  # noqa: E402
from minicnn import nn  # noqa: E402
from minicnn.models import get_model, list_models  # noqa: E402
from minicnn.nn import functional as F  # noqa: E402

SIZES = {"inception_v3": 299, "inception_v4": 299, "xception": 299, "unet": 188, "unet_same": 96}


def _rel(a, b):
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))


def _ort(path, x):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"input": x})[0]


@pytest.mark.parametrize("name", list_models())
def test_every_zoo_model_exports_matches_onnxruntime_and_round_trips(name, tmp_path):
    channels = 1 if name.startswith("unet") else 3
    model = get_model(name, **({"in_channels": 1} if channels == 1 else {})).eval()
    x = mc.randn(1, channels, SIZES.get(name, 224), SIZES.get(name, 224))
    path = tmp_path / f"{name}.onnx"
    proto = mc.onnx.export(model, x, str(path))
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    y = model(x)
    assert _rel(_ort(path, x.numpy()), y.numpy()) < 1e-4
    # the round trip: same outputs, and the same gradient for every parameter the graph uses
    loaded = mc.onnx.load(str(path))
    y2 = loaded(x)
    assert _rel(y2.numpy(), y.numpy()) < 1e-5
    seed = mc.randn(*y.shape)
    (y * seed).sum().backward()
    (y2 * seed).sum().backward()
    used = {i.name for i in proto.graph.initializer}
    theirs = dict(loaded.named_parameters())
    ours = {k: p for k, p in model.named_parameters() if k in used}
    assert set(theirs) == set(ours) and ours
    for k, p in ours.items():
        assert _rel(theirs[k].grad.numpy(), p.grad.numpy()) < 1e-5, k


def test_dynamic_batch_opsets_and_names(tmp_path):
    model = get_model("enet", num_classes=3).eval()  # max-unpooling sizes come from the running input
    x = mc.randn(2, 3, 64, 64)
    for opset in (13, 17, 18, 21):
        path = tmp_path / f"enet{opset}.onnx"
        proto = mc.onnx.export(model, x, str(path), opset_version=opset, input_names=["input"],
                               output_names=["logits"], dynamic_axes={"input": {0: "batch"}, "logits": [0]})
        assert proto.opset_import[0].version == opset
        assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
        assert [o.name for o in proto.graph.output] == ["logits"]
        x3 = mc.randn(3, 3, 64, 64)
        assert _rel(_ort(path, x3.numpy()), model(x3).numpy()) < 1e-4
    with pytest.raises(ValueError, match="opset_version 9 is not supported"):
        mc.onnx.export(model, x, str(tmp_path / "old.onnx"), opset_version=9)
    with pytest.raises(ValueError, match="dynamic_axes names"):
        mc.onnx.export(model, x, str(tmp_path / "bad.onnx"), dynamic_axes={"nope": [0]})


class Ops(nn.Module):
    """Ops that the zoo does not use, in one graph."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 2, padding="same")
        self.prelu = nn.PReLU(4)
        self.fc = nn.Linear(4, 5)

    def forward(self, x):
        y = self.prelu(self.conv(x))
        y = F.pad(y, (1, 2, 0, 1), mode="reflect") + F.pad(y, (1, 2, 0, 1), mode="replicate")
        y = F.interpolate(y, scale_factor=1.5, mode="bilinear", align_corners=True)
        y = F.interpolate(y, size=(7, 9), mode="bilinear")
        y = F.leaky_relu(y[:, :, 1:-1, ::2], 0.2).clamp(-1.0, 2.0)
        z = F.adaptive_avg_pool2d(y, (3, 2)).permute(0, 2, 3, 1)  # uneven bins
        z = F.softmax(self.fc(z), -1) * 2 - F.log_softmax(z.mean((1, 2)) ** 2, 1).amax(1, keepdim=True).reshape(-1, 1, 1, 1)
        return mc.cat([z.reshape(z.shape[0], -1), mc.sigmoid(y).sum((2, 3)).tanh()], 1)


def test_ops_beyond_the_zoo_export_and_load(tmp_path):
    model, x = Ops(), mc.randn(2, 3, 8, 10)
    path = tmp_path / "ops.onnx"
    mc.onnx.export(model, x, str(path))
    y = model(x)
    assert _rel(_ort(path, x.numpy()), y.numpy()) < 1e-5
    loaded = mc.onnx.load(str(path))
    assert _rel(loaded(x).numpy(), y.numpy()) < 1e-6
    assert sorted(loaded.state_dict()) == sorted(model.state_dict())
    again = tmp_path / "again.onnx"  # a loaded model exports too (ONNX -> minicnn -> ONNX)
    mc.onnx.export(loaded, x, str(again))
    assert _rel(_ort(again, x.numpy()), y.numpy()) < 1e-5


def test_what_does_not_export_says_so(tmp_path):
    class Loss(nn.Module):
        def forward(self, x):
            return F.cross_entropy(x, mc.tensor(np.array([0, 1])))

    with pytest.raises(NotImplementedError, match="a loss is not part of the model"):
        mc.onnx.export(Loss(), mc.randn(2, 3), str(tmp_path / "loss.onnx"))
    with pytest.raises(TypeError, match="example_input must be a Tensor"):
        mc.onnx.export(nn.ReLU(), np.zeros(3), str(tmp_path / "x.onnx"))
    assert not any(p.name.endswith(".onnx") for p in tmp_path.iterdir())  # nothing half-written


def test_a_trained_model_exported_and_loaded_keeps_training(tmp_path):
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3))
    x, t = mc.randn(8, 1, 8, 8), mc.tensor(np.arange(8) % 3)
    mc.onnx.export(model, x, str(tmp_path / "m.onnx"))
    loaded = mc.onnx.load(str(tmp_path / "m.onnx"))
    assert not loaded.training and all(p.requires_grad for p in loaded.parameters())
    assert set(loaded.state_dict()) == set(model.state_dict()) - {"1.num_batches_tracked"}
    loaded.train()
    opt = mc.optim.SGD(loaded.parameters(), lr=0.1)
    losses = []
    for _ in range(20):
        loss = F.cross_entropy(loaded(x), t)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    assert not np.allclose(np.asarray(loaded.state_dict()["1.running_mean"]), 0)  # batch norm's buffers moved


def test_files_from_pytorchs_exporter_load(tmp_path):
    torch = pytest.importorskip("torch")
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    model = torchvision.models.mobilenet_v2().eval()
    x = torch.randn(1, 3, 96, 96)
    path = tmp_path / "mobilenet.onnx"
    torch.onnx.export(model, (x,), str(path), dynamo=False, input_names=["input"])
    with torch.no_grad():
        ref = model(x).numpy()
    assert _rel(mc.onnx.load(str(path))(mc.tensor(x.numpy())).numpy(), ref) < 1e-4


def test_a_keras_model_converted_by_tf2onnx_loads_and_trains():
    """tests/data/make_keras_onnx.py made the file (Keras CNN: NHWC input, same padding with
    stride 2, depthwise convolution, batch norm, upsampling, zero padding, two heads)."""
    data = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
    ref = np.load(os.path.join(data, "keras_tf2onnx_ref.npz"))
    net = mc.onnx.load(os.path.join(data, "keras_tf2onnx.onnx"))
    y = net(mc.tensor(ref["x"]))
    assert _rel(y.numpy(), ref["y"]) < 1e-5
    assert {"Transpose", "Conv", "BatchNormalization", "Resize", "MatMul", "Softmax"} <= {n[0] for n in net.nodes}
    # backward through the loaded graph, in float64: the directional derivative along a random v
    net = net.to(dtype=mc.float64)
    rng = np.random.default_rng(0)
    x0, v, w = ref["x"].astype(np.float64), rng.standard_normal(ref["x"].shape), rng.standard_normal(ref["y"].shape)
    x = mc.tensor(x0, requires_grad=True)
    (net(x) * mc.tensor(w)).sum().backward()
    f = lambda a: float((net(mc.tensor(a)).numpy() * w).sum())  # noqa: E731
    numeric = (f(x0 + 1e-6 * v) - f(x0 - 1e-6 * v)) / 2e-6
    assert abs(float((x.grad.numpy() * v).sum()) - numeric) < 1e-6 * max(1.0, abs(numeric))
    assert all(p.grad is not None and np.isfinite(p.grad.numpy()).all() for p in net.parameters())


# -- hostile and broken files ------------------------------------------------------------------
def _graph(initializers, nodes=None, inputs=("x",)):
    nodes = nodes or [helper.make_node("Add", ["x", "w"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(n, TensorProto.FLOAT, [2]) for n in inputs],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])], initializers)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _raw_tensor(name, dims, raw=b""):
    """A float TensorProto made field by field (onnx.helper refuses the inconsistent ones)."""
    t = TensorProto(name=name, data_type=TensorProto.FLOAT, dims=dims)
    t.raw_data = raw
    return t


def test_broken_and_hostile_files_raise_clear_errors(tmp_path):
    good = _graph([numpy_helper.from_array(np.ones(2, np.float32), "w")])
    path = tmp_path / "good.onnx"
    onnx.save(good, str(path))
    assert mc.onnx.load(str(path))(mc.ones(2)).tolist() == [2.0, 2.0]

    cut = tmp_path / "cut.onnx"
    cut.write_bytes(path.read_bytes()[:-9])
    with pytest.raises(ValueError, match="cut.onnx"):
        mc.onnx.load(str(cut))
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\xff" * 64)
    with pytest.raises(ValueError, match="junk.onnx is not a valid ONNX file"):
        mc.onnx.load(str(junk))

    with pytest.raises(ValueError, match=r"node 0 \(unnamed, Add\) reads 'w', which no input"):
        mc.onnx.load(_graph([]))

    short = _raw_tensor("w", [1000], np.ones(2, np.float32).tobytes())
    with pytest.raises(ValueError, match=r"'w' of shape \[1000\] needs 1000 values, its data holds 2"):
        mc.onnx.load(_graph([short]))
    huge = _raw_tensor("w", [1 << 20, 1 << 20])
    with pytest.raises(ValueError, match="too large"):
        mc.onnx.load(_graph([huge]))

    secret = tmp_path.parent / "secret.bin"
    secret.write_bytes(np.ones(2, np.float32).tobytes())
    for location in ("../secret.bin", str(secret), "link.bin"):
        if location == "link.bin":
            os.symlink(secret, tmp_path / "link.bin")
        w = _raw_tensor("w", [2])
        w.ClearField("raw_data")
        w.data_location = TensorProto.EXTERNAL
        w.external_data.add(key="location", value=location)
        evil = tmp_path / "evil.onnx"
        evil.write_bytes(_graph([w]).SerializeToString())
        with pytest.raises(ValueError, match="outside the model's folder; refused"):
            mc.onnx.load(str(evil))

    unknown = _graph([], nodes=[helper.make_node("Einsum", ["x", "x"], ["y"], equation="i,i->i")])
    with pytest.raises(NotImplementedError, match=r"node 0 \(unnamed, Einsum\): op type Einsum \(opset 17\)"):
        mc.onnx.load(unknown)


def test_external_data_inside_the_folder_loads(tmp_path):
    model = nn.Sequential(nn.Linear(4, 3))
    proto = mc.onnx.export(model, mc.randn(2, 4), str(tmp_path / "a.onnx"))
    onnx.save(proto, str(tmp_path / "ext.onnx"), save_as_external_data=True, all_tensors_to_one_file=True,
              location="weights.bin", size_threshold=0)
    loaded = mc.onnx.load(str(tmp_path / "ext.onnx"))
    np.testing.assert_array_equal(np.asarray(loaded.state_dict()["0.weight"]), model[0].weight.numpy())


# -- the command line --------------------------------------------------------------------------
def _cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "minicnn", *args], capture_output=True, text=True, cwd=cwd)


def test_cli_export_info_and_convert(tmp_path):
    r = _cli("export", "resnet18", "r18.onnx", "--input-size", "3", "64", "64", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "r18.onnx" in r.stdout
    r = _cli("info", "r18.onnx", cwd=tmp_path)
    assert r.returncode == 0 and "Conv" in r.stdout and "102 initializers" in r.stdout, r.stdout
    r = _cli("convert", "r18.onnx", "r18.npz", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    model = get_model("resnet18")
    model.load_state_dict(mc.load(str(tmp_path / "r18.npz")), strict=False)
    x = mc.randn(1, 3, 64, 64)
    assert _rel(_ort(tmp_path / "r18.onnx", x.numpy()), model.eval()(x).numpy()) < 1e-4
    r = _cli("export", "resnet_18", "x.onnx", cwd=tmp_path)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "resnet18" in r.stderr
    (tmp_path / "bad.onnx").write_bytes(b"not onnx")
    r = _cli("info", "bad.onnx", cwd=tmp_path)
    assert r.returncode == 2 and "bad.onnx" in r.stderr and len(r.stderr.strip().splitlines()) == 1


# -- ONNX's own backend node tests ---------------------------------------------------------------
OPS = ["abs", "add", "argmax", "argmin", "averagepool", "basic_conv", "batchnorm", "cast", "clip", "concat",
       "constant", "constantofshape", "constant_pad", "conv", "convtranspose", "div", "dropout", "edge_pad",
       "exp", "expand", "flatten", "gather", "gemm", "globalaveragepool", "globalmaxpool", "identity",
       "leakyrelu", "log", "logsoftmax", "lrn", "matmul", "max", "maxpool", "maxunpool", "min", "mul", "neg",
       "pad", "pow", "prelu", "reduce_max", "reduce_mean", "reduce_min", "reduce_sum", "reflect_pad", "relu",
       "reshape", "resize", "shape", "sigmoid", "slice", "softmax", "split", "sqrt", "squeeze", "sub", "sum",
       "tanh", "transpose", "unsqueeze", "where", "wrap_pad"]
#: node tests of those op types that minicnn does not pass, and why (run as expected failures)
NOT_SUPPORTED = {
    r"(pool|conv|convtranspose)_3d": "3-D convolution and pooling (minicnn has 1-D and 2-D windows)",
    r"averagepool_2d_dilations": "dilated average pooling (minicnn's avg_pool2d, as PyTorch's, has none)",
    r"maxpool_2d_uint8": "max pooling of integer maps (minicnn pools floating-point maps)",
    r"maxpool_with_argmax_2d_precomputed_strides": "MaxPool storage_order=1 (column-major indices)",
    r"reduce_max_empty_set_bool": "reductions of boolean tensors",
    r"antialias": "Resize with antialias=1",
    r"tf_crop_and_resize": "Resize with a region of interest (tf_crop_and_resize)",
}
#: node tests not run, and why: other op types that share a prefix, and types minicnn has no use for
NOT_RUN = {
    r"reduce_sum_square|split_to_sequence|gather_elements|identity_opt|identity_sequence": "other op types",
    r"_expanded": "the same tests spelled out in other ops (functions)",
    r"cast_.*(FLOAT8|FLOAT4|INT4|INT2|UINT4|UINT2|e8m0|BFLOAT16)": "8-, 4- and 2-bit and bfloat16 types",
}

with warnings.catch_warnings():  # ONNX's test cases compute some expected infinities as they are made
    warnings.simplefilter("ignore", RuntimeWarning)
    _tests = onnx.backend.test.BackendTest(minicnn_backend, __name__)
for _op in OPS:
    _tests.include(rf"^test_{_op}(_.*)?_cpu$")
for _pattern in NOT_SUPPORTED:
    _tests.xfail(_pattern)
for _pattern in NOT_RUN:
    _tests.exclude(_pattern)
OnnxBackendNodeModelTest = _tests.test_cases["OnnxBackendNodeModelTest"]
for _name in [n for n in vars(OnnxBackendNodeModelTest) if n.startswith("test_")]:
    _why = getattr(getattr(OnnxBackendNodeModelTest, _name), "__unittest_skip_why__", None)
    if _why is not None:  # another op type, or another device: not collected at all
        delattr(OnnxBackendNodeModelTest, _name)
