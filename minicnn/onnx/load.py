"""``load``: an ONNX file as a trainable minicnn module, run by minicnn's own ops.

The file's graph is a list of nodes in execution order; ``OnnxModule.forward`` walks it, each
node one call of a minicnn op (``F.conv2d`` for Conv, ``F.batch_norm`` for
BatchNormalization, ...), so forward and backward are minicnn's. The floating-point
initializers that feed an op's data become Parameters, named as in the file (``layer1.0.conv1.
weight`` makes the submodules ``layer1``, ``0``, ``conv1``, so a state_dict keeps its keys); the
running statistics of BatchNormalization become buffers; integer initializers and the
arguments that ONNX passes as tensors (shapes, pads, axes, scales) stay plain constants.

A file is data, never code: it is parsed with the ``onnx`` package, every tensor's bytes are
checked against its shape before they are read, external data must lie in the file's folder,
and anything that does not fit raises a ValueError naming the file (or the node).
"""
import math
import os
import re

import numpy as np

from .. import nn, ops
from ..creation import ones_like
from ..nn import functional as F
from ..ops import resize
from ..tensor import Tensor

MAX_ELEMENTS = 1 << 31  # a shape read from a file may not ask for more (a hostile file could ask for 10**18)


def load(f):
    """The ONNX model at path ``f`` (or a ``onnx.ModelProto``) as an ``OnnxModule`` in eval mode."""
    import onnx

    if isinstance(f, onnx.ModelProto):
        return OnnxModule(f, folder=None, source="<ModelProto>")
    path = os.fspath(f)
    with open(path, "rb") as fh:
        data = fh.read()
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except Exception as e:  # protobuf's DecodeError, or worse for a crafted file
        raise ValueError(f"minicnn.onnx.load: {path} is not a valid ONNX file ({type(e).__name__}: {e})") from None
    if not model.HasField("graph"):
        raise ValueError(f"minicnn.onnx.load: {path} holds no graph (not an ONNX model, or cut short)")
    return OnnxModule(model, folder=os.path.dirname(os.path.abspath(path)), source=path)


class OnnxModule(nn.Module):
    """An ONNX graph run by minicnn: ``forward(*inputs)`` takes the graph's inputs in order and
    returns its output (a tuple when there are several). ``nodes`` lists each node as (op type,
    name, input names, output names); ``opset``, ``input_names``, ``output_names`` as in the file."""

    def __init__(self, model, folder, source):
        super().__init__()
        self.source = source
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)
        graph = model.graph
        arrays = {t.name: _array(t, folder, source) for t in graph.initializer}
        self._constants, self._steps, self._where, self.nodes, self._device = {}, [], {}, [], "cpu"
        known = set(arrays)
        self.input_names = [i.name for i in graph.input if i.name not in arrays]
        known.update(self.input_names)
        self.output_names = [o.name for o in graph.output]
        roles = _roles(graph.node)
        for name, a in arrays.items():
            role = roles.get(name, "constant")
            if role == "data" and a.dtype.kind == "f" and a.ndim > 0:
                self._place(name, nn.Parameter(Tensor(a)))
            elif role == "statistic":
                self._place(name, Tensor(a), buffer=True)
            else:
                self._constants[name] = a
        for k, node in enumerate(graph.node):
            where = f"node {k} ({node.name or 'unnamed'}, {node.op_type})"
            if node.domain not in ("", "ai.onnx"):
                raise ValueError(f"minicnn.onnx.load: {source}: {where} is in domain {node.domain!r}; "
                                 "minicnn runs the standard ONNX domain only")
            op = _OPS.get(node.op_type)
            if op is None:
                raise NotImplementedError(
                    f"minicnn.onnx.load: {source}: {where}: op type {node.op_type} (opset {self.opset}) has no "
                    f"minicnn implementation; supported: {', '.join(sorted(_OPS))}")
            for name in node.input:
                if name and name not in known:
                    raise ValueError(f"minicnn.onnx.load: {source}: {where} reads {name!r}, which no input, "
                                     "initializer or earlier node provides")
            attrs = {a.name: _attribute(a, folder, source) for a in node.attribute}
            self._steps.append((node.op_type, where, op, list(node.input), list(node.output), attrs))
            self.nodes.append((node.op_type, node.name, list(node.input), list(node.output)))
            known.update(o for o in node.output if o)
        missing = [n for n in self.output_names if n not in known]
        if missing:
            raise ValueError(f"minicnn.onnx.load: {source}: the graph's outputs {missing} are never computed")
        self.eval()

    def _place(self, name, value, buffer=False):
        """Register ``value`` under the dotted ``name``, making the submodules on the way."""
        parts = name.split(".")
        if not all(re.fullmatch(r"[A-Za-z_]\w*|\d+", p) for p in parts):
            parts = [re.sub(r"\W", "_", name)]
        owner = self
        for p in parts[:-1]:
            sub = owner._modules.get(p)
            if sub is None:
                if p in owner.__dict__ or p in owner._parameters or p in owner._buffers:
                    return self._place(re.sub(r"\W", "_", name), value, buffer)
                sub = nn.Module()
                setattr(owner, p, sub)
            owner = sub
        leaf = parts[-1]
        if leaf in owner._modules or leaf in owner._parameters or leaf in owner._buffers or hasattr(owner, leaf):
            leaf = f"{leaf}_{len(owner._parameters) + len(owner._buffers)}"
        if buffer:
            owner.register_buffer(leaf, value)
        else:
            setattr(owner, leaf, value)
        self._where[name] = (owner, leaf)

    def _value(self, name, env):
        if name in env:
            return env[name]
        if name in self._constants:
            return Tensor(self._constants[name], device=self._device)
        owner, leaf = self._where[name]
        return getattr(owner, leaf)

    def forward(self, *inputs):
        if len(inputs) != len(self.input_names):
            raise TypeError(f"{self.source}: the graph takes {len(self.input_names)} inputs "
                            f"({', '.join(self.input_names)}), got {len(inputs)}")
        self._device = inputs[0].device if inputs and isinstance(inputs[0], Tensor) else "cpu"  # for constants
        env = dict(zip(self.input_names, inputs))
        for op_type, where, op, in_names, out_names, attrs in self._steps:
            args = [self._value(n, env) if n else None for n in in_names]
            try:
                out = op(self, args, attrs, len(out_names))
            except (ValueError, TypeError, NotImplementedError, IndexError) as e:
                raise type(e)(f"{self.source}: {where}: {e}") from None
            outs = out if isinstance(out, tuple) else (out,)
            env.update((n, o) for n, o in zip(out_names, outs) if n)
        result = tuple(env[n] if n in env else self._value(n, env) for n in self.output_names)
        return result[0] if len(result) == 1 else result


