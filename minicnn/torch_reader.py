"""Read ``torch.save`` files (state dicts and checkpoints) without PyTorch.

A ``torch.save`` file since PyTorch 1.6 is a zip archive::

    <name>/data.pkl       the pickled object; each tensor is a call
                          torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)
                          whose storage is a persistent id
                          ('storage', torch.FloatStorage, key, location, numel)
    <name>/data/<key>     the raw bytes of storage <key>
    <name>/byteorder      "little" or "big" (absent in old files: little)

The legacy format (before 1.6, or ``_use_new_zipfile_serialization=False``) is a
sequence of pickles: a magic number, a protocol version, system info, the object
(persistent ids ``('storage', type, key, location, numel, view)``), the list of
storage keys, then per key an int64 element count and the raw data.

Unpickling may call any function a file names, so ``_Unpickler.find_class``
accepts only the names listed in ``_ALLOWED``: tensor and parameter rebuilders,
storage types, dtypes, ``collections.OrderedDict`` and a few harmless builtins.
Our rebuilders build NumPy arrays; everything else is refused before it runs.
"""
import collections
import functools
import math
import os
import pickle
import struct
import types
import zipfile
import zlib

import numpy as np

from .serialization import CheckpointError, bf16_to_float32

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001

# torch dtype name -> NumPy dtype; None: NumPy has no such type (bfloat16 is widened to float32)
_DTYPES = {
    "float32": np.float32, "float64": np.float64, "float16": np.float16, "bfloat16": None,
    "int64": np.int64, "int32": np.int32, "int16": np.int16, "int8": np.int8, "uint8": np.uint8,
    "uint16": np.uint16, "uint32": np.uint32, "uint64": np.uint64, "bool": np.bool_,
    "complex64": np.complex64, "complex128": np.complex128, "complex32": None,
    "float8_e4m3fn": None, "float8_e5m2": None, "float8_e4m3fnuz": None, "float8_e5m2fnuz": None,
}
_STORAGE_DTYPES = {
    "FloatStorage": "float32", "DoubleStorage": "float64", "HalfStorage": "float16",
    "BFloat16Storage": "bfloat16", "LongStorage": "int64", "IntStorage": "int32",
    "ShortStorage": "int16", "CharStorage": "int8", "ByteStorage": "uint8", "BoolStorage": "bool",
    "ComplexFloatStorage": "complex64", "ComplexDoubleStorage": "complex128", "UntypedStorage": "uint8",
}


class _Sealed:
    """Base of the stand-ins a pickle can name: its BUILD opcode cannot change them
    (a forged itemsize or storage would let a tensor view reach outside its buffer)."""

    __slots__ = ()

    def __setstate__(self, state):
        raise CheckpointError(f"the pickle tries to set attributes of a {type(self).__name__[1:]} record")


class _TorchDType(_Sealed):
    """Stand-in for ``torch.float32`` etc.: its name and NumPy dtype (None for bfloat16)."""

    __slots__ = ("name", "np", "itemsize")

    def __init__(self, name):
        self.name = name
        self.np = None if _DTYPES.get(name) is None else np.dtype(_DTYPES[name])
        self.itemsize = 2 if name == "bfloat16" else (self.np.itemsize if self.np is not None else None)

    def __repr__(self):
        return f"torch.{self.name}"


class _StorageType(_Sealed):
    """Stand-in for ``torch.FloatStorage`` etc., as named in a storage's persistent id."""

    __slots__ = ("name", "dtype")

    def __init__(self, name):
        self.name, self.dtype = name, _TorchDType(_STORAGE_DTYPES[name])


class _Storage(_Sealed):
    """The bytes of one torch storage (``raw``: a flat writable uint8 array)."""

    __slots__ = ("raw", "dtype", "big_endian")

    def __init__(self, raw, dtype, big_endian):
        self.raw, self.dtype, self.big_endian = raw, dtype, big_endian


class _TypeMarker(_Sealed):
    """Stand-in for ``torch.Tensor`` / ``torch.nn.Parameter`` as passed to ``_rebuild_from_type_v2``."""

    __slots__ = ("name",)

    def __init__(self, name):
        self.name = name


