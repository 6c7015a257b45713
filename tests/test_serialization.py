"""mc.save / mc.load: minicnn's .npz checkpoints, PyTorch files (without PyTorch), safetensors."""
import collections
import io
import json
import os
import pickle
import struct
import sys
import types
import zipfile

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minicnn as mc
import minicnn.nn as nn
from minicnn.serialization import CheckpointError, load_safetensors, save_safetensors

DATA = os.path.join(os.path.dirname(__file__), "data")


def checkpoint():
    return {
        "model": collections.OrderedDict(
            [("fc.weight", np.arange(6, dtype=np.float32).reshape(2, 3)),
             ("fc.bias", np.array([0.5, -1.5], np.float32)),
             ("bn.num_batches_tracked", np.array(4, np.int64))]),
        "optimizer": {"state": {0: {"momentum_buffer": np.linspace(0, 1, 4)}, 1: {"step": 7}},
                      "param_groups": [{"lr": 0.1, "params": [0, 1], "nesterov": False}]},
        "epoch": 12, "best": 0.875, "worst": float("-inf"), "nan": float("nan"), "note": "résumé",
        "none": None, "milestones": (30, 60), "mask": np.array([True, False, True]),
        "ids": np.arange(5, dtype=np.int64)[::2], "scalar": np.float32(2.5), "tensor": mc.tensor([1.0, 2.0]),
    }


def assert_same(a, b):
    assert type(a) is type(b) or (isinstance(a, dict) and isinstance(b, dict)), (type(a), type(b))
    if isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            assert_same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert_same(x, y)
    elif isinstance(a, (np.ndarray, np.generic)):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)
    elif isinstance(a, float) and a != a:
        assert b != b
    else:
        assert a == b


# -- minicnn's own format ---------------------------------------------------------------------


def test_checkpoint_round_trip(tmp_path):
    ck = checkpoint()
    path = tmp_path / "ck.npz"
    mc.save(ck, path)
    back = mc.load(path)
    expected = dict(ck, tensor=np.array([1.0, 2.0], np.float32))
    assert_same(back, expected)
    assert list(back["optimizer"]["state"]) == [0, 1]          # int keys stay int
    assert isinstance(back["milestones"], tuple)
    assert back["model"]["fc.weight"].dtype == np.float32 and back["ids"].dtype == np.int64
    assert back["mask"].dtype == np.bool_ and isinstance(back["scalar"], np.float32)
    assert os.listdir(tmp_path) == ["ck.npz"]                  # no temporary files left


_arrays = hnp.arrays(st.sampled_from([np.float32, np.float64, np.int64, np.int8, np.uint8, np.bool_, np.float16]),
                     hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=3))
_leaves = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(), st.text(max_size=5), _arrays)
_trees = st.recursive(_leaves, lambda kids: st.one_of(
    st.lists(kids, max_size=3), st.lists(kids, max_size=3).map(tuple),
    st.dictionaries(st.one_of(st.integers(-5, 5), st.text(max_size=4)), kids, max_size=3)), max_leaves=8)


@settings(max_examples=25)
@given(tree=_trees)
def test_any_nested_checkpoint_round_trips(tree):
    buf = io.BytesIO()
    mc.save({"tree": tree}, buf)
    buf.seek(0)
    assert_same(mc.load(buf), {"tree": tree})


