"""Faults: divergence, kills during a save, user mistakes at the API and on the command line.

What the training state promises: no checkpoint ever holds a non-finite parameter, buffer or
optimizer state; a diverging run stops with a message naming the last good checkpoint; a save
killed by SIGTERM leaves nothing behind and one killed by SIGKILL leaves at most one temporary
file, which the next save of the same target replaces."""
import glob
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import minicnn as mc
import minicnn.models as models
import minicnn.nn as nn
from minicnn.apps.cli import main as cli
from minicnn.train import TrainingDiverged, fit, save_checkpoint
from minicnn.train.checkpoint import non_finite
from minicnn.data import DataLoader, TensorDataset
from minicnn import optim


def _loader(n=8, seed=0):  # one batch an epoch: the epoch's last step is its only one
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 4)).astype(np.float32)
    y = rng.integers(0, 3, n)
    return DataLoader(TensorDataset(mc.tensor(x), mc.tensor(y)), 8, shuffle=True, generator=seed)


def test_a_diverging_update_stops_training_and_leaves_the_last_good_checkpoint(tmp_path):
    mc.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))
    opt = optim.SGD(model.parameters(), lr=0.1)
    def diverge_after_epoch_1(epoch, row):  # epoch 2's loss is finite; the update that follows is not
        opt.param_groups[0]["lr"] = float("inf")

    with pytest.raises(TrainingDiverged, match=r"after epoch 2, \d+ array\(s\) .* hold nan or inf .* the last good "
                                               r"checkpoint is .*last.ckpt \(epoch 1\)"):
        fit(model, opt, _loader(), epochs=3, checkpoint_dir=str(tmp_path), log=None, show_progress=False,
            on_epoch_end=diverge_after_epoch_1)
    state = mc.load(str(tmp_path / "last.ckpt"))
    assert state["epoch"] == 1 and non_finite(state) == []


def test_save_checkpoint_refuses_non_finite_state(tmp_path):
    model = nn.Linear(2, 2)
    model.weight.array[0, 0] = np.nan
    with pytest.raises(ValueError, match=r"refusing to write .*1 non-finite array\(s\), e.g. model/weight"):
        save_checkpoint(str(tmp_path / "c.ckpt"), model)
    assert os.listdir(tmp_path) == []


SAVER = r"""
import sys, numpy as np, minicnn as mc
big = {"w": np.ones(2**25, np.float32)}
print("ready", flush=True)
while True:
    mc.save(big, sys.argv[1])
"""


def _saver(path):
    proc = subprocess.Popen([sys.executable, "-c", SAVER, path], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(0.8)  # well into the saving loop: most of the time is spent writing
    return proc


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="POSIX signals")
def test_sigterm_during_a_save_leaves_no_temporary_file(tmp_path):
    target = str(tmp_path / "w.npz")
    for _ in range(3):
        proc = _saver(target)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == -signal.SIGTERM  # the signal kept its meaning
        assert glob.glob(str(tmp_path / ".*")) == []
        assert mc.load(target)["w"].shape == (2**25,)  # the last complete save


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="POSIX signals")
def test_sigkill_leaves_at_most_one_temporary_file_which_the_next_save_replaces(tmp_path):
    target = str(tmp_path / "w.npz")
    for _ in range(3):
        proc = _saver(target)
        proc.kill()
        proc.wait(timeout=30)
        assert len(glob.glob(str(tmp_path / ".*.tmp"))) <= 1
    mc.save({"w": np.zeros(3)}, target)
    assert glob.glob(str(tmp_path / ".*")) == [] and mc.load(target)["w"].shape == (3,)


# -- the command line: one line on stderr, exit 2 ------------------------------------------------