# -- reading tensors and attributes safely ------------------------------------------------------
def _array(t, folder, source):
    """The values of TensorProto ``t`` as a NumPy array, checked against its shape first."""
    from onnx import TensorProto, helper, numpy_helper

    dims = [int(d) for d in t.dims]
    if any(d < 0 for d in dims):
        raise ValueError(f"minicnn.onnx.load: {source}: tensor {t.name!r} has a negative dimension {dims}")
    count = math.prod(dims)
    if count > MAX_ELEMENTS:
        raise ValueError(f"minicnn.onnx.load: {source}: tensor {t.name!r} of shape {dims} is too large")
    try:
        dtype = np.dtype(helper.tensor_dtype_to_np_dtype(t.data_type))
    except Exception:
        raise ValueError(f"minicnn.onnx.load: {source}: tensor {t.name!r} has an unknown data type "
                         f"{t.data_type}") from None
    if t.data_type in (TensorProto.STRING, TensorProto.UNDEFINED) or dtype.kind not in "biuf":
        raise ValueError(f"minicnn.onnx.load: {source}: tensor {t.name!r} of type "
                         f"{TensorProto.DataType.Name(t.data_type)} is not numeric")
    if t.data_location == TensorProto.EXTERNAL:
        raw = _external(t, folder, source, count * dtype.itemsize)
        return np.frombuffer(raw, dtype.newbyteorder("<")).astype(dtype).reshape(dims)
    if t.HasField("raw_data"):
        have = len(t.raw_data) // dtype.itemsize
    else:
        field = helper.tensor_dtype_to_field(t.data_type)
        have = len(getattr(t, field))
    if have != count:
        raise ValueError(f"minicnn.onnx.load: {source}: tensor {t.name!r} of shape {dims} needs {count} values, "
                         f"its data holds {have}")
    return numpy_helper.to_array(t).copy()


def _external(t, folder, source, nbytes):
    """Bytes of an external-data tensor; the file must lie inside the model's folder."""
    info = {e.key: e.value for e in t.external_data}
    location = info.get("location", "")
    if folder is None:
        raise ValueError(f"minicnn.onnx.load: {source}: tensor {t.name!r} keeps its data in a file, and an "
                         "in-memory model has no folder to read it from; load it from its path")
    path = os.path.realpath(os.path.join(folder, location))
    root = os.path.realpath(folder)
    if not location or os.path.isabs(location) or os.path.commonpath([root, path]) != root:
        raise ValueError(f"minicnn.onnx.load: {source}: tensor {t.name!r} points at external data "
                         f"{location!r} outside the model's folder; refused")
    try:
        offset, length = int(info.get("offset", 0)), int(info.get("length", nbytes))
    except ValueError:
        raise ValueError(f"minicnn.onnx.load: {source}: tensor {t.name!r} has a malformed offset or length") from None
    if not os.path.isfile(path):
        raise ValueError(f"minicnn.onnx.load: {source}: external data {location!r} of {t.name!r} is missing")
    size = os.path.getsize(path)
    if length != nbytes or offset < 0 or offset + nbytes > size:
        raise ValueError(f"minicnn.onnx.load: {source}: external data of {t.name!r} needs {nbytes} bytes at "
                         f"offset {offset} of {location!r} ({size} bytes, length {length})")
    with open(path, "rb") as fh:
        fh.seek(offset)
        return fh.read(nbytes)


