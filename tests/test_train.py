"""The training loop: exact resume, the nan stop, logs, plots, progress output."""
import io
import json
import math
import os

import numpy as np
import pytest

import minicnn as mc
import minicnn.nn as nn
import minicnn.nn.functional as F
import minicnn.optim as optim
from minicnn import data as D
from minicnn.data import transforms as T
from minicnn.metrics import Accuracy
from minicnn.train import (TrainingDiverged, evaluate, fit, load_checkpoint, plot_history, progress,
                           save_checkpoint)

rng = np.random.default_rng(0)
X = rng.standard_normal((96, 1, 2, 3)).astype(np.float32)
Y = (X.reshape(96, -1).sum(1) > 0).astype(np.int64)


class Jitter:
    """A random transform, so the loader's per-batch generators matter."""

    def __call__(self, x):
        return x + np.float32(0.1) * T.rng().standard_normal(x.shape).astype(np.float32)


class Jittered(D.Dataset):
    def __len__(self):
        return len(X)

    def __getitem__(self, i):
        return Jitter()(X[i]), int(Y[i])


def build(seed, own_generator):
    """A tiny model with dropout and batch norm, Adam, warm-up + cosine, a prefetching shuffled loader."""
    mc.manual_seed(seed)
    model = nn.Sequential(nn.Flatten(), nn.Linear(6, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.3),
                          nn.Linear(16, 2))
    opt = optim.Adam(model.parameters(), lr=0.05)
    sched = optim.lr_scheduler.SequentialLR(opt, [optim.lr_scheduler.LinearLR(opt, 0.2, total_iters=2),
                                                  optim.lr_scheduler.CosineAnnealingLR(opt, 4)], [2])
    train = D.DataLoader(Jittered(), 16, shuffle=True, generator=1 if own_generator else None, prefetch=2)
    val = D.DataLoader(D.TensorDataset(X, Y), 40)
    return model, opt, sched, train, val


def train(directory, epochs, resume, seed=0, own_generator=True, **kw):
    model, opt, sched, tl, vl = build(seed, own_generator)
    history = fit(model, opt, tl, vl, epochs, metrics=[Accuracy()], scheduler=sched, checkpoint_dir=directory,
                  resume=resume, log=None, show_progress=False, **kw)
    return model, opt, history


@pytest.mark.parametrize("own_generator", [True, False])
def test_resumed_run_equals_uninterrupted_run_bit_for_bit(tmp_path, own_generator):
    model_a, opt_a, hist_a = train(tmp_path / "a", 6, False, own_generator=own_generator)
    train(tmp_path / "b", 2, False, own_generator=own_generator)
    train(tmp_path / "b", 4, True, seed=123, own_generator=own_generator)  # stop again after epoch 4
    model_b, opt_b, hist_b = train(tmp_path / "b", 6, True, seed=456, own_generator=own_generator)
    for k, v in model_a.state_dict().items():
        np.testing.assert_array_equal(v, model_b.state_dict()[k], err_msg=k)
    sa, sb = opt_a.state_dict(), opt_b.state_dict()
    for i in sa["state"]:
        for k in sa["state"][i]:
            np.testing.assert_array_equal(sa["state"][i][k], sb["state"][i][k])
    assert sa["param_groups"][0]["lr"] == sb["param_groups"][0]["lr"]
    assert len(hist_b) == 6
    for ra, rb in zip(hist_a, hist_b):
        assert {k: v for k, v in ra.items() if k != "time"} == {k: v for k, v in rb.items() if k != "time"}
    assert hist_a[-1]["val_accuracy"] > 0.8  # it did learn something


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    calls = []

    def loss_after_two_epochs(out, y):  # 6 training batches per epoch: batch 3 of epoch 3 goes nan
        loss = F.cross_entropy(out, y)
        if not mc.is_grad_enabled():  # validation
            return loss
        calls.append(1)
        return loss * float("nan") if len(calls) == 15 else loss

    with pytest.raises(TrainingDiverged, match=r"loss is nan at epoch 3, batch 3; the last good checkpoint is "
                                               r".*last.ckpt \(epoch 2\)"):
        train(tmp_path / "run", 5, False, loss_fn=loss_after_two_epochs)
    model_ref, _, _ = train(tmp_path / "ref", 2, False)
    model, opt, sched, tl, _ = build(7, True)
    state = load_checkpoint(tmp_path / "run" / "last.ckpt", model, opt, sched, tl)
    assert state["epoch"] == 2 and len(state["history"]) == 2
    for k, v in model_ref.state_dict().items():
        np.testing.assert_array_equal(v, model.state_dict()[k])
    rows = open(tmp_path / "run" / "log.csv").read().strip().splitlines()
    assert len(rows) == 3 and rows[0].startswith("epoch,lr,train_loss,train_accuracy,val_loss,val_accuracy")