@pytest.mark.parametrize("argv, message", [
    (["--lr=-1"], "argument --lr: must be a finite number > 0, got -1"),
    (["--lr", "inf"], "argument --lr: must be a finite number > 0, got inf"),
    (["--batch-size", "0"], "argument --batch-size: must be an integer >= 1, got 0"),
    (["--width", "0"], "argument --width: must be an integer >= 1, got 0"),
    (["--seed", "-1"], "argument --seed: must be an integer >= 0, got -1"),
    (["--epochs", "0"], "argument --epochs: must be an integer >= 1, got 0"),
    (["--epochs", "-1"], "argument --epochs: must be an integer >= 1, got -1"),
    (["--model", "resnt18"], "unknown model 'resnt18'; did you mean resnet18"),
    (["--checkpoint-dir", __file__], "is a file, not a folder"),
    (["--resume", "--checkpoint-dir", "/nonexistent/run"], "no checkpoint to resume from at /nonexistent/run"),
])
def test_training_mistakes_are_one_line_and_exit_2(capsys, argv, message):
    code = cli(["train", "classifier", "--quick", "--data", "shapes", "--no-progress", *argv])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err


@pytest.mark.parametrize("argv, message", [
    (["summary", "resnet18", "--batch", "0"], "argument --batch: must be an integer >= 1, got 0"),
    (["summary", "resnet18", "--memory-gb", "-1"], "argument --memory-gb: must be a finite number > 0, got -1"),
])
def test_summary_mistakes_exit_2(capsys, argv, message):
    assert cli(argv) == 2
    assert message in capsys.readouterr().err


def test_resuming_a_truncated_or_different_checkpoint_is_one_line(tmp_path, capsys):
    base = ["train", "classifier", "--quick", "--data", "shapes", "--no-progress", "--checkpoint-dir", str(tmp_path)]
    assert cli(base) == 0
    capsys.readouterr()

    def fails(*extra):
        assert cli(base + list(extra)) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "Traceback" not in err
        return err

    assert re.search(r"cannot resume from .*last.ckpt: size mismatch for conv1.weight: .*\(and \d+ more\)",
                     fails("--resume", "--width", "16"))
    data = open(tmp_path / "last.ckpt", "rb").read()
    open(tmp_path / "last.ckpt", "wb").write(data[:len(data) // 2])
    assert re.search(r"cannot resume from .*last.ckpt: .*corrupt or truncated", fails("--resume"))


# -- the API --------------------------------------------------------------------------------------

@pytest.mark.parametrize("make, error, message", [
    (lambda: nn.Conv2d(3, 8, kernel_size=0), ValueError, r"Conv2d: kernel_size must be >= 1, got \(0, 0\)"),
    (lambda: nn.Conv2d(3, 8, kernel_size=-3), ValueError, r"Conv2d: kernel_size must be >= 1, got \(-3, -3\)"),
    (lambda: nn.Conv2d(0, 8, 3), ValueError, "Conv2d: in_channels must be a positive integer, got 0"),
    (lambda: nn.ConvTranspose2d(3, 8, 3, stride=0), ValueError, r"ConvTranspose2d: stride must be >= 1"),
    (lambda: nn.Linear(-1, 3), ValueError, "Linear: in_features must be a non-negative integer, got -1"),
    (lambda: mc.zeros(-1), ValueError, r"zeros: negative dimension -1 in size \(-1,\)"),
    (lambda: mc.randn(2, -3), ValueError, r"randn: negative dimension -3 in size \(2, -3\)"),
    (lambda: mc.ones(2.5), TypeError, "ones: sizes must be integers, got 2.5"),
    (lambda: nn.Linear(2, 2).load_state_dict(None), TypeError, "load_state_dict: expected a mapping .* got NoneType"),
    (lambda: mc.summary(models.resnet18(), (224, 224)), ValueError,
     r"input_size \(224, 224\) has no channels; ResNet takes \(C, H, W\), e.g. \(3, 224, 224\)"),
    (lambda: models.unet()(mc.randn(1, 1, 571, 571)), ValueError,
     "an input side of 571 pixels does not pool evenly at every level .* the nearest sizes that do: 556 or 572"),
])
def test_api_mistakes_name_the_op_and_the_values(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_unet_names_the_sizes_it_takes():
    assert [s for s in range(550, 600) if models.unet().accepts(s)] == [556, 572, 588]
    assert [s for s in range(250, 270) if models.unet_same().accepts(s)] == [256]


# -- untrusted files: a CheckpointError naming the file, and nothing else ------------------------
# The loader's promise: a file can make mc.load raise CheckpointError (naming the file and the
# problem) and nothing else: no code runs, no memory or disk beyond what its real contents need.

import collections  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import pickle  # noqa: E402
import struct  # noqa: E402
import zipfile  # noqa: E402

from minicnn.serialization import CheckpointError  # noqa: E402
from minicnn.torch_reader import _device  # noqa: E402 (checked to stay untouched by a hostile BUILD)
from test_serialization import FakeStorage, FakeTensor, fake_torch, write_torch_legacy, write_torch_zip  # noqa: E402,F401


def test_a_legacy_storage_that_declares_terabytes_is_refused_before_reading(tmp_path, fake_torch):
    path = tmp_path / "bomb.pth"
    write_torch_legacy(path, {"w": FakeTensor(FakeStorage("0", np.ones(3, np.float32)), 0, (3,), (1,))}, fake_torch)
    data = bytearray(path.read_bytes())
    at = data.rindex(struct.pack("<q", 3))
    data[at:at + 8] = struct.pack("<q", 2 ** 40)
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"bomb.pth: storage '0' declares 1099511627776 elements .* only \d+ "
                                              r"bytes are left"):
        mc.load(str(path))


def test_a_compressed_torch_storage_is_refused(tmp_path, fake_torch):
    path = tmp_path / "deflate.pth"
    write_torch_zip(path, {"w": FakeTensor(FakeStorage("0", np.zeros(2 ** 16, np.float32)), 0, (2 ** 16,), (1,))},
                    fake_torch)
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(tmp_path / "z.pth", "w") as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info.filename),
                         zipfile.ZIP_DEFLATED if "/data/" in info.filename else zipfile.ZIP_STORED)
    with pytest.raises(CheckpointError, match=r"z.pth: storage '0' is compressed .* refusing to inflate it"):
        mc.load(str(tmp_path / "z.pth"))


