"""Ops that move values around without arithmetic: reshape, permute, index,
concatenate, split, pad, and the dtype/device casts."""
import numpy as np

from .. import backend
from ..autograd import Function
from .arithmetic import unbroadcast


def _shape_arg(shape):
    return tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else tuple(shape)


def _axis(dim, ndim, op):
    if not -ndim <= dim < ndim:
        raise IndexError(f"{op}: dim {dim} is out of range for a tensor with {ndim} dimensions")
    return dim % ndim


class Reshape(Function):
    """Same values, new shape (a view when possible); the gradient is reshaped back."""

    def __init__(self, shape):
        self.shape = shape

    def forward(self, x):
        self.x_shape = x.shape
        try:
            return x.reshape(self.shape)
        except ValueError:
            raise ValueError(f"reshape: cannot view a tensor of shape {x.shape} ({x.size} elements) as {self.shape}") from None

    def backward(self, gy):
        return gy.reshape(self.x_shape)


class Permute(Function):
    """Reorder the axes; the gradient is permuted back with the inverse permutation."""

    def __init__(self, axes):
        self.axes = axes

    def forward(self, x):
        return x.transpose(self.axes)

    def backward(self, gy):
        return gy.transpose(np.argsort(self.axes))


class Expand(Function):
    """Broadcast x to a larger shape (a read-only view); the gradient is summed back."""

    def __init__(self, shape):
        self.shape = shape

    def forward(self, x):
        self.x_meta = (x.shape, x.dtype)
        return self.xp.broadcast_to(x, self.shape)

    def backward(self, gy):
        return unbroadcast(gy, *self.x_meta)


class GetItem(Function):
    """y = x[index], NumPy semantics. Backward writes gy into zeros shaped like x; an integer
    array index may pick an element several times, and then the gradients add up."""

    def __init__(self, index):
        self.index = index

    def forward(self, x):
        self.x_meta = (x.shape, x.dtype)
        try:
            return x[self.index]
        except (IndexError, TypeError, ValueError) as e:
            raise IndexError(f"getitem: cannot index a tensor of shape {x.shape} with {_describe(self.index)}: {e}") from None

    def backward(self, gy):
        gx = self.xp.zeros(*self.x_meta)
        if _may_repeat(self.index):
            scatter_add(gx, self.index, gy)
        else:
            gx[self.index] = gy  # every element of x is picked at most once
        return gx


def _may_repeat(index):
    """True when ``index`` holds an integer array (which can name an element twice)."""
    items = index if isinstance(index, tuple) else (index,)
    return any(hasattr(i, "dtype") and i.dtype.kind in "iu" and i.ndim > 0 for i in items)


def _describe(index):
    items = index if isinstance(index, tuple) else (index,)
    return "(" + ", ".join(f"array{tuple(i.shape)} of {i.dtype}" if hasattr(i, "dtype") else repr(i)
                           for i in items) + ")"


def scatter_add(a, index, values):
    """a[index] += values, with repeated indices adding up (``ufunc.at``)."""
    if backend.is_cupy_array(a):
        import cupyx

        cupyx.scatter_add(a, index, values)
    else:
        np.add.at(a, index, values)


class Cat(Function):
    """Concatenate along ``axis``; each input's gradient is its slice of gy."""

    def __init__(self, axis):
        self.axis = axis

    def forward(self, *xs):
        ref = xs[0].shape
        for i, x in enumerate(xs):
            if x.ndim != len(ref) or any(a != b for d, (a, b) in enumerate(zip(x.shape, ref)) if d != self.axis):
                raise ValueError(
                    f"cat: tensor {i} has shape {x.shape}, which does not match tensor 0's {ref} "
                    f"outside dim {self.axis}"
                )
        self.sizes = [x.shape[self.axis] for x in xs]
        self.dtypes = [x.dtype for x in xs]
        return self.xp.concatenate(xs, axis=self.axis)

    def backward(self, gy):
        cuts = np.cumsum(self.sizes)[:-1].tolist()
        pieces = self.xp.split(gy, cuts, axis=self.axis)
        return tuple(g.astype(dt, copy=False) for g, dt in zip(pieces, self.dtypes))


class Stack(Function):
    """Stack equally shaped tensors along a new ``axis``; input k's gradient is gy[..., k, ...]."""

    def __init__(self, axis):
        self.axis = axis

    def forward(self, *xs):
        shapes = {x.shape for x in xs}
        if len(shapes) > 1:
            raise ValueError(f"stack: all tensors need the same shape, got {[x.shape for x in xs]}")
        self.dtypes = [x.dtype for x in xs]
        return self.xp.stack(xs, axis=self.axis)

    def backward(self, gy):
        pieces = self.xp.moveaxis(gy, self.axis, 0)
        return tuple(g.astype(dt, copy=False) for g, dt in zip(pieces, self.dtypes))