def _tensor(storage, offset, size, stride, dtype, where):
    """A NumPy view of ``storage`` like ``torch.Tensor.set_(storage, offset, size, stride)``.

    offset and stride count elements of ``dtype``; the view shares the storage's
    memory (tensors that shared a storage in PyTorch share it here too), except
    for bfloat16 and big-endian data, which are converted into new arrays.
    """
    if not isinstance(storage, _Storage):
        raise CheckpointError(f"{where}: a tensor record has no storage (got {type(storage).__name__})")
    if dtype.itemsize is None:
        raise CheckpointError(f"{where}: tensors of dtype torch.{dtype.name} cannot be represented in NumPy")
    size, stride = tuple(size), tuple(stride)
    ints = all(isinstance(v, int) and not isinstance(v, bool) for v in (offset, *size, *stride))
    if not ints or len(size) != len(stride) or min((offset, *size, *stride), default=0) < 0:
        raise CheckpointError(f"{where}: invalid tensor layout offset={offset!r} size={size!r} stride={stride!r}")
    n = storage.raw.size // dtype.itemsize
    last = offset + sum((s - 1) * st for s, st in zip(size, stride))  # index of the last element
    if math.prod(size) > 0 and last >= n:
        raise CheckpointError(f"{where}: tensor of size {size} stride {stride} at offset {offset} reaches "
                              f"element {last} of a {dtype.name} storage with {n} elements")
    stored = np.dtype("<u2") if dtype.np is None else dtype.np.newbyteorder("<")
    if storage.big_endian:
        stored = stored.newbyteorder(">")
    flat = storage.raw[: n * dtype.itemsize].view(stored)
    view = np.lib.stride_tricks.as_strided(flat[offset:] if math.prod(size) > 0 else flat[:0],
                                           shape=size, strides=[st * dtype.itemsize for st in stride])
    if dtype.np is None:
        return bf16_to_float32(view.astype(np.dtype("=u2")))
    native = stored.newbyteorder("=")
    if math.prod(size) > n:  # an expanded tensor (stride 0): kept as a read-only view, not materialised
        view = view.view(native) if stored.isnative else np.lib.stride_tricks.as_strided(
            flat.astype(native)[offset:], shape=size, strides=[st * dtype.itemsize for st in stride])
        view.flags.writeable = False
        return view
    return view.view(native) if stored.isnative else view.astype(native)


class _Unpickler(pickle.Unpickler):
    """A pickle reader that builds NumPy arrays for tensors and refuses any other code.

    ``storages(key, dtype, numel)`` returns the raw bytes of a storage (or None
    during the legacy format's first pass, when tensors come back as None).
    """

    def __init__(self, fh, name, storages, big_endian=False):
        super().__init__(fh)
        self.name, self.storages, self.big_endian = name, storages, big_endian
        self.cache = {}

    def find_class(self, module, name):
        make = _ALLOWED.get((module, name))
        if make is None:
            hint = ("; if this is a whole model saved with torch.save(model), save model.state_dict() instead"
                    if name[:1].isupper() else "")
            raise CheckpointError(
                f"{self.name}: refusing to load: the pickle asks for the global '{module}.{name}', which is not "
                f"a tensor record; minicnn loads only tensors, numbers, strings and containers and never runs "
                f"code from a file{hint}")
        made = make(self, module, name)
        # a file's BUILD opcode may set attributes (even __defaults__) on what this returns:
        # hand out a fresh wrapper, never one of minicnn's own functions
        return functools.partial(made) if isinstance(made, types.FunctionType) else made

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) in (5, 6) and pid[0] == "storage"):
            kind = pid[0] if isinstance(pid, tuple) and pid else pid
            raise CheckpointError(f"{self.name}: unsupported persistent record {kind!r:.60} "
                                  f"(only tensor storages can be loaded)")
        stype, key, _location, numel = pid[1:5]
        if not isinstance(stype, _StorageType) or not isinstance(numel, int) or numel < 0:
            raise CheckpointError(f"{self.name}: malformed storage record {pid!r:.120}")
        dtype = stype.dtype
        key = str(key)
        if key not in self.cache:
            raw = self.storages(key, dtype, numel)
            self.cache[key] = None if raw is None else _Storage(raw, dtype, self.big_endian)
        storage = self.cache[key]
        view = pid[5] if len(pid) == 6 else None
        if storage is None or view is None:
            return storage
        _view_key, start, count = view  # legacy storage views: elements [start, start + count)
        if not (isinstance(start, int) and isinstance(count, int) and start >= 0 and count >= 0):
            raise CheckpointError(f"{self.name}: malformed storage view {view!r:.80}")
        i = dtype.itemsize
        return _Storage(storage.raw[start * i: (start + count) * i], dtype, self.big_endian)

    # -- the allowed calls ------------------------------------------------------------------
    def rebuild_tensor_v2(self, storage, offset, size, stride, requires_grad=False, hooks=None, metadata=None):
        if storage is None:
            return None
        return _tensor(storage, offset, size, stride, storage.dtype, self.name)

    def rebuild_tensor_v3(self, storage, offset, size, stride, requires_grad, hooks, dtype, metadata=None):
        if storage is None:
            return None
        if not (isinstance(dtype, str) and dtype.startswith("torch.") and dtype[6:] in _DTYPES):
            raise CheckpointError(f"{self.name}: malformed tensor record (dtype {dtype!r:.40})")
        return _tensor(storage, offset, size, stride, _TorchDType(dtype[6:]), self.name)


