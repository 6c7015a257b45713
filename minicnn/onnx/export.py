"""``export``: one forward pass of a model, read op by op and written as an ONNX graph.

minicnn is define-by-run: running the model is what builds its graph. ``export`` runs one
eval-mode forward pass inside ``autograd.trace``, so every op that runs reports itself (its
``Function``, whose hyperparameters sit on ``self``), its input Tensors and its output Tensors.
A converter per Function class below writes the matching ONNX node(s). A tensor that no op made
is the example input (a graph input), a parameter or buffer (an initializer named by its
``state_dict`` key), or a constant (a Constant node; integer arguments such as shapes and axes
are initializers).
"""
import os
import tempfile

import numpy as np

from .. import autograd, backend
from ..ops import activation, arithmetic, conv, dropout, elementwise, linear, loss, normalization, pooling
from ..ops import reduction, resize, shape
from ..tensor import Tensor

OPSETS = range(13, 22)  # 13: axes and pads as inputs everywhere used here; 21: what onnxruntime runs


def export(model, example_input, path, opset_version=17, input_names=None, output_names=None,
           dynamic_axes=None, *, export_params=True, verbose=False):
    """Write ``model`` as ONNX to ``path`` (a path or a binary file), as ``torch.onnx.export``.

    example_input: a Tensor, or a tuple of them, that one traced forward pass runs on, in eval
    mode. input_names / output_names: the graph's value names (default ``input``, ``output``,
    numbered when there are several). dynamic_axes: {name: {axis: label} or [axis]} for axes
    that may change size (the batch). export_params=False leaves the parameters out and makes
    them graph inputs. Returns the ``onnx.ModelProto``, checked by ``onnx.checker.check_model``
    (with shape inference)."""
    import onnx

    if opset_version not in OPSETS:
        raise ValueError(f"onnx.export: opset_version {opset_version} is not supported; use one of "
                         f"{OPSETS.start}..{OPSETS.stop - 1}")
    args = (example_input,) if isinstance(example_input, Tensor) else tuple(example_input)
    if not args or not all(isinstance(a, Tensor) for a in args):
        raise TypeError(f"onnx.export: example_input must be a Tensor or a tuple of Tensors, got "
                        f"{[type(a).__name__ for a in args]}")
    g = _Graph(opset_version)
    input_names = _names(input_names, "input", len(args), "input_names")
    for name, a in zip(input_names, args):
        g.graph_input(a, name)
    params = dict(model.named_parameters())
    params.update(model.named_buffers())
    for key, p in params.items():
        if isinstance(p, Tensor):
            g.parameter(p, key, export_params)

    was_training = model.training
    model.eval()
    try:
        with autograd.no_grad(), autograd.trace(g.record):
            out = model(*args)
    finally:
        model.train(was_training)
    outs = (out,) if isinstance(out, Tensor) else tuple(out)
    if not all(isinstance(o, Tensor) for o in outs):
        raise TypeError(f"onnx.export: the model must return a Tensor or a tuple of Tensors, got {type(out).__name__}")
    output_names = _names(output_names, "output", len(outs), "output_names")
    g.convert(outs)
    for name, o in zip(output_names, outs):
        g.graph_output(o, name)
    if verbose:
        print(f"onnx.export: {len(g.nodes)} nodes, {len(g.initializers)} initializers")
    proto = g.model(dynamic_axes or {})
    onnx.checker.check_model(proto, full_check=True)
    _write(proto, path)
    return proto


def _names(names, stem, count, what):
    if names is None:
        return [stem] if count == 1 else [f"{stem}_{i}" for i in range(count)]
    names = list(names)
    if len(names) != count or len(set(names)) != count:
        raise ValueError(f"onnx.export: {what} {names} must name each of the {count} values once")
    return names


def _write(proto, f):
    data = proto.SerializeToString()
    if hasattr(f, "write"):
        f.write(data)
        return
    folder = os.path.dirname(os.path.abspath(f))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".minicnn-", suffix=".onnx.tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, f)  # a reader never sees half a file
    except BaseException:
        os.unlink(tmp)
        raise


