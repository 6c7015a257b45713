"""Ops that move values around without arithmetic: reshape, permute, index,
concatenate, split, pad, and the dtype/device casts."""
from collections import namedtuple

import numpy as np

from .. import backend
from ..autograd import Function
from .arithmetic import unbroadcast


def _shape_arg(shape):
    return tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else tuple(shape)


def _axis(dim, ndim, op):
    """``dim`` as an index in [0, ndim); a 0-d tensor takes dim 0 or -1, as in PyTorch."""
    n = max(ndim, 1)
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or not -n <= dim < n:
        raise IndexError(f"{op}: dim {dim!r} is out of range for a tensor with {ndim} dimensions")
    return int(dim) % n


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


def _along(index, axis, xp):
    """The full index tuple that picks ``index`` (an int array) along ``axis``, every other axis in order."""
    grids = list(xp.meshgrid(*[xp.arange(n) for n in index.shape], indexing="ij", sparse=True))
    grids[axis] = index
    return tuple(grids)


class Gather(Function):
    """y[i][j][k] = x[i][index[i][j][k]][k] (for axis 1): values picked along one axis.
    Backward adds each gy back onto the element it was picked from."""

    def __init__(self, axis, index):
        self.axis, self.index = axis, index

    def forward(self, x):
        self.x_meta = (x.shape, x.dtype)
        return x[_along(self.index, self.axis, self.xp)]

    def backward(self, gy):
        gx = self.xp.zeros(*self.x_meta)
        scatter_add(gx, _along(self.index, self.axis, self.xp), gy)
        return gx


class Scatter(Function):
    """y = x with y[i][index[i][j][k]][k] = src[i][j][k] (for axis 1), out of place. Backward:
    x's gradient is gy where nothing was written, src's is gy read back at the written places."""

    def __init__(self, axis, index):
        self.axis, self.index = axis, index

    def forward(self, x, src):
        where = _along(self.index, self.axis, self.xp)
        self.src_meta = (src.shape, src.dtype)
        y = x.copy()
        y[where] = src[tuple(slice(0, n) for n in self.index.shape)]
        return y

    def backward(self, gy):
        where = _along(self.index, self.axis, self.xp)
        gx = gy.copy()
        gx[where] = 0
        gsrc = self.xp.zeros(*self.src_meta)
        gsrc[tuple(slice(0, n) for n in self.index.shape)] = gy[where]
        return gx, gsrc


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
    if x.ndim == 0:
        return reshape(x, ())
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
    if any(b < 0 or a < 0 for b, a in widths):  # negative widths crop first, as PyTorch's
        x = getitem(x, tuple(slice(-min(b, 0), n + min(a, 0)) for n, (b, a) in zip(x.shape, widths)))
        widths = [(max(b, 0), max(a, 0)) for b, a in widths]
    maps = {ax: _pad_index(x.shape[ax], b, a, mode) for ax, (b, a) in enumerate(widths) if b or a}
    if not maps:
        return x
    return PadIndexed(maps).apply(x)


def _index_arg(x, dim, index, op):
    from ..tensor import Tensor

    axis = _axis(dim, x.ndim, op)
    idx = index.array if isinstance(index, Tensor) else index
    if getattr(idx, "dtype", None) is None or idx.dtype.kind not in "iu":
        raise TypeError(f"{op}: index must be an integer tensor, got {getattr(idx, 'dtype', type(index).__name__)}")
    if idx.ndim != x.ndim or any(i > n for d, (i, n) in enumerate(zip(idx.shape, x.shape)) if d != axis):
        raise ValueError(f"{op}: index of shape {tuple(idx.shape)} does not fit input of shape {tuple(x.shape)} "
                         f"(same number of dims, no larger outside dim {axis})")
    if idx.size and (int(idx.min()) < -x.shape[axis] or int(idx.max()) >= x.shape[axis]):
        raise IndexError(f"{op}: index values must lie in [0, {x.shape[axis]}) along dim {axis}, got "
                         f"[{int(idx.min())}, {int(idx.max())}]")
    return axis, backend.array_module(x.array).asarray(idx % x.shape[axis] if x.shape[axis] else idx)


def gather(x, dim, index):
    """out[i][j][k] = x[i][index[i][j][k]][k] for dim=1 (as torch.gather); out has index's shape."""
    axis, idx = _index_arg(x, dim, index, "gather")
    return Gather(axis, idx).apply(x)


def scatter(x, dim, index, src=None, value=None):
    """x with out[i][index[i][j][k]][k] = src[i][j][k] for dim=1 (as torch.scatter, out of place);
    ``value``: one number written instead of ``src``."""
    from ..tensor import as_tensor

    axis, idx = _index_arg(x, dim, index, "scatter")
    if (src is None) == (value is None):
        raise TypeError("scatter: give exactly one of src and value")
    if src is None or not hasattr(src, "shape"):
        src = as_tensor(value if src is None else src, like=x, op="scatter").expand(*idx.shape)
    return Scatter(axis, idx).apply(x, src)


SortResult = namedtuple("SortResult", "values indices")


def sort(x, dim=-1, descending=False, stable=False):
    """(values, indices) of x sorted along dim (ties in their original order)."""
    axis = _axis(dim, x.ndim, "sort")
    xp = backend.array_module(x.array)
    a = x.array if x.ndim else x.array.reshape(1)
    idx = xp.argsort(-a if descending else a, axis=axis, kind="stable")
    if x.ndim == 0:
        return SortResult(x, x.__class__._make(xp.zeros((), xp.int64)))
    return SortResult(gather(x, axis, idx), x.__class__._make(idx.astype(xp.int64)))


def topk(x, k, dim=-1, largest=True, sorted=True):
    """(values, indices) of the k largest (or smallest) elements along dim, largest first."""
    axis = _axis(dim, x.ndim, "topk")
    n = x.shape[axis] if x.ndim else 1
    if not 0 <= k <= n:
        raise ValueError(f"topk: k={k} is out of range for dim {axis} of size {n}")
    _, idx = sort(x, axis, descending=largest)
    idx = idx.array[(slice(None),) * axis + (slice(0, k),)] if x.ndim else idx.array
    return SortResult(gather(x, axis, idx) if x.ndim else x, x.__class__._make(idx))


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
