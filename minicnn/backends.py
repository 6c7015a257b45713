"""Switches for how minicnn computes, as ``torch.backends``: which convolution algorithm, how
much scratch memory, and the opt-in thread settings for CPU training.

    with minicnn.backends.conv_algorithm("im2col"):   # the textbook path, forward and backward
        y = model(x)

``conv_algorithms()`` lists the names: ``"auto"`` (the default: the fastest that applies),
``"im2col"`` (``ops/conv.py``), ``"reference"`` (the definition, a loop over the taps) and
the fast paths (``"tiled"``, and on the CPU ``"winograd"`` and ``"phases"``). An algorithm
that cannot serve a geometry raises a ValueError naming both.
"""
from .cpu.threads import tune_cpu_threads  # noqa: F401
from .ops import conv_algorithms as _algorithms
from .workspace import clear_workspace, get_workspace_limit, set_workspace_limit  # noqa: F401


def conv_algorithms():
    """The names ``conv_algorithm`` accepts, "auto" first."""
    return list(_algorithms.NAMES)


def conv_algorithm(name):
    """A context manager: every convolution inside runs on algorithm ``name``."""
    return _algorithms.use(name)


def current_conv_algorithm():
    """The name in force ("auto" outside any ``conv_algorithm`` block)."""
    return _algorithms.selected()