def _contiguous(a):
    """``a`` in C order; a 0-d array stays 0-d (``np.ascontiguousarray`` would make it (1,))."""
    a = np.asarray(a)
    return np.ascontiguousarray(a) if a.ndim else a


class _Graph:
    """The ONNX graph being written: nodes, initializers, and a name for every traced tensor."""

    def __init__(self, opset):
        import onnx

        self.onnx, self.opset = onnx, opset
        self.nodes, self.initializers, self.inputs, self.outputs, self.param_inputs = [], [], [], [], []
        self.records = []  # (fn, input tensors, output tensors) in the order they ran
        self.names = {}  # id(tensor) -> value name
        self.keep = []  # every named tensor stays alive, so that no id is reused
        self.producer = {}  # value name -> the Function that made it
        self.used = set()  # ids of tensors that some op reads
        self.taken, self.counts = set(), {}  # value names in use; the next number to try per stem

    # -- names ------------------------------------------------------------------
    def fresh(self, stem):
        """A value name not used yet: ``stem``, then ``stem_1``, ``stem_2``, ..."""
        k = self.counts.get(stem, 0)
        name = stem if k == 0 else f"{stem}_{k}"
        while name in self.taken:
            k += 1
            name = f"{stem}_{k}"
        self.counts[stem] = k + 1
        self.taken.add(name)
        return name

    def bind(self, t, name):
        self.names[id(t)] = name
        self.keep.append(t)

    def name(self, t):
        """The value name of tensor ``t``; a tensor nothing made or named is a constant."""
        if id(t) not in self.names:
            self.bind(t, self.const(backend.to_numpy(t.array), "const"))
        return self.names[id(t)]

    def const(self, array, stem="const"):
        """A new constant holding ``array``; returns its name. Initializers are the model's
        parameters and buffers only: a floating-point constant is a Constant node, so that a
        loader does not take it for a weight to train."""
        name = self.fresh(stem)
        tensor = self.onnx.numpy_helper.from_array(_contiguous(array), name)
        if tensor.data_type in (self.onnx.TensorProto.FLOAT, self.onnx.TensorProto.DOUBLE,
                                self.onnx.TensorProto.FLOAT16) and np.ndim(array) > 0:
            self.emit("Constant", [], name, value=tensor)
        else:
            self.initializers.append(tensor)
        return name

    def ints(self, values):
        return self.const(np.asarray(values, np.int64), "ints")

    def scalar_like(self, value, t):
        return self.const(np.asarray(value, t.dtype), "scalar")

    def graph_input(self, t, name):
        self.taken.add(name)
        self.bind(t, name)
        self.inputs.append((name, t))

    def graph_output(self, t, name):
        src = self.name(t)
        if src != name:
            self.taken.add(name)
            self.emit("Identity", [src], name)
        self.outputs.append((name, t))

    def parameter(self, t, key, export_params):
        self.taken.add(key)
        self.bind(t, key)
        if export_params:
            self.initializers.append(self.onnx.numpy_helper.from_array(_contiguous(backend.to_numpy(t.array)), key))
        else:
            self.param_inputs.append((key, t))

    # -- nodes ------------------------------------------------------------------
    def emit(self, op_type, inputs, output=None, n_out=1, **attrs):
        """Add one node; returns its output name (or the list of them when n_out > 1)."""
        outs = [output] if output is not None else [self.fresh(op_type.lower()) for _ in range(n_out)]
        self.nodes.append(self.onnx.helper.make_node(op_type, list(inputs), outs, name=self.fresh(op_type),
                                                     **attrs))
        return outs if n_out > 1 else outs[0]

    def record(self, fn, inputs, outputs):
        self.records.append((fn, list(inputs), list(outputs)))
        self.keep.extend(inputs)
        self.keep.extend(outputs)
        self.used.update(id(t) for t in inputs)

    def convert(self, graph_outputs):
        self.used.update(id(t) for t in graph_outputs)
        for fn, inputs, outputs in self.records:
            convert = _CONVERTERS.get(type(fn))
            if convert is None:
                raise NotImplementedError(f"onnx.export: the op {fn.name} has no ONNX form in minicnn "
                                          f"(ops that export: {', '.join(sorted(c.__name__ for c in _CONVERTERS))})")
            names = convert(self, fn, inputs, outputs)
            names = names if isinstance(names, list) else [names]
            for t, name in zip(outputs, names):
                if name is not None:
                    self.bind(t, name)
                    self.producer[name] = fn

    def reduce(self, op_type, x, axes, keepdims):
        """ReduceSum/Mean/Max/Min over ``axes``: an input from opset 13 (Sum) or 18 (the others)."""
        if op_type == "ReduceSum" or self.opset >= 18:
            return self.emit(op_type, [x, self.ints(axes)], keepdims=int(keepdims))
        return self.emit(op_type, [x], axes=list(axes), keepdims=int(keepdims))

    def batch_shape(self, x, hw):
        """The shape (N, C, *hw) with N and C read from ``x`` when the graph runs (any batch size)."""
        lead = self.emit("Slice", [self.emit("Shape", [self.name(x)]), self.ints([0]), self.ints([2])])
        return self.emit("Concat", [lead, self.ints(hw)], axis=0)

    def model(self, dynamic_axes):
        helper, onnx = self.onnx.helper, self.onnx
        unknown = set(dynamic_axes) - {n for n, _ in self.inputs + self.outputs + self.param_inputs}
        if unknown:
            raise ValueError(f"onnx.export: dynamic_axes names {sorted(unknown)}, which are neither inputs nor outputs")

        def info(name, t):
            dims = list(t.shape)
            axes = dynamic_axes.get(name, {})
            axes = axes if isinstance(axes, dict) else {a: f"{name}_dim{a}" for a in axes}
            for a, label in axes.items():
                dims[a] = label
            return helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(t.dtype), dims)

        read = {name for node in self.nodes for name in node.input}  # num_batches_tracked: no node reads it
        inputs = self.inputs + [(n, t) for n, t in self.param_inputs if n in read]
        initializers = [i for i in self.initializers if i.name in read]
        graph = helper.make_graph(self.nodes, "minicnn", [info(n, t) for n, t in inputs],
                                  [info(n, t) for n, t in self.outputs], initializers)
        ir = next(v[1] for v in helper.VERSION_TABLE if v[2] >= self.opset)  # the IR version of that opset
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", self.opset)], ir_version=ir,
                                 producer_name="minicnn")


