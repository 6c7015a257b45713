"""``fit`` and ``evaluate``: the training loop, written out once so every recipe shares it.

One epoch::

    for x, y in train_loader:
        loss = loss_fn(model(x), y)          # stop if loss is nan/inf
        optimizer.zero_grad(); loss.backward(); optimizer.step()
    scheduler.step(); evaluate on val_loader; log; checkpoint

With ``checkpoint_dir``, ``last.ckpt`` (see ``checkpoint.py``), ``log.csv`` and
``history.json`` are rewritten after every epoch; ``resume=True`` restores
``last.ckpt`` and continues with the next epoch, giving the same weights as a run
that was never interrupted.
"""
import itertools
import math
import os
import time

import numpy as np

from .. import autograd, distributed
from ..nn.utils import clip_grad_norm_
from ..tensor import Tensor
from .checkpoint import load_checkpoint, non_finite, save_checkpoint
from .history import write_history
from .progress import progress


class ResumeError(ValueError):
    """The checkpoint to resume from cannot be read, or does not fit the model."""


class TrainingDiverged(RuntimeError):
    """The loss, or the model's or optimizer's state, became nan or inf; the run stopped without
    writing a checkpoint of that epoch."""


def _to(batch, device):
    return tuple(t.to(device) if isinstance(t, Tensor) else t for t in batch)


def _batches(loader, max_batches):
    """The loader's batches, at most ``max_batches``; closes a prefetching iterator when stopped early."""
    it = iter(loader)
    try:
        yield from itertools.islice(it, max_batches)
    finally:
        if hasattr(it, "close"):
            it.close()


def _default_loss(output, target):
    from ..nn.functional import cross_entropy

    return cross_entropy(output, target)


def evaluate(model, loader, loss_fn=None, metrics=(), device="cpu", max_batches=None, show_progress=False):
    """Mean loss (weighted by batch size) and every metric over ``loader``, in eval mode and without a graph.

    Returns ``{"loss": ..., metric name: value, ...}``; ``loss`` is absent when ``loss_fn`` is None.
    """
    was_training = model.training
    model.eval()
    for m in metrics:
        m.reset()
    total, count = 0.0, 0
    try:
        with autograd.no_grad():
            total_batches = len(loader) if max_batches is None else min(len(loader), max_batches)
            for x, y in progress(_batches(loader, max_batches), total_batches, "eval", show_progress):
                x, y = _to((x, y), device)
                out = model(x)
                if loss_fn is not None:
                    total += loss_fn(out, y).item() * len(x)
                count += len(x)
                for m in metrics:
                    m.update(out, y)
    finally:
        model.train(was_training)
    result = {"loss": total / max(count, 1)} if loss_fn is not None else {}
    for m in metrics:
        result.update(m.compute())
    return result