def _attribute(a, folder, source):
    from onnx import AttributeProto

    kind = a.type
    if kind == AttributeProto.FLOAT:
        return a.f
    if kind == AttributeProto.INT:
        return a.i
    if kind == AttributeProto.STRING:
        return a.s.decode("utf-8", "replace")
    if kind == AttributeProto.FLOATS:
        return list(a.floats)
    if kind == AttributeProto.INTS:
        return list(a.ints)
    if kind == AttributeProto.TENSOR:
        return _array(a.t, folder, source)
    raise ValueError(f"minicnn.onnx.load: {source}: attribute {a.name!r} of type "
                     f"{AttributeProto.AttributeType.Name(kind)} is not supported")


#: inputs (by op type and position) that ONNX passes as tensors but that are arguments, not data
_ARGUMENT_INPUTS = {"Reshape": {1}, "Pad": {1, 2, 3}, "Resize": {1, 2, 3}, "Upsample": {1}, "Slice": {1, 2, 3, 4},
                    "Squeeze": {1}, "Unsqueeze": {1}, "Split": {1}, "Expand": {1}, "Clip": {1, 2},
                    "ReduceSum": {1}, "ReduceMean": {1}, "ReduceMax": {1}, "ReduceMin": {1}, "Gather": {1},
                    "MaxUnpool": {1, 2}, "Dropout": {1, 2}, "ConstantOfShape": {0}, "Where": {0}}


def _roles(nodes):
    """Each initializer's role: 'data' (a Parameter), 'statistic' (a buffer) or 'argument'."""
    roles = {}
    for node in nodes:
        for i, name in enumerate(node.input):
            if node.op_type == "BatchNormalization" and i in (3, 4):
                role = "statistic"
            elif i in _ARGUMENT_INPUTS.get(node.op_type, ()):
                role = "argument"
            else:
                role = "data"
            if roles.get(name) != "data":  # read as data anywhere: a Parameter
                roles[name] = role
    return roles


# -- the ops: (module, input Tensors (None for an omitted one), attributes, number of outputs) ------
def _ints(t):
    return [int(v) for v in np.asarray(t.numpy() if isinstance(t, Tensor) else t).reshape(-1)]


def _floats(t):
    return [float(v) for v in np.asarray(t.numpy() if isinstance(t, Tensor) else t).reshape(-1)]