# -- converters: (graph, fn, input tensors, output tensors) -> output name(s) -----------------
def _end_pad(n, k, s, p, d, out):
    """The padding after the end of an axis that gives ``out`` outputs: ``p`` unless that is too
    little (padding='same' with an even kernel pads one more row at the bottom, as PyTorch)."""
    return p if (n + 2 * p - d * (k - 1) - 1) // s + 1 == out else (out - 1) * s + d * (k - 1) + 1 - n - p


def _conv2d(g, fn, ins, outs):
    w, (h, wd) = fn.win, ins[0].shape[2:]
    pads = [w.ph, w.pw, _end_pad(h, w.kh, w.sh, w.ph, w.dh, fn.oh), _end_pad(wd, w.kw, w.sw, w.pw, w.dw, fn.ow)]
    return g.emit("Conv", [g.name(t) for t in ins], kernel_shape=[w.kh, w.kw], strides=[w.sh, w.sw],
                  pads=pads, dilations=[w.dh, w.dw], group=fn.groups)


def _conv_transpose2d(g, fn, ins, outs):
    w, (h, wd) = fn.win, ins[0].shape[2:]
    natural = ((h - 1) * w.sh - 2 * w.ph + w.dh * (w.kh - 1) + 1, (wd - 1) * w.sw - 2 * w.pw + w.dw * (w.kw - 1) + 1)
    return g.emit("ConvTranspose", [g.name(t) for t in ins], kernel_shape=[w.kh, w.kw], strides=[w.sh, w.sw],
                  pads=[w.ph, w.pw, w.ph, w.pw], dilations=[w.dh, w.dw], group=fn.groups,
                  output_padding=[o - n for o, n in zip(fn.out_hw, natural)])