class Split(Function):
    """Cut x along ``axis`` into pieces of the given sizes (views); backward concatenates."""

    def __init__(self, sections, axis):
        self.sections, self.axis = sections, axis

    def forward(self, x):
        cuts = np.cumsum(self.sections)[:-1].tolist()
        return tuple(self.xp.split(x, cuts, axis=self.axis))

    def backward(self, *gys):
        return self.xp.concatenate(gys, axis=self.axis)


class PadConstant(Function):
    """Pad with a constant; negative widths crop (as ``torch.nn.functional.pad``)."""

    def __init__(self, widths, value):
        self.widths, self.value = widths, value  # ((before, after), ...) per axis

    def forward(self, x):
        xp = self.xp
        self.x_shape = x.shape
        out_shape = tuple(s + b + a for s, (b, a) in zip(x.shape, self.widths))
        if any(s < 0 for s in out_shape):
            raise ValueError(f"pad: padding {self.widths} makes a negative size from input shape {x.shape}")
        y = xp.full(out_shape, self.value, dtype=x.dtype)
        y[self._dst()] = x[self._src()]
        return y

    def _src(self):
        return tuple(slice(max(-b, 0), s - max(-a, 0)) for s, (b, a) in zip(self.x_shape, self.widths))

    def _dst(self):
        return tuple(slice(max(b, 0), max(b, 0) + (sl.stop - sl.start)) for (b, a), sl in zip(self.widths, self._src()))

    def backward(self, gy):
        gx = self.xp.zeros(self.x_shape, gy.dtype)
        gx[self._src()] = gy[self._dst()]
        return gx


class PadIndexed(Function):
    """Reflect, replicate or circular padding: each padded axis is a gather by an index map,
    so backward is the matching scatter-add."""

    def __init__(self, index_maps):
        self.index_maps = index_maps  # {axis: int array mapping output position -> input position}

    def forward(self, x):
        self.x_shape = x.shape
        for axis, idx in self.index_maps.items():
            x = self.xp.take(x, self.xp.asarray(idx), axis=axis)
        return x

    def backward(self, gy):
        xp = self.xp
        for axis, idx in reversed(list(self.index_maps.items())):
            shape = list(gy.shape)
            shape[axis] = self.x_shape[axis]
            g = xp.zeros(shape, gy.dtype)
            scatter_add(g, (slice(None),) * axis + (xp.asarray(idx),), gy)
            gy = g
        return gy


def _pad_index(n, before, after, mode):
    pos = np.arange(-before, n + after)
    if mode == "reflect":
        if before >= n or after >= n:
            raise ValueError(f"pad: reflect padding ({before}, {after}) must be smaller than the dimension size {n}")
        period = 2 * (n - 1)
        pos = np.abs(pos) % period if period else np.zeros_like(pos)
        return np.where(pos >= n, period - pos, pos)
    if mode == "replicate":
        return np.clip(pos, 0, n - 1)
    return pos % n  # circular


class Clone(Function):
    """A copy of x in new memory; the gradient passes through unchanged."""

    def forward(self, x):
        return x.copy()

    def backward(self, gy):
        return gy


class Cast(Function):
    """x as another dtype; the gradient is cast back to x's dtype."""

    def __init__(self, dtype):
        self.dtype = np.dtype(dtype)

    def forward(self, x):
        self.x_dtype = x.dtype
        return x.astype(self.dtype)

    def backward(self, gy):
        return gy.astype(self.x_dtype)


class ToDevice(Function):
    """x copied to another device; the gradient is copied back."""

    def __init__(self, device):
        self.device = device

    def forward(self, x):
        self.src = backend.device_of(x)
        return backend.to_device(x, self.device)

    def backward(self, gy):
        return backend.to_device(gy, self.src)


# -- functional forms -------------------------------------------------------
def reshape(x, *shape):
    return Reshape(_shape_arg(shape)).apply(x)


view = reshape


def flatten(x, start_dim=0, end_dim=-1):
    if x.ndim == 0:
        return reshape(x, 1)
    s, e = _axis(start_dim, x.ndim, "flatten"), _axis(end_dim, x.ndim, "flatten")
    return reshape(x, x.shape[:s] + (-1,) + x.shape[e + 1:]) if s <= e else x


def permute(x, *dims):
    dims = _shape_arg(dims)
    if sorted(d % max(x.ndim, 1) for d in dims) != list(range(x.ndim)):
        raise ValueError(f"permute: {dims} is not a permutation of the {x.ndim} dims of shape {x.shape}")
    return Permute(tuple(d % x.ndim for d in dims)).apply(x)


def transpose(x, dim0, dim1):
    axes = list(range(x.ndim))
    a, b = _axis(dim0, x.ndim, "transpose"), _axis(dim1, x.ndim, "transpose")
    axes[a], axes[b] = axes[b], axes[a]
    return Permute(tuple(axes)).apply(x)


