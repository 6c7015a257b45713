"""Checkpoints that let a run continue exactly where it stopped.

One file (``mc.save``'s format, written atomically) holds everything the next
epoch depends on: the model's parameters and buffers, the optimizer's buffers
and hyperparameters, the scheduler's counter, minicnn's random generators (which
also drive dropout and, by default, the loader's shuffling), the state of a
loader that owns its generator, the epoch number and the history so far.
"""
import os

from .. import backend, random
from ..serialization import load, save

FORMAT = "minicnn-training-checkpoint"


def save_checkpoint(path, model, optimizer=None, scheduler=None, train_loader=None, epoch=0, history=(),
                    **extra):
    """Write a training checkpoint to ``path`` atomically (a crash mid-write leaves the old file intact)."""
    state = {
        "format": FORMAT,
        "epoch": int(epoch),
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "rng": random.get_rng_state(),
        "train_loader": train_loader.state_dict() if hasattr(train_loader, "state_dict") else None,
        "history": list(history),
        "extra": extra,
    }
    bad = non_finite(state)
    if bad:
        raise ValueError(f"save_checkpoint: refusing to write {path}: {len(bad)} non-finite array(s), e.g. "
                         f"{', '.join(bad[:3])}")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    save(state, path)


def non_finite(obj, prefix=""):
    """Paths ("model/fc.weight", ...) of the floating-point arrays in ``obj`` that hold nan or inf."""
    if isinstance(obj, dict):
        return [p for k, v in obj.items() for p in non_finite(v, f"{prefix}{k}/")]
    if isinstance(obj, (list, tuple)):
        return [p for i, v in enumerate(obj) for p in non_finite(v, f"{prefix}{i}/")]
    array = getattr(obj, "data", obj) if hasattr(obj, "numpy") else obj
    if hasattr(array, "dtype") and array.dtype.kind in "fc" and not bool(backend.array_module(array).isfinite(array).all()):
        return [prefix.rstrip("/")]
    return []


def load_checkpoint(path, model, optimizer=None, scheduler=None, train_loader=None):
    """Restore what ``save_checkpoint`` wrote into the given objects; returns the checkpoint dict
    (``epoch``, ``history``, ``extra``)."""
    state = load(path)
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(f"{path} is not a minicnn training checkpoint (for bare weights use "
                         "model.load_state_dict(mc.load(path)))")
    model.load_state_dict(state["model"])
    for name, obj in (("optimizer", optimizer), ("scheduler", scheduler), ("train_loader", train_loader)):
        if obj is not None and state[name] is not None and hasattr(obj, "load_state_dict"):
            obj.load_state_dict(state[name])
    random.set_rng_state(_rng_state(state["rng"]))
    return state


def _rng_state(state):
    """Python's ``random.setstate`` wants tuples; a file may hand back lists."""
    v, internal, gauss = state["python"]
    return {"numpy": state["numpy"], "python": (v, tuple(internal), gauss)}
