"""``minicnn.viz``: seeing inside (matplotlib, the ``[plot]`` extra; Graphviz's ``dot`` if installed).

- ``make_dot(output, params)``: the autograd graph, as DOT text or a picture (``graph.py``).
- ``explain(op)``: one op worked by hand on a tiny input, every matrix printed (``explain.py``).
- ``feature_maps``, ``filters``, ``gradient_flow``: what the layers do while training (``plots.py``).
"""
from .explain import OPS, explain  # noqa: F401
from .graph import Digraph, make_dot  # noqa: F401
from .plots import feature_maps, filters, gradient_flow  # noqa: F401