def _npz_with_member(path, name, payload, compress=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(name, payload, compress)


def test_npy_members_whose_header_lies_about_their_size_are_refused(tmp_path):
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "<f4", "fortran_order": False, "shape": (2 ** 38,)})
    _npz_with_member(tmp_path / "tib.npz", "w.npy", buf.getvalue() + b"\0" * 64)  # declares 1 TiB
    with pytest.raises(CheckpointError, match=r"tib.npz: member w.npy .* declares float32 \(274877906944,\)"):
        mc.load(str(tmp_path / "tib.npz"))
    small = io.BytesIO()
    np.lib.format.write_array_header_1_0(small, {"descr": "<f4", "fortran_order": False, "shape": (4,)})
    _npz_with_member(tmp_path / "inflate.npz", "w.npy", small.getvalue() + b"\0" * 2 ** 24, zipfile.ZIP_DEFLATED)
    with pytest.raises(CheckpointError, match=r"inflate.npz: member w.npy .* declares float32 \(4,\) \(16 bytes\)"):
        mc.load(str(tmp_path / "inflate.npz"))


def test_an_expanded_tensor_loads_as_a_view_and_convert_refuses_to_write_it_out(tmp_path, fake_torch, capsys):
    path = tmp_path / "expand.pth"
    storage = FakeStorage("0", np.arange(4, dtype=np.float32))
    write_torch_zip(path, {"w": FakeTensor(storage, 0, (4, 10 ** 6, 10 ** 3), (1, 0, 0))}, fake_torch)
    w = mc.load(str(path))["w"]
    assert w.shape == (4, 10 ** 6, 10 ** 3) and not w.flags.writeable and w[3, 5, 7] == 3.0  # no 16 GB in memory
    assert cli(["convert", str(path), str(tmp_path / "out.npz")]) == 2
    assert "would become 16,000,000,000 bytes of arrays" in capsys.readouterr().err
    assert not (tmp_path / "out.npz").exists() and glob.glob(str(tmp_path / ".*")) == []


