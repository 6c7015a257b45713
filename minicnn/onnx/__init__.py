"""ONNX, the exchange format of the field: ``export`` writes a minicnn model as an ONNX graph,
``load`` builds a trainable minicnn module from any ONNX CNN, and ``minicnn.onnx.backend`` runs
ONNX models (and ONNX's own backend tests) on minicnn.

Needs the ``onnx`` package (``pip install minicnn[onnx]``), imported when these are called.
"""
from .export import export
from .load import load

__all__ = ["export", "load"]