def test_plain_numpy_reads_members_and_npz_loads(tmp_path):
    mc.save({"a.weight": np.ones((2, 2), np.float32), "b": [np.zeros(3)]}, tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz") as z:
        np.testing.assert_array_equal(z["a.weight"], np.ones((2, 2)))
        np.testing.assert_array_equal(z["b/0"], np.zeros(3))
        assert json.loads(z["__minicnn__.json"])["version"] == 1
    np.savez(tmp_path / "plain.npz", x=np.arange(3), y=np.eye(2))
    plain = mc.load(tmp_path / "plain.npz")
    assert sorted(plain) == ["x", "y"] and plain["y"].shape == (2, 2)


def test_module_state_dict_round_trip(tmp_path):
    model = nn.Linear(4, 3)
    mc.save(model.state_dict(), tmp_path / "lin.npz")
    other = nn.Linear(4, 3)
    other.load_state_dict(mc.load(tmp_path / "lin.npz"))
    for (k, a), (_, b) in zip(model.state_dict().items(), other.state_dict().items()):
        np.testing.assert_array_equal(a, b, err_msg=k)


def test_file_objects(tmp_path):
    buf = io.BytesIO()
    mc.save({"w": np.arange(4.0)}, buf)
    buf.seek(0)
    np.testing.assert_array_equal(mc.load(buf)["w"], np.arange(4.0))


def test_unsaveable_objects_raise_and_leave_old_file(tmp_path):
    path = tmp_path / "ck.npz"
    mc.save({"epoch": 1}, path)
    with pytest.raises(TypeError, match=r"obj\['x'\]\[0\] has type object"):
        mc.save({"x": [object()]}, path)
    with pytest.raises(TypeError, match="key 1.5"):
        mc.save({1.5: 0}, path)
    with pytest.raises(TypeError, match="save its state_dict"):
        mc.save(nn.Linear(2, 2), path)
    with pytest.raises(TypeError, match="dtype object"):
        mc.save({"o": np.array([None, 1])}, path)
    assert mc.load(path) == {"epoch": 1}
    assert os.listdir(tmp_path) == ["ck.npz"]


def test_failure_while_writing_leaves_nothing(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np.lib.format, "write_array", broken)
    with pytest.raises(OSError, match="disk full"):
        mc.save({"w": np.ones(3)}, tmp_path / "ck.npz")
    assert os.listdir(tmp_path) == []


def _rewrite_structure(src, dst, header):
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for n in zin.namelist():
            zout.writestr(n, json.dumps(header) if n == "__minicnn__.json" else zin.read(n))


def test_bad_minicnn_files_give_clear_errors(tmp_path):
    path = tmp_path / "ck.npz"
    mc.save(checkpoint()["model"], path)
    data = path.read_bytes()
    cases = {
        "truncated.npz": (data[: len(data) // 2], "corrupt or truncated"),
        "empty.npz": (b"", "empty or truncated"),
        "foreign.npz": (b"hello, this is a text file\n", "not a minicnn, NumPy .npz, PyTorch or safetensors"),
    }
    for name, (content, msg) in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(CheckpointError, match=msg) as e:
            mc.load(tmp_path / name)
        assert name in str(e.value)
    with zipfile.ZipFile(tmp_path / "foreign.zip", "w") as zf:
        zf.writestr("readme.txt", "not arrays")
    with pytest.raises(CheckpointError, match="foreign.zip: a zip archive without .npy arrays"):
        mc.load(tmp_path / "foreign.zip")
    header = json.loads(zipfile.ZipFile(path).read("__minicnn__.json"))
    _rewrite_structure(path, tmp_path / "new.npz", dict(header, version=2))
    with pytest.raises(CheckpointError, match=r"new.npz: written by a newer minicnn \(format version 2\)"):
        mc.load(tmp_path / "new.npz")
    _rewrite_structure(path, tmp_path / "missing.npz", dict(header, root={"array": "nope.npy"}))
    with pytest.raises(CheckpointError, match="'nope.npy' is missing"):
        mc.load(tmp_path / "missing.npz")


# -- PyTorch files built by hand, without torch -------------------------------------------------
# Stand-in modules named torch and torch._utils let the standard pickler write the same GLOBAL
# opcodes torch.save writes; a stand-in tensor reduces to _rebuild_tensor_v2(storage, ...) and
# its storage becomes the persistent id ('storage', torch.FloatStorage, key, 'cpu', numel).

_STORAGE_NAMES = {np.dtype(np.float32): "FloatStorage", np.dtype(np.int64): "LongStorage",
                  np.dtype(np.bool_): "BoolStorage", np.dtype(np.float64): "DoubleStorage"}


class FakeStorage:
    def __init__(self, key, array):
        self.key, self.array = key, np.ascontiguousarray(array).ravel()


class FakeTensor:
    def __init__(self, storage, offset, size, stride, parameter=False):
        self.storage, self.offset, self.size, self.stride, self.parameter = storage, offset, size, stride, parameter

    def __reduce__(self):
        utils = sys.modules["torch._utils"]
        args = (self.storage, self.offset, tuple(self.size), tuple(self.stride), False, collections.OrderedDict())
        if self.parameter:
            return utils._rebuild_parameter, (FakeTensor(self.storage, self.offset, self.size, self.stride),
                                              True, collections.OrderedDict())
        return utils._rebuild_tensor_v2, args


@pytest.fixture
def fake_torch(monkeypatch):
    torch, utils = types.ModuleType("torch"), types.ModuleType("torch._utils")
    for name in ("_rebuild_tensor_v2", "_rebuild_parameter"):
        fn = lambda *a: None  # noqa: E731  only its name is pickled
        fn.__module__, fn.__name__, fn.__qualname__ = "torch._utils", name, name
        setattr(utils, name, fn)
    for name in _STORAGE_NAMES.values():
        setattr(torch, name, type(name, (), {"__module__": "torch"}))
    torch._utils = utils
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setitem(sys.modules, "torch._utils", utils)
    return torch


def torch_pickle(obj, torch, legacy=False):
    storages = {}

    class Pickler(pickle.Pickler):
        def persistent_id(self, o):
            if not isinstance(o, FakeStorage):
                return None
            storages[o.key] = o.array
            pid = ("storage", getattr(torch, _STORAGE_NAMES[o.array.dtype]), o.key, "cpu", o.array.size)
            return pid + (None,) if legacy else pid

    buf = io.BytesIO()
    Pickler(buf, protocol=2).dump(obj)
    return buf.getvalue(), storages


def write_torch_zip(path, obj, torch, byteorder="little"):
    data, storages = torch_pickle(obj, torch)
    order = "<" if byteorder == "little" else ">"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("archive/data.pkl", data)
        zf.writestr("archive/byteorder", byteorder)
        for key, arr in storages.items():
            zf.writestr(f"archive/data/{key}", arr.astype(arr.dtype.newbyteorder(order)).tobytes())
        zf.writestr("archive/version", "3\n")


def write_torch_legacy(path, obj, torch):
    data, storages = torch_pickle(obj, torch, legacy=True)
    with open(path, "wb") as f:
        for header in (0x1950A86A20F9469CFC6C, 1001, {"protocol_version": 1001, "little_endian": True}):
            pickle.dump(header, f, protocol=2)
        f.write(data)
        pickle.dump(list(storages), f, protocol=2)
        for arr in storages.values():
            f.write(struct.pack("<q", arr.size) + arr.astype("<" + arr.dtype.str[1:]).tobytes())


def fake_state_dict():
    w = FakeStorage("0", np.arange(12, dtype=np.float32))
    return collections.OrderedDict([
        ("fc.weight", FakeTensor(w, 0, (3, 4), (4, 1), parameter=True)),
        ("fc.weight_t", FakeTensor(w, 0, (4, 3), (1, 4))),              # shares storage 0, transposed
        ("tail", FakeTensor(w, 5, (2, 3), (3, 1))),                      # storage offset
        ("steps", FakeTensor(FakeStorage("1", np.array([7, 8, 9])), 1, (2,), (1,))),
        ("mask", FakeTensor(FakeStorage("2", np.array([True, False])), 0, (2,), (1,))),
        ("epoch", 5),
    ])


def check_fake_state_dict(sd):
    w = np.arange(12, dtype=np.float32)
    assert list(sd) == ["fc.weight", "fc.weight_t", "tail", "steps", "mask", "epoch"]
    np.testing.assert_array_equal(sd["fc.weight"], w.reshape(3, 4))
    np.testing.assert_array_equal(sd["fc.weight_t"], w.reshape(3, 4).T)
    np.testing.assert_array_equal(sd["tail"], w[5:11].reshape(2, 3))
    np.testing.assert_array_equal(sd["steps"], [8, 9])
    assert sd["steps"].dtype == np.int64 and sd["mask"].dtype == np.bool_ and sd["fc.weight"].dtype == np.float32
    assert sd["mask"].tolist() == [True, False] and sd["epoch"] == 5


@pytest.mark.parametrize("byteorder", ["little", "big"])
def test_hand_built_torch_zip(tmp_path, fake_torch, byteorder):
    path = tmp_path / "model.pth"
    write_torch_zip(path, fake_state_dict(), fake_torch, byteorder)
    sd = mc.load(path)
    check_fake_state_dict(sd)
    if byteorder == "little":
        assert sd["fc.weight_t"].strides == (4, 16)
        assert np.shares_memory(sd["fc.weight"], sd["fc.weight_t"])  # one storage, as in torch


def test_hand_built_torch_legacy(tmp_path, fake_torch):
    path = tmp_path / "old.pt"
    write_torch_legacy(path, fake_state_dict(), fake_torch)
    check_fake_state_dict(mc.load(path))
    assert mc.load(path, format="torch")["epoch"] == 5


def test_forged_tensor_layout_is_refused(tmp_path, fake_torch):
    s = FakeStorage("0", np.arange(4, dtype=np.float32))
    write_torch_zip(tmp_path / "oob.pth", {"w": FakeTensor(s, 2, (3,), (1,))}, fake_torch)
    with pytest.raises(CheckpointError, match=r"oob.pth: tensor of size \(3,\) .* reaches element 4 .* 4 elements"):
        mc.load(tmp_path / "oob.pth")
    write_torch_zip(tmp_path / "neg.pth", {"w": FakeTensor(s, 0, (2,), (-1,))}, fake_torch)
    with pytest.raises(CheckpointError, match="invalid tensor layout"):
        mc.load(tmp_path / "neg.pth")


class Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_malicious_pickle_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    payload = pickle.dumps({"w": Evil(marker)}, protocol=2)
    (tmp_path / "evil.pt").write_bytes(payload)                  # bare pickle (legacy-looking)
    with zipfile.ZipFile(tmp_path / "evil.pth", "w") as zf:       # inside the torch zip layout
        zf.writestr("archive/data.pkl", payload)
    for name in ("evil.pt", "evil.pth"):
        with pytest.raises(CheckpointError, match=rf"{name}: refusing to load: .*'(posix|os|nt)\.system'"):
            mc.load(tmp_path / name)
    assert not marker.exists()
    (tmp_path / "eval.pth").write_bytes(b"\x80\x02cbuiltins\neval\nX\x06\x00\x00\x00print(1)\x85R.")
    with pytest.raises(CheckpointError, match="'builtins.eval'"):
        mc.load(tmp_path / "eval.pth", format="torch")


def test_truncated_torch_files(tmp_path, fake_torch):
    write_torch_zip(tmp_path / "m.pth", fake_state_dict(), fake_torch)
    write_torch_legacy(tmp_path / "m.pt", fake_state_dict(), fake_torch)
    for name in ("m.pth", "m.pt"):
        data = (tmp_path / name).read_bytes()
        for cut in (len(data) - 10, len(data) // 2, 40):
            (tmp_path / "cut").write_bytes(data[:cut])
            with pytest.raises(CheckpointError, match="cut: .*(truncated|corrupt)"):
                mc.load(tmp_path / "cut", format="torch")
    with zipfile.ZipFile(tmp_path / "nopkl.pth", "w") as zf:
        zf.writestr("archive/constants.pkl", b"")
    with pytest.raises(CheckpointError, match="not a torch.save file .*TorchScript"):
        mc.load(tmp_path / "nopkl.pth", format="torch")


# -- real torch.save files (made by tests/data/make_torch_files.py; torch is not needed here) ----


@pytest.mark.parametrize("name", ["torch_checkpoint.pth", "torch_checkpoint_legacy.pth"])
def test_real_torch_files(name):
    ck = mc.load(os.path.join(DATA, name))
    assert (ck["epoch"], ck["best_acc"], ck["milestones"], ck["name"]) == (3, 0.75, (10, 20), "tiny")
    sd = ck["state_dict"]
    base = np.arange(120, dtype=np.float32).reshape(4, 5, 6)
    expected = {
        "conv.weight": np.arange(24, dtype=np.float32).reshape(2, 3, 2, 2),
        "bn.running_mean": np.arange(3) / 4, "bn.num_batches_tracked": np.array(7),
        "base": base, "transposed": base.transpose(2, 1, 0), "sliced": base[1:, ::2, 3:],
        "expanded": np.broadcast_to(np.arange(3, dtype=np.int32)[:, None], (3, 4)),
        "mask": np.array([True, False, True]), "half": np.arange(4, dtype=np.float16) / 2,
        "bf16": np.arange(4, dtype=np.float32) * 0.5, "empty": np.zeros((0, 3), np.float32),
    }
    assert list(sd) == list(expected)
    for k, v in expected.items():
        assert sd[k].dtype == v.dtype and sd[k].shape == v.shape, k
        np.testing.assert_array_equal(sd[k], v, err_msg=k)
    assert sd["transposed"].strides == (4, 24, 120) and sd["sliced"].strides == (120, 48, 4)
    assert sd["expanded"].strides == (4, 0)
    assert np.shares_memory(sd["base"], sd["transposed"]) and np.shares_memory(sd["base"], sd["sliced"])


# -- safetensors ----------------------------------------------------------------------------------


def test_safetensors_round_trip(tmp_path):
    tensors = {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "n": np.array(3, np.int64),
               "m": np.array([True, False]), "h": np.ones(3, np.float16), "t": np.arange(8.0)[::2],
               "e": np.zeros((0, 4), np.float32), "x": mc.tensor([1.0, -1.0])}
    save_safetensors(tensors, tmp_path / "a.safetensors", metadata={"format": "pt"})
    mc.save(tensors, tmp_path / "b.safetensors")
    for name in ("a.safetensors", "b.safetensors"):
        raw = (tmp_path / name).read_bytes()
        (n,) = struct.unpack("<Q", raw[:8])
        header = json.loads(raw[8: 8 + n])
        assert header["w"] == {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]} and n % 8 == 0
        back = load_safetensors(tmp_path / name)
        assert_same(back, dict(tensors, x=np.array([1.0, -1.0], np.float32)))
    with pytest.raises(TypeError, match="nested checkpoints need format='npz'"):
        mc.save({"a": {"b": np.ones(2)}}, tmp_path / "c.safetensors")


def test_safetensors_bf16_and_errors(tmp_path):
    bits = (np.array([1.0, -2.5], np.float32).view(np.uint32) >> 16).astype("<u2")
    header = json.dumps({"b": {"dtype": "BF16", "shape": [2], "data_offsets": [0, 4]}}).encode()
    good = struct.pack("<Q", len(header)) + header + bits.tobytes()
    (tmp_path / "bf.safetensors").write_bytes(good)
    out = mc.load(tmp_path / "bf.safetensors")
    assert out["b"].dtype == np.float32 and out["b"].tolist() == [1.0, -2.5]
    (tmp_path / "short.safetensors").write_bytes(good[:-1])
    with pytest.raises(CheckpointError, match=r"short.safetensors: tensor 'b' .*\(truncated file\?\)"):
        mc.load(tmp_path / "short.safetensors")
    (tmp_path / "head.safetensors").write_bytes(good[:20])
    with pytest.raises(CheckpointError, match="head.safetensors: truncated or corrupt safetensors header"):
        mc.load(tmp_path / "head.safetensors", format="safetensors")