def test_deep_or_damaged_structure_entries_are_checkpoint_errors(tmp_path):
    target = tmp_path / "deep.npz"
    mc.save({"a": np.zeros(2)}, str(target))
    with zipfile.ZipFile(target) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    header = json.loads(members["__minicnn__.json"])
    deep = json.dumps(dict(header, root=None)).replace("null", "[" * 5000 + "]" * 5000)
    with zipfile.ZipFile(target, "w") as zf:
        for n, data in members.items():
            zf.writestr(n, deep if n == "__minicnn__.json" else data)
    with pytest.raises(CheckpointError, match=r"deep.npz: cannot be read \(RecursionError"):
        mc.load(str(target))
    flipped = tmp_path / "flipped.npz"
    mc.save({"epoch": 3, "a": np.zeros(2)}, str(flipped))
    flipped.write_bytes(flipped.read_bytes().replace(b"__minicnn__.json", b"__minicnn__.jsoN"))
    with pytest.raises(CheckpointError, match=r"no __minicnn__.json but a member '__minicnn__.jsoN'"):
        mc.load(str(flipped))


def test_sets_and_other_plain_builtins_of_protocol_2_load(tmp_path):
    obj = {"set": {1, 2}, "frozen": frozenset({3}), "bytes": bytearray(b"ab"), "complex": 1 + 2j,
           "range": range(3), "slice": slice(1, 5, 2)}
    data = pickle.dumps(obj, protocol=2)
    assert b"__builtin__" in data  # protocol 2 names the Python 2 module
    path = tmp_path / "plain.pth"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("archive/data.pkl", data)
    assert mc.load(str(path)) == obj


def test_a_build_opcode_cannot_change_the_loaders_own_helpers(tmp_path):
    defaults = _device.__defaults__
    # GLOBAL torch.device, then BUILD with a slot state that would set __defaults__ on what it got
    evil = (b"\x80\x02ctorch\ndevice\nq\x00N}q\x01X\x0c\x00\x00\x00__defaults__q\x02X\x04\x00\x00\x00evilq\x03"
            b"\x85q\x04s\x86q\x05b.")
    path = tmp_path / "evil.pth"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("archive/data.pkl", evil)
    try:
        mc.load(str(path))
    except CheckpointError:
        pass
    assert _device.__defaults__ == defaults


def test_info_lists_a_pickle_of_shared_lists_once(tmp_path, capsys):
    """A 700-byte pickle whose lists share one another 30 levels deep: 2**30 paths, walked once each."""
    shared = [np.float64(1.0)]
    for _ in range(30):
        shared = [shared, shared]
    path = tmp_path / "dag.pth"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("archive/data.pkl", pickle.dumps(shared, protocol=2))
    start = time.monotonic()
    assert cli(["info", str(path)]) == 0
    assert time.monotonic() - start < 10
    assert "<shared, listed above>" in capsys.readouterr().out


@pytest.mark.parametrize("layout", ["zip", "legacy"])
def test_pickle_lengths_beyond_the_file_are_checkpoint_errors(tmp_path, layout):
    """BINBYTES8 and FRAME opcodes that declare 8 GiB and 1 TiB in a file of a few bytes."""
    for length in (2 ** 33, 2 ** 40):
        payloads = [b"\x80\x04\x8e" + struct.pack("<Q", length) + b"abc",   # BINBYTES8
                    b"\x80\x04\x95" + struct.pack("<Q", length) + b"N."]    # FRAME
        for payload in payloads:
            path = tmp_path / f"{layout}.pth"
            if layout == "zip":
                with zipfile.ZipFile(path, "w") as zf:
                    zf.writestr("archive/data.pkl", payload)
            else:
                path.write_bytes(payload)
            start = time.monotonic()
            with pytest.raises(CheckpointError, match=f"{layout}.pth"):
                mc.load(str(path))
            assert time.monotonic() - start < 5


def test_convert_refuses_a_structure_that_is_not_a_tree(tmp_path, capsys):
    loop = []
    loop.append(loop)
    path = tmp_path / "loop.pth"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("archive/data.pkl", pickle.dumps({"a": loop}, protocol=2))
    assert cli(["convert", str(path), str(tmp_path / "out.npz")]) == 2
    assert "cannot be converted" in capsys.readouterr().err
