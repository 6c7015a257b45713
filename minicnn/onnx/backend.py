"""An ONNX backend (``onnx.backend.base.Backend``) that runs models on minicnn, so that ONNX's
own backend test suite can check minicnn's ops::

    import onnx.backend.test
    import minicnn.onnx.backend as backend
    tests = onnx.backend.test.BackendTest(backend, __name__)
    tests.include(r"test_conv_.*").include(r"test_relu_.*")
    globals().update(tests.test_cases)

``prepare(model, device="CPU")`` builds an ``OnnxModule`` (``minicnn.onnx.load``) and
``rep.run(inputs)`` returns its outputs as NumPy arrays. ``device`` "CUDA" runs on the GPU.
"""
import numpy as np
import onnx
from onnx.backend.base import Backend, BackendRep

from .. import backend as _arrays
from ..autograd import no_grad
from ..tensor import Tensor
from .load import load

_DEVICES = {"CPU": "cpu", "CUDA": "cuda"}


class MinicnnRep(BackendRep):
    """A prepared model: ``run(inputs)`` -> tuple of NumPy arrays, one per graph output."""

    def __init__(self, module, device):
        self.module, self.device = module, device

    def run(self, inputs, **kwargs):
        inputs = [inputs] if isinstance(inputs, np.ndarray) else list(inputs)
        with no_grad():
            out = self.module(*[Tensor(np.asarray(a), device=self.device) for a in inputs])
        outs = out if isinstance(out, tuple) else (out,)
        return tuple(o.numpy() for o in outs)


class MinicnnBackend(Backend):
    @classmethod
    def prepare(cls, model, device="CPU", **kwargs):
        super().prepare(model, device, **kwargs)  # onnx.checker.check_model
        dev = _device(device)
        return MinicnnRep(load(model).to(dev), dev)

    @classmethod
    def run_node(cls, node, inputs, device="CPU", outputs_info=None, **kwargs):
        """Run one node on ``inputs`` (NumPy arrays, in the node's input order)."""
        super().run_node(node, inputs, device, outputs_info, **kwargs)
        names = [n for n in node.input if n]
        graph = onnx.helper.make_graph(
            [node], "run_node",
            [onnx.helper.make_tensor_value_info(n, onnx.helper.np_dtype_to_tensor_dtype(np.asarray(a).dtype), None)
             for n, a in zip(names, inputs)],
            [onnx.helper.make_tensor_value_info(n, onnx.TensorProto.UNDEFINED, None) for n in node.output])
        opset = kwargs.get("opset_version", onnx.defs.onnx_opset_version())
        model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", opset)])
        return MinicnnRep(load(model).to(_device(device)), _device(device)).run(inputs)

    @classmethod
    def supports_device(cls, device):
        name = str(device).split(":")[0].upper()
        return name == "CPU" or (name == "CUDA" and _arrays.cuda_available())


def _device(device):
    name = str(device).split(":")[0].upper()
    if name not in _DEVICES:
        raise ValueError(f"minicnn.onnx.backend: unknown device {device!r} (CPU or CUDA)")
    return _DEVICES[name]


prepare = MinicnnBackend.prepare
run_model = MinicnnBackend.run_model
run_node = MinicnnBackend.run_node
supports_device = MinicnnBackend.supports_device