def _pads(attrs, x, k, s, d, op):
    """(begin, end) pads per spatial axis: explicit ``pads`` or ``auto_pad``."""
    n = len(k)
    auto = attrs.get("auto_pad", "NOTSET")
    if auto in ("NOTSET", ""):
        p = attrs.get("pads", [0] * 2 * n)
        return list(zip(p[:n], p[n:]))
    if auto == "VALID":
        return [(0, 0)] * n
    if auto not in ("SAME_UPPER", "SAME_LOWER"):
        raise ValueError(f"{op}: unknown auto_pad {auto!r}")
    out = []
    for size, kk, ss, dd in zip(x.shape[2:], k, s, d):
        total = max((-(-size // ss) - 1) * ss + (kk - 1) * dd + 1 - size, 0)
        small = total // 2
        out.append((small, total - small) if auto == "SAME_UPPER" else (total - small, small))
    return out


def _window(attrs, w_shape=None):
    """(kernel, strides, dilations, number of spatial axes) of a windowed node."""
    k = attrs.get("kernel_shape") or list(w_shape[2:])
    n = len(k)
    s, d = attrs.get("strides", [1] * n), attrs.get("dilations", [1] * n)
    return k, s, d, n


def _as_2d(x, n, op):
    """1-D ops run as 2-D ones with a height of 1."""
    if n == 1:
        return x.unsqueeze(2)
    if n != 2:
        raise NotImplementedError(f"{op}: {n}-D windows (minicnn has 1-D and 2-D)")
    return x


def _pad_input(x, pads, value=0.0):
    """x padded by [(begin, end)] per spatial axis, in F.pad's order (last axis first)."""
    flat = [v for b, e in reversed(pads) for v in (b, e)]
    return F.pad(x, flat, value=value) if any(flat) else x


def _conv(m, args, attrs, n_out):
    x, w, b = (args + [None])[:3]
    k, s, d, n = _window(attrs, w.shape)
    pads = _pads(attrs, x, k, s, d, "Conv")
    x, w = _as_2d(x, n, "Conv"), _as_2d(w, n, "Conv")
    if n == 1:
        pads, s, d = [(0, 0)] + pads, [1] + s, [1] + d
    if all(p == q for p, q in pads):
        y = F.conv2d(x, w, b, s, [p for p, _ in pads], d, attrs.get("group", 1))
    else:
        y = F.conv2d(_pad_input(x, pads), w, b, s, 0, d, attrs.get("group", 1))
    return y.squeeze(2) if n == 1 else y


def _conv_transpose(m, args, attrs, n_out):
    x, w, b = (args + [None])[:3]
    k, s, d, n = _window(attrs, w.shape)
    x, w = _as_2d(x, n, "ConvTranspose"), _as_2d(w, n, "ConvTranspose")
    if n == 1:
        k, s, d = [1] + k, [1] + s, [1] + d
    extra = attrs.get("output_padding", [0] * n)
    extra = [0] * (2 - n) + list(extra)
    full = [ss * (i - 1) + (kk - 1) * dd + 1 for i, kk, ss, dd in zip(x.shape[2:], k, s, d)]
    shape = attrs.get("output_shape")
    auto = attrs.get("auto_pad", "NOTSET")
    if shape is None and auto in ("SAME_UPPER", "SAME_LOWER"):
        shape = [i * ss for i, ss in zip(x.shape[2:], s)][-n:]
    if shape is not None:
        shape = [x.shape[2]] * (2 - n) + list(shape[-n:]) if n == 1 else list(shape[-2:])
        pads = []
        for f, e, o in zip(full, extra, shape):
            total = f + e - o
            small = total // 2
            pads.append((small, total - small) if auto == "SAME_UPPER" else (total - small, small))
    else:
        p = attrs.get("pads", [0] * 2 * n)
        pads = list(zip(p[:n], p[n:]))
        pads = [(0, 0)] * (2 - n) + pads
    group = attrs.get("group", 1)
    if all(p == q for p, q in pads) and all(e < max(ss, dd) for e, ss, dd in zip(extra, s, d)):
        y = F.conv_transpose2d(x, w, b, s, [p for p, _ in pads], extra, group, d)
    else:  # uneven padding: the whole result, cropped (negative pads) and extended by output_padding
        y = F.conv_transpose2d(x, w, None, s, 0, 0, group, d)
        y = _pad_input(y, [(-p, e - q) for (p, q), e in zip(pads, extra)])
        if b is not None:
            y = y + b.reshape(1, -1, 1, 1)
    return y.squeeze(2) if n == 1 else y


def _max_pool(m, args, attrs, n_out):
    x = args[0]
    k, s, d, n = _window(attrs)
    if attrs.get("storage_order", 0):
        raise NotImplementedError("MaxPool: storage_order=1 (column-major indices)")
    pads = _pads(attrs, x, k, s, d, "MaxPool")
    x = _as_2d(x, n, "MaxPool")
    if n == 1:
        k, s, d, pads = [1] + k, [1] + s, [1] + d, [(0, 0)] + pads
    ceil = bool(attrs.get("ceil_mode", 0))
    even = all(p == q and p <= kk // 2 for (p, q), kk in zip(pads, k))
    xp = x if even else _pad_input(x, pads, value=-math.inf)
    y, idx = F.max_pool2d(xp, k, s, [p for p, _ in pads] if even else 0, d, ceil, return_indices=True)
    if n_out < 2:
        return y.squeeze(2) if n == 1 else y
    h, w = x.shape[2:]
    idx = idx.numpy()
    if not even:  # indices of the padded plane -> of the input's plane
        wp = xp.shape[3]
        idx = (idx // wp - pads[0][0]) * w + idx % wp - pads[1][0]
    nc = x.shape[0] * x.shape[1]
    idx = idx + (np.arange(nc).reshape(x.shape[0], x.shape[1], 1, 1) * (h * w))  # ONNX: flat over N, C, H, W
    idx = Tensor(idx.astype(np.int64), device=m._device)
    return (y.squeeze(2), idx.squeeze(2)) if n == 1 else (y, idx)


def _avg_pool(m, args, attrs, n_out):
    x = args[0]
    k, s, d, n = _window(attrs)
    if any(v != 1 for v in d):
        raise NotImplementedError("AveragePool: dilations (minicnn's avg_pool2d has none)")
    pads = _pads(attrs, x, k, s, d, "AveragePool")
    x = _as_2d(x, n, "AveragePool")
    if n == 1:
        k, s, pads = [1] + k, [1] + s, [(0, 0)] + pads
    ceil, include = bool(attrs.get("ceil_mode", 0)), bool(attrs.get("count_include_pad", 0))
    if all(p == q and p <= kk // 2 for (p, q), kk in zip(pads, k)):
        y = F.avg_pool2d(x, k, s, [p for p, _ in pads], ceil, include)
    else:  # uneven padding: pool the zero-padded input; without the pad count, divide by the real pixels
        y = F.avg_pool2d(_pad_input(x, pads), k, s, 0, ceil, True)
        if not include:
            ones = _pad_input(ones_like(x[:1, :1]), pads)
            y = y / F.avg_pool2d(ones, k, s, 0, ceil, True)
    return y.squeeze(2) if n == 1 else y


def _global(reduce):
    def op(m, args, attrs, n_out):
        x = args[0]
        return reduce(x, tuple(range(2, x.ndim)), True)
    return op


def _batch_norm(m, args, attrs, n_out):
    x, scale, bias, mean, var = args[:5]
    momentum, eps = attrs.get("momentum", 0.9), attrs.get("epsilon", 1e-5)
    if not attrs.get("training_mode", 0):  # in train(), the buffers update as PyTorch's do
        return F.batch_norm(x, mean, var, scale, bias, m.training, 1 - momentum, eps)
    # ONNX's training mode also returns the new running statistics, made with the biased variance
    y = F.batch_norm(x, None, None, scale, bias, True, 1 - momentum, eps)
    axes = (0,) + tuple(range(2, x.ndim))
    xs = x.numpy()
    new_mean = mean.numpy() * momentum + xs.mean(axis=axes) * (1 - momentum)
    new_var = var.numpy() * momentum + xs.var(axis=axes) * (1 - momentum)
    stats = (Tensor(v.astype(xs.dtype), device=m._device) for v in (new_mean, new_var))
    return (y, *stats)[:n_out]


def _lrn(m, args, attrs, n_out):
    return F.local_response_norm(args[0], attrs["size"], attrs.get("alpha", 1e-4), attrs.get("beta", 0.75),
                                 attrs.get("bias", 1.0))


def _softmax(fn):
    def op(m, args, attrs, n_out):
        x = args[0]
        if m.opset >= 13:
            return fn(x, attrs.get("axis", -1))
        axis = attrs.get("axis", 1) % max(x.ndim, 1)  # before opset 13: over the flattened dims from axis on
        rows = math.prod(x.shape[:axis])
        return fn(x.reshape(rows, -1), 1).reshape(x.shape)
    return op


def _prelu(m, args, attrs, n_out):
    x, slope = args
    if x.ndim >= 2 and slope.numel() in (1, x.shape[1]) and tuple(slope.shape) in (
            (slope.numel(),), (slope.numel(),) + (1,) * (x.ndim - 2), (1,) * (x.ndim - 1)):
        return F.prelu(x, slope.reshape(-1))
    return F.relu(x) - slope * F.relu(-x)


def _binary(fn):
    def op(m, args, attrs, n_out):
        a, b = args
        return fn(a, b)
    return op


def _div(a, b):
    if a.dtype.kind in "iu" and b.dtype.kind in "iu":
        return ops.div(a, b, rounding_mode="trunc")
    return a / b


def _pow(a, b):
    y = a ** b
    return y.to(dtype=a.dtype) if y.dtype != a.dtype else y  # ONNX: the base's type


def _variadic(fn):
    def op(m, args, attrs, n_out):
        y = args[0]
        for t in args[1:]:
            y = fn(y, t)
        return y
    return op


def _gemm(m, args, attrs, n_out):
    a, b, c = (args + [None])[:3]
    a = a.transpose(0, 1) if attrs.get("transA", 0) else a
    b = b.transpose(0, 1) if attrs.get("transB", 0) else b
    alpha, beta = attrs.get("alpha", 1.0), attrs.get("beta", 1.0)
    y = ops.matmul(a, b)
    y = y * alpha if alpha != 1 else y
    return y if c is None else y + (c * beta if beta != 1 else c)


def _flatten(m, args, attrs, n_out):
    x = args[0]
    axis = attrs.get("axis", 1)
    axis = axis + x.ndim if axis < 0 else axis
    return x.reshape(math.prod(x.shape[:axis]), math.prod(x.shape[axis:]))


def _reshape(m, args, attrs, n_out):
    x, shape = args[0], _ints(args[1])
    if not attrs.get("allowzero", 0):
        shape = [x.shape[i] if v == 0 else v for i, v in enumerate(shape)]
    return x.reshape(*shape)


def _transpose(m, args, attrs, n_out):
    x = args[0]
    return x.permute(*attrs.get("perm", list(reversed(range(x.ndim)))))


def _axes(m, args, attrs, default=None):
    if len(args) > 1 and args[1] is not None:
        return _ints(args[1])
    return attrs.get("axes", default)


def _squeeze(m, args, attrs, n_out):
    x = args[0]
    axes = _axes(m, args, attrs)
    if axes is None:
        axes = [i for i, s in enumerate(x.shape) if s == 1]
    return ops.reshape(x, [s for i, s in enumerate(x.shape) if i not in {a % x.ndim for a in axes}])


def _unsqueeze(m, args, attrs, n_out):
    x = args[0]
    axes = sorted(a % (x.ndim + len(_axes(m, args, attrs))) for a in _axes(m, args, attrs))
    shape = list(x.shape)
    for a in axes:
        shape.insert(a, 1)
    return ops.reshape(x, shape)


def _concat(m, args, attrs, n_out):
    return ops.cat([t for t in args if t is not None], attrs["axis"])


def _split(m, args, attrs, n_out):
    x, axis = args[0], attrs.get("axis", 0)
    sizes = _ints(args[1]) if len(args) > 1 and args[1] is not None else attrs.get("split")
    if sizes is None:
        n = x.shape[axis]
        parts = attrs.get("num_outputs", n_out)
        step = -(-n // parts)
        sizes = [min(step, n - i * step) for i in range(parts)]
    return tuple(ops.split(x, sizes, axis))


def _slice(m, args, attrs, n_out):
    x = args[0]
    if m.opset < 10:
        starts, ends, axes, steps = attrs["starts"], attrs["ends"], attrs.get("axes"), None
    else:
        starts, ends = _ints(args[1]), _ints(args[2])
        axes = _ints(args[3]) if len(args) > 3 and args[3] is not None else None
        steps = _ints(args[4]) if len(args) > 4 and args[4] is not None else None
    axes = axes if axes is not None else list(range(len(starts)))
    steps = steps if steps is not None else [1] * len(starts)
    index = [slice(None)] * x.ndim
    for start, end, axis, step in zip(starts, ends, axes, steps):
        n = x.shape[axis]
        start, end = start + n if start < 0 else start, end + n if end < 0 else end
        if step > 0:
            start, end = min(max(start, 0), n), min(max(end, 0), n)
            index[axis] = slice(start, end, step)
        else:
            start, end = min(max(start, 0), n - 1), min(max(end, -1), n - 1)
            index[axis] = slice(start, None if end < 0 else end, step)
    return x[tuple(index)]


_PAD_MODES = {"constant": "constant", "reflect": "reflect", "edge": "replicate", "wrap": "circular"}


def _pad(m, args, attrs, n_out):
    x = args[0]
    if m.opset < 11:
        pads, value = attrs["pads"], attrs.get("value", 0.0)
        axes = list(range(x.ndim))
    else:
        pads = _ints(args[1])
        value = _floats(args[2])[0] if len(args) > 2 and args[2] is not None else 0.0
        axes = [a % x.ndim for a in _ints(args[3])] if len(args) > 3 and args[3] is not None else list(range(x.ndim))
    mode = attrs.get("mode", "constant")
    if mode not in _PAD_MODES:
        raise NotImplementedError(f"Pad: mode {mode!r}")
    k = len(axes)
    widths = {a: (pads[i], pads[i + k]) for i, a in enumerate(axes)}
    first = min((a for a, w in widths.items() if any(w)), default=None)
    if first is None:
        return x
    flat = [v for a in range(x.ndim - 1, first - 1, -1) for v in widths.get(a, (0, 0))]  # F.pad: last axis first
    return F.pad(x, flat, mode=_PAD_MODES[mode], value=value)


def _resize(m, args, attrs, n_out):
    """Resize of the last one or two axes, with ONNX's own coordinate and rounding rules, as
    minicnn's interpolation op: one (out, in) weight matrix per axis."""
    x = args[0]
    scales = _floats(args[2]) if len(args) > 2 and args[2] is not None and args[2].numel() else None
    sizes = _ints(args[3]) if len(args) > 3 and args[3] is not None and args[3].numel() else None
    if m.opset < 11 and len(args) > 1:  # Resize-10: (X, scales)
        scales = _floats(args[1])
    axes = [a % x.ndim for a in attrs.get("axes", range(x.ndim))]
    scale = dict(zip(axes, scales)) if scales else {}
    size = dict(zip(axes, sizes)) if sizes else {}
    policy = attrs.get("keep_aspect_ratio_policy", "stretch")
    if size and policy != "stretch":
        pick = min if policy == "not_larger" else max
        common = pick(size[a] / x.shape[a] for a in size)
        size = {a: int(math.floor(x.shape[a] * common + 0.5)) for a in size}
        scale = {a: common for a in size}
    resized = [a for a in range(x.ndim) if scale.get(a, 1.0) != 1.0 or size.get(a, x.shape[a]) != x.shape[a]]
    if any(a < x.ndim - 2 for a in resized) or x.ndim not in (3, 4):
        raise NotImplementedError(f"Resize of axes {resized} of a {x.ndim}-D input (minicnn resizes the last "
                                  "one or two axes of (N, C, L) or (N, C, H, W))")
    if attrs.get("antialias", 0):
        raise NotImplementedError("Resize: antialias=1")
    matrices = []
    for a in range(2, x.ndim):
        n = x.shape[a]
        s_ = scale.get(a) or (size[a] / n if a in size else 1.0)
        out = size.get(a, int(math.floor(n * s_)))
        matrices.append(_resize_matrix(n, out, s_, attrs, m.opset).astype(x.dtype))
    fn = resize.Interpolate(*reversed(matrices), mode=attrs.get("mode", "nearest"))
    fn.onnx_resize = (attrs, [scale.get(a, 1.0) for a in range(x.ndim)] if scales else None)  # for export
    return fn.apply(x)


def _resize_matrix(n, out, scale, attrs, opset):
    """(out, n) weights of ONNX Resize along one axis."""
    coords = attrs.get("coordinate_transformation_mode", "half_pixel" if opset >= 11 else "asymmetric")
    mode = attrs.get("mode", "nearest")
    x = np.arange(out, dtype=np.float64)
    if coords == "half_pixel":
        src = (x + 0.5) / scale - 0.5
    elif coords == "half_pixel_symmetric":
        offset = n / 2 * (1 - out / (scale * n))
        src = offset + (x + 0.5) / scale - 0.5
    elif coords == "pytorch_half_pixel":
        src = (x + 0.5) / scale - 0.5 if out > 1 else np.zeros(out)
    elif coords == "align_corners":
        src = x * (n - 1) / (n * scale - 1) if n * scale != 1 else np.zeros(out)
    elif coords == "asymmetric":
        src = x / scale
    elif coords == "tf_half_pixel_for_nn":
        src = (x + 0.5) / scale
    else:
        raise NotImplementedError(f"Resize: coordinate_transformation_mode {coords!r}")
    a = np.zeros((out, n))
    rows = np.arange(out)
    if mode == "nearest":
        rounding = attrs.get("nearest_mode", "round_prefer_floor")
        pick = {"floor": np.floor, "ceil": np.ceil, "round_prefer_ceil": lambda v: np.floor(v + 0.5),
                "round_prefer_floor": lambda v: np.ceil(v - 0.5)}.get(rounding)
        if pick is None:
            raise NotImplementedError(f"Resize: nearest_mode {rounding!r}")
        a[rows, np.clip(pick(src), 0, n - 1).astype(np.int64)] = 1.0
        return a
    if mode == "linear":
        src = np.clip(src, 0, n - 1)
        i0 = np.floor(src).astype(np.int64)
        i1 = np.minimum(i0 + 1, n - 1)
        np.add.at(a, (rows, i0), 1 - (src - i0))
        np.add.at(a, (rows, i1), src - i0)
        return a
    if mode == "cubic":
        return resize.cubic_matrix(src, n, attrs.get("cubic_coeff_a", -0.75),
                                   bool(attrs.get("exclude_outside", 0)))
    raise NotImplementedError(f"Resize: mode {mode!r}")


def _upsample(m, args, attrs, n_out):
    scales = _floats(args[1]) if len(args) > 1 else attrs["scales"]
    if attrs.get("mode", "nearest") != "nearest":
        raise NotImplementedError("Upsample: linear mode uses asymmetric coordinates, which minicnn lacks")
    return F.interpolate(args[0], scale_factor=scales[2:], mode="nearest")


def _max_unpool(m, args, attrs, n_out):
    """ONNX's indices are flat over (N, C, H, W) of the shape that pooling inverts; an
    ``output_shape`` larger than that gets zeros at the bottom and right."""
    x, idx = args[0], args[1]
    k = attrs["kernel_shape"]
    s = attrs.get("strides", [1] * len(k))
    p = attrs.get("pads", [0] * 2 * len(k))
    n = len(k)
    hw = [(i - 1) * ss - pb - pe + kk for i, ss, pb, pe, kk in zip(x.shape[2:], s, p[:n], p[n:], k)]
    plane = Tensor(idx.numpy() % math.prod(hw), device=m._device)
    y = F.max_unpool2d(x, plane, k, s, 0, hw)
    if len(args) > 2 and args[2] is not None:
        y = _pad_input(y, [(0, o - i) for o, i in zip(_ints(args[2])[2:], hw)])
    return y


def _dropout(m, args, attrs, n_out):
    x = args[0]
    ratio = attrs.get("ratio", 0.5)
    if len(args) > 1 and args[1] is not None:
        ratio = _floats(args[1])[0]
    training = len(args) > 2 and args[2] is not None and bool(_ints(args[2])[0])
    y = F.dropout(x, ratio, training=training) if training else x
    return (y, Tensor(np.ones(x.shape, bool), device=m._device)) if n_out > 1 else y


def _clip(m, args, attrs, n_out):
    x = args[0]
    if m.opset < 11:
        lo, hi = attrs.get("min"), attrs.get("max")
    else:
        lo = _floats(args[1])[0] if len(args) > 1 and args[1] is not None else None
        hi = _floats(args[2])[0] if len(args) > 2 and args[2] is not None else None
    if lo is None and hi is None:
        return x
    if x.dtype.kind in "iu":
        lo, hi = (None if v is None else int(v) for v in (lo, hi))
    return ops.clamp(x, lo, hi)


def _reduce(fn, input_axes_from, empty=None):
    def op(m, args, attrs, n_out):
        x = args[0]
        if m.opset >= input_axes_from:
            axes = _ints(args[1]) if len(args) > 1 and args[1] is not None else []
        else:
            axes = attrs.get("axes", [])
        if not axes:
            if attrs.get("noop_with_empty_axes", 0):
                return x
            axes = list(range(x.ndim))
        axes, keep = tuple(a % x.ndim for a in axes), bool(attrs.get("keepdims", 1))
        if empty is not None and any(x.shape[a] == 0 for a in axes):  # ONNX: the identity of max/min
            shape = [1 if a in axes else d for a, d in enumerate(x.shape) if keep or a not in axes]
            return Tensor(np.full(shape, empty).astype(x.dtype), device=m._device)
        return fn(x, axes, keep)
    return op


def _arg(fn):
    def op(m, args, attrs, n_out):
        x, axis = args[0], attrs.get("axis", 0)
        if attrs.get("select_last_index", 0):
            n = x.shape[axis]
            flipped = x[(slice(None),) * (axis % x.ndim) + (slice(None, None, -1),)]
            return (n - 1) - fn(flipped, axis, bool(attrs.get("keepdims", 1)))
        return fn(x, axis, bool(attrs.get("keepdims", 1)))
    return op


def _shape(m, args, attrs, n_out):
    shape = list(args[0].shape)
    start, end = attrs.get("start", 0), attrs.get("end", len(shape))
    return Tensor(np.asarray(shape[start:end] if end else shape[start:], np.int64), device=m._device)


def _gather(m, args, attrs, n_out):
    x, idx = args
    axis = attrs.get("axis", 0) % x.ndim
    i = idx.numpy().astype(np.int64)
    i = np.where(i < 0, i + x.shape[axis], i)
    return x[(slice(None),) * axis + (i,)]


def _cast(m, args, attrs, n_out):
    from onnx import helper

    return args[0].to(dtype=np.dtype(helper.tensor_dtype_to_np_dtype(attrs["to"])))


def _constant(m, args, attrs, n_out):
    if "value" in attrs:
        return Tensor(attrs["value"], device=m._device)
    for key, dtype in (("value_float", np.float32), ("value_floats", np.float32), ("value_int", np.int64),
                       ("value_ints", np.int64)):
        if key in attrs:
            return Tensor(np.asarray(attrs[key], dtype), device=m._device)
    raise NotImplementedError(f"Constant: attributes {sorted(attrs)}")


def _constant_of_shape(m, args, attrs, n_out):
    shape = _ints(args[0])
    if any(s < 0 for s in shape) or math.prod(shape) > MAX_ELEMENTS:
        raise ValueError(f"ConstantOfShape: shape {shape} is negative or too large")
    value = attrs.get("value", np.zeros(1, np.float32))
    return Tensor(np.full(shape, value.reshape(-1)[0], value.dtype), device=m._device)


def _expand(m, args, attrs, n_out):
    x, shape = args[0], _ints(args[1])
    target = np.broadcast_shapes(tuple(x.shape), tuple(shape))
    if math.prod(target) > MAX_ELEMENTS:
        raise ValueError(f"Expand: shape {list(target)} is too large")
    return x.expand(*target)


def _where(m, args, attrs, n_out):
    cond, a, b = args
    return ops.where(cond.numpy().astype(bool), a, b)


_OPS = {
    "Identity": lambda m, a, at, n: a[0], "Constant": _constant, "ConstantOfShape": _constant_of_shape,
    "Conv": _conv, "ConvTranspose": _conv_transpose, "MaxPool": _max_pool, "AveragePool": _avg_pool,
    "GlobalAveragePool": _global(lambda x, axes, keep: x.mean(axes, keep)),
    "GlobalMaxPool": _global(lambda x, axes, keep: ops.amax(x, axes, keep)),
    "BatchNormalization": _batch_norm, "LRN": _lrn, "MaxUnpool": _max_unpool, "Dropout": _dropout,
    "Relu": lambda m, a, at, n: F.relu(a[0]), "Sigmoid": lambda m, a, at, n: F.sigmoid(a[0]),
    "Tanh": lambda m, a, at, n: F.tanh(a[0]), "Exp": lambda m, a, at, n: ops.exp(a[0]),
    "Log": lambda m, a, at, n: ops.log(a[0]), "Sqrt": lambda m, a, at, n: ops.sqrt(a[0]),
    "Abs": lambda m, a, at, n: ops.abs(a[0]), "Neg": lambda m, a, at, n: -a[0],
    "LeakyRelu": lambda m, a, at, n: F.leaky_relu(a[0], at.get("alpha", 0.01)), "PRelu": _prelu,
    "Softmax": _softmax(F.softmax), "LogSoftmax": _softmax(F.log_softmax), "Clip": _clip,
    "Add": _binary(lambda a, b: a + b), "Sub": _binary(lambda a, b: a - b), "Mul": _binary(lambda a, b: a * b),
    "Div": _binary(_div), "Pow": _binary(_pow), "MatMul": _binary(ops.matmul),
    "Max": _variadic(ops.maximum), "Min": _variadic(ops.minimum), "Sum": _variadic(lambda a, b: a + b),
    "Gemm": _gemm, "Flatten": _flatten, "Reshape": _reshape, "Transpose": _transpose,
    "Squeeze": _squeeze, "Unsqueeze": _unsqueeze, "Concat": _concat, "Split": _split, "Slice": _slice,
    "Pad": _pad, "Resize": _resize, "Upsample": _upsample, "Shape": _shape, "Gather": _gather, "Cast": _cast,
    "Expand": _expand, "Where": _where,
    "ReduceSum": _reduce(lambda x, axes, keep: x.sum(axes, keep), 13),
    "ReduceMean": _reduce(lambda x, axes, keep: x.mean(axes, keep), 18),
    "ReduceMax": _reduce(lambda x, axes, keep: ops.amax(x, axes, keep), 18, -np.inf),
    "ReduceMin": _reduce(lambda x, axes, keep: ops.amin(x, axes, keep), 18, np.inf),
    "ArgMax": _arg(ops.argmax), "ArgMin": _arg(ops.argmin),
}