def test_nan_without_checkpoint_dir_says_so():
    model, opt, _, tl, _ = build(0, True)
    with pytest.raises(TrainingDiverged, match="no checkpoint was written"):
        fit(model, opt, tl, epochs=1, loss_fn=lambda o, y: F.cross_entropy(o, y) * math.inf, log=None,
            show_progress=False)


def test_history_files_and_log_lines(tmp_path):
    lines = []
    model, opt, sched, tl, vl = build(0, True)
    hist = fit(model, opt, tl, vl, 2, metrics=[Accuracy()], checkpoint_dir=tmp_path, log=lines.append,
               show_progress=False, max_batches=2)
    assert len(lines) == 2 and lines[1].startswith("epoch 2/2  lr 0.01  train_loss ")
    saved = json.load(open(tmp_path / "history.json"))
    assert [r["epoch"] for r in saved] == [1, 2] and saved[1]["val_accuracy"] == hist[1]["val_accuracy"]
    assert os.path.exists(tmp_path / "last.ckpt")
    lines.clear()
    fit(model, opt, tl, vl, 2, checkpoint_dir=tmp_path, resume=True, log=lines.append, show_progress=False)
    assert lines == [f"resumed from {tmp_path / 'last.ckpt'} after epoch 2"]


def test_plot_history_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    hist = [{"epoch": e, "lr": 0.1, "train_loss": 1 / e, "val_loss": 1.2 / e, "val_accuracy": 1 - 1 / e}
            for e in range(1, 5)]
    path = plot_history(hist, tmp_path / "h.png")
    img = D.read_png(path)
    assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 300


def test_evaluate_restores_the_mode_and_averages_by_sample():
    model, _, _, _, _ = build(0, True)
    loader = D.DataLoader(D.TensorDataset(X, Y), 40)  # batches of 40, 40, 16
    model.train()
    res = evaluate(model, loader, F.cross_entropy, [Accuracy()])
    assert model.training
    model.eval()
    with mc.no_grad():
        out = model(mc.tensor(X))
        whole = F.cross_entropy(out, mc.tensor(Y)).item()
    assert res["loss"] == pytest.approx(whole, rel=1e-5)
    assert res["accuracy"] == pytest.approx((out.numpy().argmax(1) == Y).mean())


def test_checkpoint_round_trip_and_foreign_files(tmp_path):
    model, opt, sched, tl, _ = build(0, True)
    save_checkpoint(tmp_path / "c.ckpt", model, opt, sched, tl, epoch=3, history=[{"epoch": 1}], note="x")
    state = load_checkpoint(tmp_path / "c.ckpt", build(1, True)[0])
    assert state["epoch"] == 3 and state["extra"] == {"note": "x"}
    mc.save(model.state_dict(), tmp_path / "w.npz")
    with pytest.raises(ValueError, match="not a minicnn training checkpoint"):
        load_checkpoint(tmp_path / "w.npz", model)


def test_progress_plain_fallback_and_silence():
    out = io.StringIO()
    bar = progress(range(3), 3, "epoch 1/1", interval=0.0, stream=out)
    bar.set_postfix(loss=0.5)
    assert list(bar) == [0, 1, 2]
    assert out.getvalue().splitlines()[0].startswith("epoch 1/1 1/3")
    assert "loss 0.5" in out.getvalue()
    out = io.StringIO()
    assert list(progress(range(3), 3, "x", enabled=False, interval=0.0, stream=out)) == [0, 1, 2]
    assert out.getvalue() == ""