def _call(fn):
    return lambda up, module, name: (lambda *args: fn(up, *args))


def _rebuild_from_type(up, func, new_type, args, state=None):
    if not isinstance(new_type, _TypeMarker):
        raise CheckpointError(f"{up.name}: tensor subclass records must name torch.Tensor or torch.nn.Parameter")
    return func(*args)


def _codecs_encode(up, text, encoding="utf-8"):
    """Protocol-2 pickles spell ``bytes`` as ``_codecs.encode(str, 'latin1')``."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise CheckpointError(f"{up.name}: unexpected _codecs.encode call with encoding {encoding!r:.20}")
    return text.encode("latin1")


class _NumpyDType:
    """Stand-in for ``numpy.dtype(code, False, True)`` (+ BUILD state, whose [1] is the byte order)."""

    __slots__ = ("code", "order")

    def __init__(self, up, code, align=False, copy=True):
        if not (isinstance(code, str) and 2 <= len(code) <= 3 and code[0] in "biufc" and code[1:].isdigit()):
            raise CheckpointError(f"{up.name}: unsupported NumPy dtype {code!r:.20} in the pickle")
        self.code, self.order = code, "="

    def __setstate__(self, state):
        if isinstance(state, tuple) and len(state) > 1 and state[1] in ("<", ">", "|", "="):
            self.order = state[1]


def _numpy_scalar(up, dtype, data):
    if not isinstance(dtype, _NumpyDType) or not isinstance(data, bytes):
        raise CheckpointError(f"{up.name}: malformed NumPy scalar record")
    dt = np.dtype(dtype.code).newbyteorder(dtype.order)
    if len(data) != dt.itemsize:
        raise CheckpointError(f"{up.name}: NumPy scalar of dtype {dt} has {len(data)} bytes")
    return np.frombuffer(data, dt).astype(dt.newbyteorder("="))[0]


def _device(kind, index=None):
    return str(kind) if index is None else f"{kind}:{index}"


def _constant(value):
    return lambda up, module, name: value


_ALLOWED = {
    ("torch._utils", "_rebuild_tensor"): _call(_Unpickler.rebuild_tensor_v2),
    ("torch._utils", "_rebuild_tensor_v2"): _call(_Unpickler.rebuild_tensor_v2),
    ("torch._utils", "_rebuild_tensor_v3"): _call(_Unpickler.rebuild_tensor_v3),
    ("torch._utils", "_rebuild_parameter"): _constant(lambda data, *rest: data),
    ("torch._utils", "_rebuild_parameter_with_state"): _constant(lambda data, *rest: data),
    ("torch._tensor", "_rebuild_from_type_v2"): _call(_rebuild_from_type),
    ("torch", "Tensor"): lambda up, m, n: _TypeMarker("Tensor"),
    ("torch.nn.parameter", "Parameter"): lambda up, m, n: _TypeMarker("Parameter"),
    ("torch", "Size"): _constant(lambda dims=(): tuple(dims)),
    ("torch", "device"): _constant(_device),
    ("collections", "OrderedDict"): _constant(collections.OrderedDict),

    ("_codecs", "encode"): _call(_codecs_encode),
    ("numpy", "dtype"): _call(_NumpyDType),
    ("numpy.core.multiarray", "scalar"): _call(_numpy_scalar),
    ("numpy._core.multiarray", "scalar"): _call(_numpy_scalar),
}
for _module in ("builtins", "__builtin__"):  # protocol 2 spells the builtins module the Python 2 way
    for _builtin in (set, frozenset, bytearray, complex, range, slice):
        _ALLOWED[(_module, _builtin.__name__)] = _constant(_builtin)
_ALLOWED[("__builtin__", "xrange")] = _constant(range)
for _s in _STORAGE_DTYPES:
    _ALLOWED[("torch", _s)] = lambda up, m, n: _StorageType(n)
    _ALLOWED[("torch.storage", _s)] = lambda up, m, n: _StorageType(n)
for _d in _DTYPES:  # a dtype reads back as its name, e.g. "torch.float32"
    _ALLOWED[("torch", _d)] = lambda up, m, n: f"torch.{n}"


# -- the two file layouts -----------------------------------------------------------------------

_PICKLE_ERRORS = (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError, KeyError,
                  AttributeError, struct.error, RecursionError)


def read_torch(fh, name):
    """The object in a ``torch.save`` file, tensors as NumPy arrays."""
    start = fh.tell()
    is_zip = fh.read(4) == b"PK\x03\x04"
    fh.seek(start)
    try:
        return _read_zip(fh, name) if is_zip else _read_legacy(fh, name)
    except CheckpointError:
        raise
    except (zipfile.BadZipFile, zlib.error) as e:
        raise CheckpointError(f"{name}: corrupt or truncated PyTorch zip archive ({e})") from None
    except _PICKLE_ERRORS as e:
        raise CheckpointError(f"{name}: corrupt or truncated PyTorch file ({type(e).__name__}: {e})") from None


def _read_zip(fh, name):
    with zipfile.ZipFile(fh) as zf:
        names = zf.namelist()
        pkl = [n for n in names if n.endswith("/data.pkl") and n.count("/") == 1]
        if not pkl:
            hint = " (a TorchScript archive? use torch.jit.load, then save its state_dict())" \
                if any(n.endswith("/constants.pkl") for n in names) else ""
            raise CheckpointError(f"{name}: zip archive has no <name>/data.pkl: not a torch.save file{hint}")
        prefix = pkl[0][: -len("data.pkl")]
        order = zf.read(prefix + "byteorder").decode("ascii", "replace") if prefix + "byteorder" in names else "little"
        if order not in ("little", "big"):
            raise CheckpointError(f"{name}: unknown byteorder {order!r}")

        def storage(key, dtype, numel):
            member = f"{prefix}data/{key}"
            if member not in names:
                raise CheckpointError(f"{name}: storage {key!r} is missing from the archive")
            info, need = zf.getinfo(member), numel * (dtype.itemsize or 1)
            if info.compress_type != zipfile.ZIP_STORED:  # torch.save never compresses; a bomb might
                raise CheckpointError(f"{name}: storage {key!r} is compressed (torch.save writes storages "
                                      f"uncompressed); refusing to inflate it")
            if info.file_size < need:
                raise CheckpointError(f"{name}: storage {key!r} has {info.file_size} bytes, "
                                      f"expected {need} ({numel} x {dtype.name}); truncated file?")
            data = zf.read(member)
            if len(data) < need:
                raise CheckpointError(f"{name}: storage {key!r} has {len(data)} bytes, "
                                      f"expected {need} ({numel} x {dtype.name}); truncated file?")
            return np.frombuffer(bytearray(data), np.uint8)  # bytearray: the arrays are writable

        with zf.open(pkl[0]) as f:
            return _Unpickler(f, name, storage, big_endian=order == "big").load()


def _read_legacy(fh, name):
    def load_plain():
        return _Unpickler(fh, name, lambda *a: None).load()

    if load_plain() != LEGACY_MAGIC:
        raise CheckpointError(f"{name}: a pickle, but not a PyTorch file (wrong magic number)")
    if load_plain() != LEGACY_PROTOCOL:
        raise CheckpointError(f"{name}: unsupported legacy PyTorch protocol version")
    info = load_plain()
    big_endian = isinstance(info, dict) and info.get("little_endian") is False
    # Pass 1 only learns where the object's pickle ends; the storage data come after it.
    start = fh.tell()
    dtypes = {}

    def record(key, dtype, numel):
        dtypes[key] = dtype

    _Unpickler(fh, name, record).load()
    keys = load_plain()
    here = fh.tell()
    size = fh.seek(0, os.SEEK_END)
    fh.seek(here)

    def remaining():
        return size - fh.tell()
    raws = {}
    for key in keys:
        key = str(key)
        if key not in dtypes:
            raise CheckpointError(f"{name}: storage key {key!r} is listed but never used")
        head = fh.read(8)
        if len(head) < 8:
            raise CheckpointError(f"{name}: truncated before the data of storage {key!r}")
        (count,) = struct.unpack(">q" if big_endian else "<q", head)
        nbytes = count * (dtypes[key].itemsize or 1)
        if nbytes > remaining():  # read nothing that is not there (a lying count would allocate it)
            raise CheckpointError(f"{name}: storage {key!r} declares {count} elements ({nbytes} bytes), "
                                  f"but only {remaining()} bytes are left in the file")
        data = fh.read(nbytes) if count >= 0 else b""
        if count < 0 or len(data) != nbytes:
            raise CheckpointError(f"{name}: truncated data for storage {key!r} "
                                  f"(expected {nbytes} bytes, found {len(data)})")
        raws[key] = np.frombuffer(bytearray(data), np.uint8)
    end = fh.tell()
    fh.seek(start)

    def storage(key, dtype, numel):
        if key not in raws:
            raise CheckpointError(f"{name}: no data for storage {key!r}")
        return raws[key]

    obj = _Unpickler(fh, name, storage, big_endian=big_endian).load()
    fh.seek(end)
    return obj