def fit(model, optimizer, train_loader, val_loader=None, epochs=1, loss_fn=None, metrics=(), scheduler=None,
        checkpoint_dir=None, resume=False, log=print, device="cpu", max_batches=None, scheduler_interval="epoch",
        clip_grad_norm=None, show_progress=True, on_epoch_end=None):
    """Train ``model`` for ``epochs`` epochs; returns the history, one dict per epoch.

    loss_fn(output, target) -> scalar Tensor (default: cross entropy); ``metrics``:
    ``minicnn.metrics`` accumulators computed on the training batches (as seen
    during the epoch) and on ``val_loader`` after it. ``scheduler.step()`` runs
    after every epoch, or after every batch with ``scheduler_interval="batch"``.
    ``max_batches`` caps the batches per epoch (for smoke tests). ``clip_grad_norm``:
    a max gradient norm applied before each step. ``log``: where the one-line epoch
    summaries go (``print`` by default; None for silence). ``on_epoch_end(epoch, row)`` runs after
    each epoch's summary, while the parameters still hold the last batch's gradients.

    A nan/inf loss raises ``TrainingDiverged``; ``last.ckpt`` then still holds the
    last good epoch.

    Data-parallel (``model`` a DistributedDataParallel, ``train_loader`` with a
    DistributedSampler): every rank trains on its share; the epoch's figures are averaged
    over the ranks; rank 0 alone logs and writes the checkpoint (of the wrapped model, so
    its keys are the plain model's); every rank resumes from it.
    """
    world, main = distributed.get_world_size(), distributed.get_rank() == 0
    if not main:  # rank 0 alone prints, shows progress and writes files; every rank trains
        log, show_progress = None, False
    saved = getattr(model, "module", model)  # a DistributedDataParallel's own model: plain keys
    if scheduler_interval not in ("epoch", "batch"):
        raise ValueError(f"fit: scheduler_interval must be 'epoch' or 'batch', got {scheduler_interval!r}")
    loss_fn = loss_fn or _default_loss
    log = log or (lambda *a, **k: None)
    ckpt = os.path.join(checkpoint_dir, "last.ckpt") if checkpoint_dir else None
    if checkpoint_dir and main:
        os.makedirs(checkpoint_dir, exist_ok=True)
    history, start, last_saved = [], 1, None  # last_saved: the epoch in ckpt that this run wrote or resumed
    if resume:
        if ckpt is None:
            raise ValueError("fit: resume=True needs a checkpoint_dir")
        if os.path.exists(ckpt):  # every rank reads rank 0's checkpoint
            try:
                state = load_checkpoint(ckpt, saved, optimizer, scheduler, train_loader)
            except (ValueError, KeyError, TypeError, OSError, RuntimeError) as e:
                lines = [line.strip() for line in str(e).splitlines() if line.strip()]
                detail = lines[0] if len(lines) == 1 else lines[1] + (
                    f" (and {len(lines) - 2} more)" if len(lines) > 2 else "")  # one line: the first problem
                raise ResumeError(f"cannot resume from {ckpt}: {detail}") from e
            history, start = list(state["history"]), int(state["epoch"]) + 1
            last_saved = int(state["epoch"])
            log(f"resumed from {ckpt} after epoch {state['epoch']}")
        else:
            log(f"no checkpoint at {ckpt}; starting from scratch")

    for epoch in range(start, epochs + 1):
        t0 = time.perf_counter()
        model.train()
        if hasattr(getattr(train_loader, "sampler", None), "set_epoch"):
            train_loader.sampler.set_epoch(epoch)  # a new order, the same on every rank
        for m in metrics:
            m.reset()
        total, count = 0.0, 0
        n_batches = len(train_loader) if max_batches is None else min(len(train_loader), max_batches)
        if n_batches == 0:
            raise ValueError("fit: the training loader gives no batch: fewer samples (in this process's "
                             "share, when data-parallel) than one batch with drop_last; use a smaller batch size")
        batches = _batches(train_loader, max_batches)
        bar = progress(batches, n_batches, f"epoch {epoch}/{epochs}", show_progress)
        try:
            for b, (x, y) in enumerate(bar):
                x, y = _to((x, y), device)
                out = model(x)
                loss = loss_fn(out, y)
                value = loss.item()
                if not math.isfinite(value):
                    where = _last_good(ckpt, last_saved)
                    raise TrainingDiverged(
                        f"training stopped: the loss is {value} at epoch {epoch}, batch {b + 1}; {where}. "
                        "Try a smaller learning rate, gradient clipping (clip_grad_norm) or check the data for nan/inf."
                    )
                optimizer.zero_grad()
                loss.backward()
                if clip_grad_norm is not None:
                    clip_grad_norm_(model.parameters(), clip_grad_norm)
                optimizer.step()
                if scheduler is not None and scheduler_interval == "batch":
                    scheduler.step()
                total += value * len(x)
                count += len(x)
                for m in metrics:
                    m.update(out.detach(), y)
                bar.set_postfix(loss=total / count)
        finally:
            bar.close()
            batches.close()  # stops a prefetch thread at once, also when the loss diverged
        bad = non_finite({"model": saved.state_dict(), "optimizer": optimizer.state_dict()})
        if bad:  # a finite loss can still come with a gradient or an update that is not
            where = _last_good(ckpt, last_saved)
            raise TrainingDiverged(
                f"training stopped: after epoch {epoch}, {len(bad)} array(s) of the model and optimizer hold nan "
                f"or inf (e.g. {', '.join(bad[:3])}); {where}. Try a smaller learning rate or gradient clipping "
                "(clip_grad_norm).")
        row = {"epoch": epoch, "lr": optimizer.param_groups[0]["lr"], "train_loss": total / max(count, 1)}
        for m in metrics:
            row.update({f"train_{k}": v for k, v in m.compute().items()})
        if scheduler is not None and scheduler_interval == "epoch":
            scheduler.step()
        if val_loader is not None:
            val = evaluate(model, val_loader, loss_fn, metrics, device, max_batches)
            row.update({f"val_{k}": v for k, v in val.items()})
        row["time"] = time.perf_counter() - t0
        if world > 1:
            row = _mean_over_ranks(row)
        history.append(row)
        shown = _summary_keys(metrics)
        log(f"epoch {epoch}/{epochs}  " + "  ".join(_fmt(k, v) for k, v in row.items() if k != "epoch" and (
            shown is None or k in shown)))
        if on_epoch_end is not None:
            on_epoch_end(epoch, row)
        if checkpoint_dir and main:
            save_checkpoint(ckpt, saved, optimizer, scheduler, train_loader, epoch, history)
            write_history(history, checkpoint_dir)
            last_saved = epoch
        if world > 1:
            distributed.barrier()  # no rank runs ahead of the checkpoint it would resume from
    return history


def _last_good(ckpt, epoch):
    """Where a diverged run can be resumed from (every checkpoint written is finite)."""
    if ckpt is None or epoch is None:
        return "no checkpoint was written"
    return f"the last good checkpoint is {ckpt} (epoch {epoch})"


def _mean_over_ranks(row):
    """The epoch's numbers averaged over the ranks (each saw its own share of the data)."""
    keys = [k for k, v in row.items() if k != "epoch" and isinstance(v, (int, float))]
    values = np.array([float(row[k]) for k in keys])
    distributed.all_reduce(values, op=distributed.ReduceOp.AVG)
    return dict(row, **dict(zip(keys, values.tolist())))


def _summary_keys(metrics):
    """Columns of the one-line epoch summary, or None for all (metrics may keep some for the files only)."""
    if all(m.log_keys is None for m in metrics):
        return None
    keys = {"lr", "train_loss", "val_loss", "time"}
    for m in metrics:
        names = m.log_keys if m.log_keys is not None else m.compute().keys()
        keys |= {f"{p}_{k}" for k in names for p in ("train", "val")}
    return keys


def _fmt(k, v):
    if k == "time":
        return f"{v:.1f}s"
    if k == "lr":
        return f"lr {v:.3g}"
    return f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}"