def squeeze(x, dim=None):
    """Drop size-1 axes: all of them, or those among ``dim`` (an int or a tuple of ints)."""
    if dim is None:
        return reshape(x, tuple(s for s in x.shape if s != 1))
    dims = {_axis(d, x.ndim, "squeeze") for d in (dim if isinstance(dim, (tuple, list)) else (dim,))}
    return reshape(x, tuple(s for i, s in enumerate(x.shape) if not (i in dims and s == 1)))


def unsqueeze(x, dim):
    d = _axis(dim, x.ndim + 1, "unsqueeze")
    return reshape(x, x.shape[:d] + (1,) + x.shape[d:])


def expand(x, *shape):
    shape = _shape_arg(shape)
    lead = len(shape) - x.ndim
    if lead < 0 or any(s == -1 for s in shape[:lead]):
        raise ValueError(f"expand: cannot expand shape {x.shape} to {shape}")
    full = tuple(x.shape[i - lead] if s == -1 else s for i, s in enumerate(shape))
    try:
        fits = np.broadcast_shapes(x.shape, full) == full
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(f"expand: cannot expand shape {x.shape} to {shape}")
    return Expand(full).apply(x)


def clone(x):
    return Clone().apply(x)


def getitem(x, index):
    """x[index]; Tensors and lists inside the index become arrays."""
    from ..tensor import Tensor

    def raw(i):
        if isinstance(i, Tensor):
            return i.array
        return np.asarray(i) if isinstance(i, list) else i

    index = tuple(raw(i) for i in index) if isinstance(index, tuple) else raw(index)
    return GetItem(index).apply(x)


def cat(tensors, dim=0):
    tensors = list(tensors)
    if not tensors:
        raise ValueError("cat: expected a non-empty list of tensors")
    return Cat(_axis(dim, tensors[0].ndim, "cat")).apply(*tensors)


concatenate = cat


def stack(tensors, dim=0):
    tensors = list(tensors)
    if not tensors:
        raise ValueError("stack: expected a non-empty list of tensors")
    return Stack(_axis(dim, tensors[0].ndim + 1, "stack")).apply(*tensors)


def split(x, split_size_or_sections, dim=0):
    """Pieces of ``split_size`` along ``dim`` (the last may be smaller), or the given sizes."""
    axis = _axis(dim, x.ndim, "split")
    n = x.shape[axis]
    if isinstance(split_size_or_sections, int):
        k = split_size_or_sections
        if k <= 0:
            raise ValueError(f"split: split_size must be positive, got {k}")
        sections = [k] * (n // k) + ([n % k] if n % k else [])
    else:
        sections = list(split_size_or_sections)
        if sum(sections) != n:
            raise ValueError(f"split: sections {sections} do not add up to size {n} of dim {dim}")
    out = Split(sections, axis).apply(x)
    return out if isinstance(out, tuple) else (out,)


def chunk(x, chunks, dim=0):
    n = x.shape[_axis(dim, x.ndim, "chunk")]
    return split(x, -(-n // chunks), dim)


def pad(x, pad, mode="constant", value=0.0):
    """``pad`` lists (before, after) pairs starting from the last dim, as torch.nn.functional.pad."""
    if len(pad) % 2 or len(pad) // 2 > x.ndim:
        raise ValueError(f"pad: padding {tuple(pad)} must have an even length of at most 2*{x.ndim}")
    widths = [(0, 0)] * x.ndim
    for i in range(len(pad) // 2):
        widths[x.ndim - 1 - i] = (int(pad[2 * i]), int(pad[2 * i + 1]))
    if mode == "constant":
        return PadConstant(tuple(widths), value).apply(x)
    if mode not in ("reflect", "replicate", "circular"):
        raise ValueError(f"pad: unknown mode {mode!r} (constant, reflect, replicate, circular)")
    if any(b < 0 or a < 0 for b, a in widths):
        raise ValueError(f"pad: {mode} padding must be non-negative, got {tuple(pad)}")
    maps = {ax: _pad_index(x.shape[ax], b, a, mode) for ax, (b, a) in enumerate(widths) if b or a}
    return PadIndexed(maps).apply(x)


def one_hot(tensor, num_classes=-1):
    """(*) int64 class indices -> (*, num_classes) int64 with a 1 at each index, as PyTorch's;
    ``num_classes=-1``: the largest index + 1."""
    from ..tensor import Tensor  # ops are imported by tensor.py

    labels = tensor.array
    xp = backend.array_module(labels)
    if labels.dtype.kind not in "iu":
        raise TypeError(f"one_hot: expected an integer tensor of class indices, got {labels.dtype}")
    top = int(labels.max()) + 1 if labels.size else 0
    n = top if num_classes == -1 else int(num_classes)
    if labels.size and (int(labels.min()) < 0 or top > n):
        raise ValueError(f"one_hot: class indices must lie in [0, {n}), got values from {int(labels.min())} "
                         f"to {top - 1}")
    return Tensor._make((labels[..., None] == xp.arange(n)).astype(np.int64))