def _batched_only(fn, x):
    if x.ndim != 4:
        raise NotImplementedError(f"onnx.export: {fn.name} of a {x.ndim}-D input; ONNX pooling needs (N, C, H, W)")


def _max_pool2d(g, fn, ins, outs):
    _batched_only(fn, ins[0])
    attrs = dict(kernel_shape=list(fn.k), strides=list(fn.s), pads=[*fn.p, *fn.p], dilations=list(fn.d),
                 ceil_mode=int(fn.ceil_mode))
    if id(outs[1]) in g.used:  # the indices feed a MaxUnpool: ONNX's own (flat over N, C, H, W) do
        return g.emit("MaxPool", [g.name(ins[0])], n_out=2, **attrs)
    return [g.emit("MaxPool", [g.name(ins[0])], **attrs), None]


def _avg_pool2d(g, fn, ins, outs):
    _batched_only(fn, ins[0])
    if fn.divisor is not None:
        raise NotImplementedError("onnx.export: avg_pool2d(divisor_override=...) has no ONNX form")
    return g.emit("AveragePool", [g.name(ins[0])], kernel_shape=list(fn.k), strides=list(fn.s), pads=[*fn.p, *fn.p],
                  ceil_mode=int(fn.ceil_mode), count_include_pad=int(fn.count_include_pad))


