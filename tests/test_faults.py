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
    model.weight.data[0, 0] = np.nan
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
