"""Which algorithm computes a convolution: the one place that decides.

``"im2col"`` is the textbook path written out in ``ops/conv.py``; every other algorithm is
a file of its own with the same contract: ``cannot(op, fn, x, w)`` says why it cannot run a
geometry (None: it can), and its ``Conv2d`` / ``ConvTranspose2d`` classes take the op's
Function (the geometry) and have ``forward(x, w, b)`` and ``backward(gy)``. Users choose one
with ``minicnn.backends.conv_algorithm(name)``; ``"auto"`` picks the fastest below.
"""
import contextlib

import numpy as np

from ..cpu import conv_phases, conv_winograd
from . import conv_depthwise, conv_reference, conv_tiled

ALGORITHMS = {
    "reference": conv_reference,  # the definition, a loop over the taps: what the others are tested against
    "tiled": conv_tiled,          # im2col in cache-sized tiles, the batch split over the cores
    "depthwise": conv_depthwise,  # groups = input channels: direct loops over each plane, no im2col
    "winograd": conv_winograd,    # CPU, 3x3 stride 1: F(2x2, 3x3), 16 multiplies per 2x2 outputs, not 36
    "phases": conv_phases,        # CPU, strided: Winograd over the stride phases (AlexNet's 11x11/4 stem)
}
NAMES = ("auto", "im2col") + tuple(ALGORITHMS)
_selected = "auto"


def selected():
    return _selected


@contextlib.contextmanager
def use(name):
    """Run every convolution inside the block on algorithm ``name`` (one of ``NAMES``)."""
    global _selected
    if name not in NAMES:
        raise ValueError(f"conv_algorithm: unknown algorithm {name!r}; choose one of {', '.join(NAMES)}")
    previous, _selected = _selected, name
    try:
        yield
    finally:
        _selected = previous


def choose(op, fn, x, w):
    """The class that runs ``op`` ("conv2d" or "conv_transpose2d") for the Function ``fn`` on
    x, w; None for the textbook im2col path of ``ops/conv.py``."""
    if _selected == "auto":
        return fastest(op, fn, x, w)
    if _selected == "im2col":
        return None
    module = ALGORITHMS[_selected]
    reason = module.cannot(op, fn, x, w)
    if reason is not None:
        raise ValueError(f"{op}: conv algorithm {_selected!r} cannot run input {tuple(x.shape)} {x.dtype}, "
                         f"weight {tuple(w.shape)}, window {tuple(fn.win)}, groups={fn.groups}: {reason}")
    return module.Conv2d if op == "conv2d" else module.ConvTranspose2d


def fastest(op, fn, x, w):
    """Depthwise convolutions directly; on the CPU, Winograd where it applies and pays, then the
    stride phases; else tiled im2col."""
    if fn.groups > 1 and conv_depthwise.cannot(op, fn, x, w) is None:
        return conv_depthwise.Conv2d
    if op == "conv2d" and isinstance(x, np.ndarray):
        win = fn.win
        if conv_winograd.cannot(op, fn, x, w) is None and conv_winograd.pays(x.shape, w.shape, (win.ph, win.pw)):
            return conv_winograd.Conv2d
        if conv_phases.cannot(op, fn, x, w) is None and conv_phases.pays(x, w, fn):
            return conv_phases.Conv2d
    return conv_tiled.Conv2d if op == "conv2d" else conv_tiled.ConvTranspose2d