def _adaptive(global_op, window_op):
    def convert(g, fn, ins, outs):
        _batched_only(fn, ins[0])
        (h, w), (oh, ow) = ins[0].shape[2:], outs[0].shape[2:]
        rest = [None] * (len(outs) - 1)  # adaptive max pooling's indices
        if (oh, ow) == (1, 1):
            return [g.emit(global_op, [g.name(ins[0])])] + rest
        if h % oh == 0 and w % ow == 0:
            k = [h // oh, w // ow]
            return [g.emit(window_op, [g.name(ins[0])], kernel_shape=k, strides=k)] + rest
        if window_op == "AveragePool":  # uneven bins: minicnn's own y = A_h x A_w^T, two MatMuls
            a_h, a_w = (g.const(backend.to_numpy(a), "bins") for a in (fn.a_h, fn.a_w.T))
            return g.emit("MatMul", [g.emit("MatMul", [a_h, g.name(ins[0])]), a_w])
        raise NotImplementedError(f"onnx.export: {fn.name} from {h}x{w} to {oh}x{ow}: ONNX has it only "
                                  "when the output divides the input")
    return convert


def _batch_norm(g, fn, ins, outs):
    if fn.training or not hasattr(fn, "running"):
        raise NotImplementedError("onnx.export: batch norm with batch statistics (training mode); "
                                  "export runs the model in eval mode, so a module forced training can't export")
    x, c = ins[0], ins[0].shape[1]
    affine = iter(ins[1:])
    scale = g.name(next(affine)) if fn.has_weight else g.const(np.ones(c, x.dtype), "ones")
    bias = g.name(next(affine)) if fn.has_bias else g.const(np.zeros(c, x.dtype), "zeros")
    mean, var = (g.name(t) for t in fn.running)
    return g.emit("BatchNormalization", [g.name(x), scale, bias, mean, var], epsilon=float(fn.eps))


def _lrn(g, fn, ins, outs):
    return g.emit("LRN", [g.name(ins[0])], size=fn.size, alpha=float(fn.alpha), beta=float(fn.beta), bias=float(fn.k))


def _unary(op_type):
    return lambda g, fn, ins, outs: g.emit(op_type, [g.name(ins[0])])


def _leaky_relu(g, fn, ins, outs):
    return g.emit("LeakyRelu", [g.name(ins[0])], alpha=float(fn.slope))


def _prelu(g, fn, ins, outs):
    x, w = ins
    slope = g.name(w)
    if w.numel() > 1 and x.ndim > 2:  # (C,) -> (C, 1, 1): ONNX broadcasts from the right
        slope = g.emit("Reshape", [slope, g.ints([w.numel()] + [1] * (x.ndim - 2))])
    return g.emit("PRelu", [g.name(x), slope])


def _softmax(op_type):
    return lambda g, fn, ins, outs: g.emit(op_type, [g.name(ins[0])], axis=int(fn.axis))


def _same_dtype(g, ins, dtype):
    """The inputs' names, each cast to ``dtype`` where it differs (minicnn promotes; ONNX doesn't)."""
    onnx_type = g.onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    return [g.name(t) if t.dtype == dtype else g.emit("Cast", [g.name(t)], to=onnx_type) for t in ins]


def _binary(op_type):
    return lambda g, fn, ins, outs: g.emit(op_type, _same_dtype(g, ins, outs[0].dtype))


def _pow_scalar(g, fn, ins, outs):
    return g.emit("Pow", [g.name(ins[0]), g.scalar_like(fn.c, ins[0])])


def _linear(g, fn, ins, outs):
    x, w = ins[0], ins[1]
    if x.ndim == 2:
        return g.emit("Gemm", [g.name(t) for t in ins], transB=1)
    y = g.emit("MatMul", [g.name(x), g.emit("Transpose", [g.name(w)], perm=[1, 0])])
    return g.emit("Add", [y, g.name(ins[2])]) if len(ins) == 3 else y


def _clamp(g, fn, ins, outs):
    bound = (lambda v: "" if v is None else g.scalar_like(v, ins[0]))
    return g.emit("Clip", [g.name(ins[0]), bound(fn.lo), bound(fn.hi)])


def _where(g, fn, ins, outs):
    return g.emit("Where", [g.const(backend.to_numpy(fn.cond), "condition"), *_same_dtype(g, ins, outs[0].dtype)])


def _sum(op_type):
    def convert(g, fn, ins, outs):
        return g.reduce(op_type, g.name(ins[0]), fn.axes, fn.keepdims)
    return convert


def _max_min(g, fn, ins, outs):
    return g.reduce("ReduceMax" if fn.use_max else "ReduceMin", g.name(ins[0]), fn.axes, fn.keepdims)


def _max_along(g, fn, ins, outs):
    x = g.name(ins[0])
    values = g.reduce("ReduceMax" if fn.use_max else "ReduceMin", x, (fn.axis,), fn.keepdims)
    index = g.emit("ArgMax" if fn.use_max else "ArgMin", [x], axis=fn.axis, keepdims=int(fn.keepdims))
    return [values, index]


def _reshape(g, fn, ins, outs):
    x, y = ins[0].shape, outs[0].shape
    # 0 copies the input's dim: a flattened batch keeps whatever batch size the graph gets
    target = [0, *y[1:]] if x and y and x[0] == y[0] != 0 else list(y)
    return g.emit("Reshape", [g.name(ins[0]), g.ints(target)])


def _permute(g, fn, ins, outs):
    return g.emit("Transpose", [g.name(ins[0])], perm=[int(a) for a in fn.axes])


def _expand(g, fn, ins, outs):
    return g.emit("Expand", [g.name(ins[0]), g.ints(outs[0].shape)])


def _getitem(g, fn, ins, outs):
    """Basic indexing (slices, integers, ...) as one Slice, then a Squeeze of the integer axes;
    an integer array along one axis as a Gather."""
    x = ins[0]
    index = fn.index if isinstance(fn.index, tuple) else (fn.index,)
    arrays = [k for k, i in enumerate(index) if getattr(i, "ndim", 0) > 0]
    if len(arrays) == 1 and all(i == slice(None) for k, i in enumerate(index) if k != arrays[0]):
        # x[:, ..., idx] with one integer array: a Gather along that axis
        idx = backend.to_numpy(index[arrays[0]])
        if idx.dtype.kind in "iu":
            return g.emit("Gather", [g.name(x), g.ints(idx)], axis=arrays[0])
    if any(i is None or hasattr(i, "dtype") and getattr(i, "ndim", 0) > 0 or isinstance(i, (list, Tensor))
           for i in index):
        raise NotImplementedError(f"onnx.export: indexing with {fn.index!r}: only slices and integers export")
    if Ellipsis in index:
        k = index.index(Ellipsis)
        index = index[:k] + (slice(None),) * (x.ndim - len(index) + 1) + index[k + 1:]
    starts, ends, axes, steps, squeeze = [], [], [], [], []
    for axis, (i, n) in enumerate(zip(index, x.shape)):
        if isinstance(i, slice):
            if i == slice(None):
                continue
            start, stop, step = i.indices(n)
            if step < 0 and stop < 0:
                stop = -n - 1  # through the first element: ONNX reads a negative end from the back
        else:
            start, stop, step = int(i) % n, int(i) % n + 1, 1
            squeeze.append(axis)
        starts.append(start), ends.append(stop), axes.append(axis), steps.append(step)
    y = g.name(x)
    if axes:
        y = g.emit("Slice", [y, g.ints(starts), g.ints(ends), g.ints(axes), g.ints(steps)])
    if squeeze:
        y = g.emit("Squeeze", [y, g.ints(squeeze)])
    return y if axes or squeeze else g.emit("Identity", [y])


def _cat(g, fn, ins, outs):
    return g.emit("Concat", _same_dtype(g, ins, outs[0].dtype), axis=int(fn.axis))


def _stack(g, fn, ins, outs):
    return g.emit("Concat", [g.emit("Unsqueeze", [g.name(t), g.ints([fn.axis])]) for t in ins], axis=int(fn.axis))


def _split(g, fn, ins, outs):
    return g.emit("Split", [g.name(ins[0]), g.ints(fn.sections)], n_out=len(outs), axis=int(fn.axis))


def _pad_constant(g, fn, ins, outs):
    pads = [b for b, _ in fn.widths] + [a for _, a in fn.widths]
    return g.emit("Pad", [g.name(ins[0]), g.ints(pads), g.scalar_like(fn.value, ins[0])], mode="constant")


def _pad_indexed(g, fn, ins, outs):
    """Reflect/replicate/circular padding as minicnn computes it: a gather per axis by its index map."""
    y = g.name(ins[0])
    for axis, idx in fn.index_maps.items():
        y = g.emit("Gather", [y, g.ints(backend.to_numpy(idx))], axis=int(axis))
    return y


def _identity(g, fn, ins, outs):
    return [g.name(t) for t in ins]


def _cast(g, fn, ins, outs):
    return g.emit("Cast", [g.name(ins[0])], to=g.onnx.helper.np_dtype_to_tensor_dtype(fn.dtype))


def _resize(g, x, out_hw, scales, **attrs):
    """Resize of the last axes of x to ``out_hw``: by ``scales`` where minicnn used them (then
    ONNX's coordinates are minicnn's), else by sizes built from x's own N and C."""
    if scales is not None:
        return g.emit("Resize", [g.name(x), "", g.const(np.asarray([1, 1, *scales], np.float32), "scales")], **attrs)
    return g.emit("Resize", [g.name(x), "", "", g.batch_shape(x, out_hw)], **attrs)


def _interpolate(g, fn, ins, outs):
    if hasattr(fn, "onnx_resize"):  # a Resize that minicnn.onnx.load read: written back as it was
        attrs, scales = fn.onnx_resize
        # written with the output's own sizes, so these need not (and, before opset 18, cannot) be said
        attrs = {k: v for k, v in attrs.items() if k not in ("axes", "antialias", "keep_aspect_ratio_policy")}
        return _resize(g, ins[0], outs[0].shape[2:], scales and scales[2:], **attrs)
    coords = "align_corners" if fn.align_corners else "half_pixel"
    attrs = {"nearest": dict(mode="nearest", coordinate_transformation_mode="asymmetric", nearest_mode="floor"),
             "nearest-exact": dict(mode="nearest", coordinate_transformation_mode="half_pixel",
                                   nearest_mode="round_prefer_ceil"),
             "linear": dict(mode="linear", coordinate_transformation_mode=coords),
             "bilinear": dict(mode="linear", coordinate_transformation_mode=coords),
             "bicubic": dict(mode="cubic", coordinate_transformation_mode=coords, cubic_coeff_a=resize.CUBIC_A,
                             exclude_outside=0)}.get(fn.mode)
    if attrs is None:
        raise NotImplementedError(f"onnx.export: interpolation mode {fn.mode!r}")
    # align_corners by scales: ONNX's reference reads the unrounded size in*scale, onnxruntime and
    # minicnn the rounded one; by sizes the two agree
    scales = None if fn.align_corners else fn.scales
    return _resize(g, ins[0], outs[0].shape[2:], scales, **attrs)


def _nearest_repeat(g, fn, ins, outs):
    return _resize(g, ins[0], outs[0].shape[2:], (fn.fh, fn.fw), mode="nearest",
                   coordinate_transformation_mode="asymmetric", nearest_mode="floor")


def _max_unpool2d(g, fn, ins, outs):
    x, idx = ins
    if not isinstance(g.producer.get(g.name(idx)), pooling.MaxPool2d):
        raise NotImplementedError("onnx.export: max_unpool2d with indices that no max_pool2d of the graph made")
    return g.emit("MaxUnpool", [g.name(x), g.name(idx), g.batch_shape(x, outs[0].shape[2:])], kernel_shape=list(fn.k),
                  strides=list(fn.s), pads=[*fn.p, *fn.p])


def _refuse(why):
    def convert(g, fn, ins, outs):
        raise NotImplementedError(f"onnx.export: {fn.name}: {why}")
    return convert


def _converters():
    from ..nn.module import _BackwardHookPoint

    a, e, s = arithmetic, elementwise, shape
    table = {
        conv.Conv2d: _conv2d, conv.ConvTranspose2d: _conv_transpose2d,
        pooling.MaxPool2d: _max_pool2d, pooling.AvgPool2d: _avg_pool2d, pooling.MaxUnpool2d: _max_unpool2d,
        pooling.AdaptiveAvgPool2d: _adaptive("GlobalAveragePool", "AveragePool"),
        pooling.AdaptiveMaxPool2d: _adaptive("GlobalMaxPool", "MaxPool"),
        normalization.BatchNorm: _batch_norm, normalization.LocalResponseNorm: _lrn,
        normalization.SyncBatchNorm: _refuse("synchronised batch norm only trains; convert it to BatchNorm2d"),
        activation.ReLU: _unary("Relu"), activation.Sigmoid: _unary("Sigmoid"), activation.Tanh: _unary("Tanh"),
        activation.LeakyReLU: _leaky_relu, activation.PReLU: _prelu,
        activation.Softmax: _softmax("Softmax"), activation.LogSoftmax: _softmax("LogSoftmax"),
        a.Add: _binary("Add"), a.Sub: _binary("Sub"), a.Mul: _binary("Mul"), a.Div: _binary("Div"),
        a.Pow: _binary("Pow"), a.Maximum: _binary("Max"), a.Minimum: _binary("Min"), a.Neg: _unary("Neg"),
        a.PowScalar: _pow_scalar, a.MatMul: _binary("MatMul"), linear.Linear: _linear,
        e.Exp: _unary("Exp"), e.Log: _unary("Log"), e.Sqrt: _unary("Sqrt"), e.Abs: _unary("Abs"),
        e.Clamp: _clamp, e.Where: _where,
        reduction.Sum: _sum("ReduceSum"), reduction.Mean: _sum("ReduceMean"), reduction.MaxMin: _max_min,
        reduction.MaxAlong: _max_along,
        s.Reshape: _reshape, s.Permute: _permute, s.Expand: _expand, s.GetItem: _getitem, s.Cat: _cat,
        s.Stack: _stack, s.Split: _split, s.PadConstant: _pad_constant, s.PadIndexed: _pad_indexed,
        s.Clone: _identity, s.ToDevice: _identity, s.Cast: _cast, _BackwardHookPoint: _identity,
        resize.Interpolate: _interpolate, resize.NearestRepeat: _nearest_repeat,
        dropout.Dropout: _refuse("dropout runs only in training mode; export runs the model in eval mode"),
    }
    for cls in (loss._ClassLoss, loss._Pointwise):
        for sub in cls.__subclasses__():
            table[sub] = _refuse("a loss is not part of the model; export the model alone")
    return table


_CONVERTERS = _converters()
