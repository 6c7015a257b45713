"""Saving and loading checkpoints: ``mc.save(obj, path)`` and ``mc.load(path)``.

minicnn's own format is a NumPy ``.npz`` (a zip archive). Every array is one
``.npy`` member, named after its place in the checkpoint (``conv1.weight.npy``,
``model/fc.bias.npy``, ...), so plain ``np.load(path)["conv1.weight"]`` reads it
too. The member ``__minicnn__.json`` holds the structure::

    {"format": "minicnn", "version": 1,
     "root": {"dict": [["epoch", 3], ["model", {"dict": [["fc.bias", {"array": "model/fc.bias.npy"}]]}]]}}

Containers are tagged ``{"dict": [[key, value], ...]}`` (str or int keys, order
kept), ``{"list": [...]}`` and ``{"tuple": [...]}``; ``{"array": member}`` is an
ndarray and ``{"scalar": member}`` a NumPy scalar (a 0-d member); Python
int/bool/str/None are plain JSON and floats too, except ``{"float": "nan"}``,
``"inf"``, ``"-inf"``. Nothing is ever unpickled.

``load`` also reads PyTorch ``torch.save`` files (see ``minicnn.torch_reader``)
and ``.safetensors`` files; ``save(..., format="safetensors")`` writes the
latter for a flat ``{name: array}`` dict (PyTorch users read it with
``safetensors.torch.load_file``).
"""
import json
import math
import os
import signal
import struct
import threading
import zipfile
import zlib

import numpy as np

from . import backend

__all__ = ["save", "load", "save_safetensors", "load_safetensors", "detect_format", "CheckpointError"]

FORMAT_NAME = "minicnn"
FORMAT_VERSION = 1
STRUCTURE_MEMBER = "__minicnn__.json"


class CheckpointError(ValueError):
    """A file that cannot be loaded: truncated, corrupt, foreign, too new or unsafe."""


def _name(f):
    return str(f) if isinstance(f, (str, os.PathLike)) else getattr(f, "name", repr(f))


# -- saving ---------------------------------------------------------------------------------


def save(obj, f, format=None):
    """Write ``obj`` to ``f`` (a path or a binary file object).

    ``obj`` is a state dict or any nesting of dict (str or int keys), list and
    tuple holding arrays (NumPy, CuPy or Tensors; saved as host arrays), NumPy
    scalars and Python int/float/bool/str/None.

    ``format``: ``"npz"`` (minicnn's format, the default), ``"torch"`` (``torch.save``'s zip
    format, which ``torch.load(path, weights_only=True)`` reads) or ``"safetensors"`` (only a
    flat ``{str: array}`` dict); ``None`` picks by the suffix: ``.pt``/``.pth`` torch,
    ``.safetensors`` safetensors, anything else npz.

    A path is written atomically: into a temporary file in the same directory,
    flushed to disk, then renamed over ``f``; on any error nothing is left behind
    and an existing ``f`` is untouched.
    """
    if format is None:
        suffix = os.path.splitext(_name(f))[1].lower()
        format = {".safetensors": "safetensors", ".pt": "torch", ".pth": "torch"}.get(suffix, "npz")
    if format == "npz":
        writer = lambda fh: _write_npz(obj, fh)  # noqa: E731
    elif format == "torch":
        from .torch_writer import write_torch

        writer = lambda fh: write_torch(obj, fh)  # noqa: E731
    elif format == "safetensors":
        if not isinstance(obj, dict):
            raise TypeError(f"save(format='safetensors'): expected a flat dict of arrays, got {type(obj).__name__}")
        writer = lambda fh: _write_safetensors(obj, fh, None)  # noqa: E731
    else:
        raise ValueError(f"save: unknown format {format!r}; expected 'npz', 'torch' or 'safetensors'")
    _write(f, writer)


class _Terminated(BaseException):
    """SIGTERM arrived while a save was writing its temporary file."""


def _write(f, writer):
    """Run ``writer(fileobj)`` on a file object, or atomically on a path.

    The temporary file has one name per target (``.NAME.tmp`` beside it), so a save killed
    outright (SIGKILL) leaves at most one, which the next save of that target replaces. On
    SIGTERM (and any error) the temporary file is removed before the signal takes its course.
    """
    if hasattr(f, "write"):
        writer(f)
        return
    path = os.fspath(f)
    directory = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(directory, "." + os.path.basename(path) + ".tmp")
    previous = _on_sigterm(_raise_terminated)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)  # the umask applies
        with os.fdopen(fd, "wb") as fh:
            writer(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(e, _Terminated):  # now the signal does what it would have done
            _on_sigterm(previous)
            previous = None
            os.kill(os.getpid(), signal.SIGTERM)
            raise InterruptedError(f"save: writing {path} was interrupted by SIGTERM; nothing was written") from None
        raise
    finally:
        if previous is not None:
            _on_sigterm(previous)
    _fsync_dir(directory)


def _raise_terminated(signum, frame):
    raise _Terminated()


def _on_sigterm(handler):
    """Install ``handler`` for SIGTERM (main thread only; None elsewhere); returns the previous one."""
    if handler is None or threading.current_thread() is not threading.main_thread():
        return None
    if signal.getsignal(signal.SIGTERM) is signal.SIG_IGN:  # the process ignores SIGTERM: so does the save
        return None
    return signal.signal(signal.SIGTERM, handler)


def _fsync_dir(directory):
    """Make the rename itself durable (POSIX only; a no-op where directories cannot be opened)."""
    try:
        dfd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)


def _host_array(x):
    """NumPy array for a NumPy/CuPy array or a Tensor; None for anything else."""
    from .tensor import Tensor

    if isinstance(x, Tensor):
        x = x.array
    if isinstance(x, np.ndarray) or backend.is_cupy_array(x):
        return backend.to_numpy(x)
    return None


class _Encoder:
    """Turns a checkpoint into a JSON-able tree plus ``{member name: array}``."""

    def __init__(self):
        self.arrays = {}

    def member(self, path, arr, where):
        if arr.dtype.hasobject or arr.dtype.fields is not None:
            raise TypeError(f"save: {where} is an array of dtype {arr.dtype}, which cannot be saved without pickle")
        parts = [str(p) for p in path]
        name = "/".join(parts) + ".npy"
        bad = not parts or any(p in ("", ".", "..") or "\\" in p or "\0" in p for p in parts)
        if bad or name in self.arrays or name == STRUCTURE_MEMBER:
            name = f"arr_{len(self.arrays)}.npy"
        self.arrays[name] = arr
        return name

    def encode(self, x, path):
        where = "obj" + "".join(f"[{p!r}]" for p in path)
        if x is None or isinstance(x, (bool, str)):
            return x
        if isinstance(x, int):
            return int(x)
        if isinstance(x, float):
            return float(x) if math.isfinite(x) else {"float": repr(float(x))}
        if isinstance(x, np.generic):
            return {"scalar": self.member(path, np.asarray(x), where)}
        arr = _host_array(x)
        if arr is not None:
            return {"array": self.member(path, arr, where)}
        if isinstance(x, dict):
            items = []
            for k, v in x.items():
                if isinstance(k, bool) or not isinstance(k, (str, int)):
                    raise TypeError(f"save: {where} has key {k!r} of type {type(k).__name__}; only str and int keys can be saved")
                items.append([k if isinstance(k, str) else int(k), self.encode(v, path + (k,))])
            return {"dict": items}
        if isinstance(x, (list, tuple)):
            tag = "tuple" if isinstance(x, tuple) else "list"
            return {tag: [self.encode(v, path + (i,)) for i, v in enumerate(x)]}
        hint = "; save its state_dict() instead" if hasattr(x, "state_dict") else ""
        raise TypeError(f"save: {where} has type {type(x).__name__}, which cannot be saved{hint}")


def _write_npz(obj, fh):
    enc = _Encoder()
    root = enc.encode(obj, ())
    header = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "root": root}
    with zipfile.ZipFile(fh, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
        zf.writestr(STRUCTURE_MEMBER, json.dumps(header, allow_nan=False))
        for name, arr in enc.arrays.items():
            with zf.open(name, "w", force_zip64=True) as m:
                np.lib.format.write_array(m, arr, allow_pickle=False)


# -- loading --------------------------------------------------------------------------------


def load(f, format=None, map_location=None, weights_only=None):
    """Read a checkpoint written by ``save``, ``torch.save`` or safetensors.

    Returns the saved structure with NumPy arrays in place of tensors: dicts
    (int keys stay int), lists, tuples, NumPy scalars and Python scalars. A
    plain NumPy ``.npz`` loads as ``{name: array}``.

    ``format``: ``"npz"``, ``"torch"`` (``.pt``/``.pth``, zip or legacy),
    ``"safetensors"`` or ``None`` (decided by the file's first bytes). Nothing is
    ever unpickled except PyTorch's tensor records, through an allowlist; any
    problem raises ``CheckpointError`` naming the file.

    ``map_location`` and ``weights_only`` are accepted as ``torch.load``'s: arrays always come
    back on the host (``load_state_dict`` moves them to the module's device), and only weights
    are ever loaded.
    """
    if map_location is not None and not callable(map_location) and not isinstance(map_location, dict):
        backend.normalize_device(map_location)  # an unknown device is still an error
    name = _name(f)
    if hasattr(f, "read"):
        return _guarded(f, name, format)
    with open(f, "rb") as fh:
        return _guarded(fh, name, format)


# what a crafted file can provoke in zipfile, pickle, json and numpy, beyond their own errors
_HOSTILE = (MemoryError, OverflowError, RecursionError, NotImplementedError, RuntimeError, OSError, EOFError,
            zipfile.BadZipFile, zlib.error, struct.error, UnicodeDecodeError, IndexError, KeyError, TypeError)


def _guarded(fh, name, format):
    try:
        return _load_fileobj(fh, name, format)
    except CheckpointError:
        raise
    except _HOSTILE as e:
        raise CheckpointError(f"{name}: cannot be read ({type(e).__name__}: {str(e)[:200] or 'no details'})") from None


def _load_fileobj(fh, name, format):
    if format is None:
        format = _sniff(fh, name)
    if format == "npz":
        return _read_npz(fh, name)
    if format == "torch":
        from .torch_reader import read_torch

        return read_torch(fh, name)
    if format == "safetensors":
        return _read_safetensors(fh, name)
    raise ValueError(f"load: unknown format {format!r}; expected 'npz', 'torch', 'safetensors' or None")


def detect_format(f):
    """``"npz"``, ``"torch"`` or ``"safetensors"``, from the first bytes of file ``f``."""
    if hasattr(f, "read"):
        return _sniff(f, _name(f))
    with open(f, "rb") as fh:
        return _sniff(fh, _name(f))


def _sniff(fh, name):
    """The format from the first bytes: zip (npz or torch), pickle (legacy torch) or safetensors."""
    start = fh.tell()
    head = fh.read(9)
    fh.seek(start)
    if len(head) < 8:
        raise CheckpointError(f"{name}: file is empty or truncated ({len(head)} bytes)")
    if head[:4] == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(fh) as zf:
                names = zf.namelist()
        except (zipfile.BadZipFile, OSError, EOFError) as e:
            raise CheckpointError(f"{name}: corrupt or truncated zip archive ({e})") from None
        finally:
            fh.seek(start)
        if any(n.endswith("/data.pkl") for n in names) and STRUCTURE_MEMBER not in names:
            return "torch"
        return "npz"
    if head[:1] == b"\x80":
        return "torch"
    if head[8:9] == b"{":
        return "safetensors"
    raise CheckpointError(f"{name}: not a minicnn, NumPy .npz, PyTorch or safetensors file "
                          f"(starts with {head[:8]!r})")


def _read_npz(fh, name):
    try:
        with zipfile.ZipFile(fh) as zf:
            members = set(zf.namelist())
            if STRUCTURE_MEMBER not in members:  # a plain np.savez archive: .npy members only
                arrays = [m for m in zf.namelist() if m.endswith(".npy")]
                if members and not arrays:
                    raise CheckpointError(f"{name}: a zip archive without .npy arrays: not a minicnn or NumPy .npz file")
                others = sorted(members - set(arrays))
                if others:
                    raise CheckpointError(f"{name}: no {STRUCTURE_MEMBER} but a member {others[0]!r} that is not an "
                                          f"array: a damaged minicnn checkpoint?")
                return {m[:-4]: _read_member(zf, m, name) for m in arrays}
            try:
                header = json.loads(zf.read(STRUCTURE_MEMBER).decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as e:
                raise CheckpointError(f"{name}: {STRUCTURE_MEMBER} is not valid JSON ({e})") from None
            if not isinstance(header, dict) or header.get("format") != FORMAT_NAME or "root" not in header:
                raise CheckpointError(f"{name}: {STRUCTURE_MEMBER} does not describe a minicnn checkpoint")
            version = header.get("version")
            if not isinstance(version, int) or version < 1:
                raise CheckpointError(f"{name}: invalid format version {version!r}")
            if version > FORMAT_VERSION:
                raise CheckpointError(f"{name}: written by a newer minicnn (format version {version}); "
                                      f"this minicnn reads versions up to {FORMAT_VERSION}; upgrade minicnn")
            return _Decoder(zf, members, name).decode(header["root"])
    except (zipfile.BadZipFile, EOFError, zlib.error) as e:
        raise CheckpointError(f"{name}: corrupt or truncated zip archive ({e})") from None


def _read_member(zf, member, name):
    """The array in .npy member ``member``, after checking that the size its header declares is
    the size of the member (a compressed member inflates to no more than its array)."""
    try:
        with zf.open(member) as m:
            version = np.lib.format.read_magic(m)
            header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _, dtype = header(m)
            need = math.prod(shape) * dtype.itemsize
            if dtype.hasobject or m.tell() + need != zf.getinfo(member).file_size:
                raise ValueError(f"its header declares {dtype} {shape} ({need} bytes), the member holds "
                                 f"{zf.getinfo(member).file_size - m.tell()} bytes of data")
        with zf.open(member) as m:
            return np.lib.format.read_array(m, allow_pickle=False)
    except ValueError as e:  # bad .npy header, object arrays, short data
        raise CheckpointError(f"{name}: member {member} is not a readable .npy array ({e})") from None


class _Decoder:
    def __init__(self, zf, members, name):
        self.zf, self.members, self.name = zf, members, name

    def fail(self, what):
        raise CheckpointError(f"{self.name}: malformed {STRUCTURE_MEMBER}: {what}")

    def array(self, member):
        if not isinstance(member, str) or member not in self.members:
            self.fail(f"array member {member!r} is missing from the archive")
        return _read_member(self.zf, member, self.name)

    def decode(self, x):
        if x is None or isinstance(x, (bool, int, float, str)):
            return x
        if isinstance(x, dict) and len(x) == 1:
            (tag, v), = x.items()
            if tag == "array":
                return self.array(v)
            if tag == "scalar":
                return self.array(v)[()]
            if tag == "float" and v in ("nan", "inf", "-inf"):
                return float(v)
            if tag in ("list", "tuple") and isinstance(v, list):
                items = [self.decode(i) for i in v]
                return tuple(items) if tag == "tuple" else items
            if tag == "dict" and isinstance(v, list):
                out = {}
                for pair in v:
                    if not (isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], (str, int))
                            and not isinstance(pair[0], bool)):
                        self.fail(f"bad dict item {pair!r:.80}")
                    out[pair[0]] = self.decode(pair[1])
                return out
        self.fail(f"unknown entry {x!r:.80}")


# -- safetensors ----------------------------------------------------------------------------
# Layout: 8-byte little-endian header length N, N bytes of JSON
# {"name": {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}, "__metadata__": {str: str}},
# then the raw little-endian data; offsets count from the first byte after the header.

_ST_DTYPES = {"BOOL": np.bool_, "U8": np.uint8, "I8": np.int8, "U16": np.uint16, "I16": np.int16,
              "F16": np.float16, "U32": np.uint32, "I32": np.int32, "F32": np.float32,
              "U64": np.uint64, "I64": np.int64, "F64": np.float64}
_ST_NAMES = {np.dtype(v): k for k, v in _ST_DTYPES.items()}


def save_safetensors(tensors, f, metadata=None):
    """Write a flat ``{name: array}`` dict as a ``.safetensors`` file (atomically for a path).

    PyTorch users read it with ``safetensors.torch.load_file(path)``. ``metadata``
    is an optional ``{str: str}`` dict stored in the header.
    """
    _write(f, lambda fh: _write_safetensors(tensors, fh, metadata))


def _write_safetensors(tensors, fh, metadata):
    header, blobs, offset = {}, [], 0
    if metadata is not None:
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
            raise TypeError("save_safetensors: metadata must be a {str: str} dict")
        header["__metadata__"] = dict(metadata)
    for k, v in tensors.items():
        arr = _host_array(v)
        if not isinstance(k, str) or arr is None:
            raise TypeError(f"save_safetensors: expected {{str: array}}, got key {k!r} with a "
                            f"{type(v).__name__}; nested checkpoints need format='npz'")
        if k == "__metadata__":
            raise ValueError("save_safetensors: the name '__metadata__' is reserved")
        if arr.dtype.newbyteorder("=") not in _ST_NAMES:
            raise TypeError(f"save_safetensors: {k!r} has dtype {arr.dtype}, which safetensors cannot hold")
        data = np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("<")).tobytes()
        header[k] = {"dtype": _ST_NAMES[arr.dtype.newbyteorder("=")], "shape": list(arr.shape),
                     "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)  # the data starts 8-byte aligned
    fh.write(struct.pack("<Q", len(text)))
    fh.write(text)
    for b in blobs:
        fh.write(b)


def load_safetensors(f):
    """Read a ``.safetensors`` file as a ``{name: array}`` dict (BF16 is widened to float32)."""
    return load(f, format="safetensors")


def _read_safetensors(fh, name):
    raw = fh.read(8)
    if len(raw) < 8:
        raise CheckpointError(f"{name}: truncated safetensors file (no header length)")
    (n,) = struct.unpack("<Q", raw)
    text = fh.read(n) if n <= 100_000_000 else b""
    if len(text) != n:
        raise CheckpointError(f"{name}: truncated or corrupt safetensors header "
                              f"(length field says {n} bytes, {len(text)} present)")
    try:
        header = json.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{name}: safetensors header is not valid JSON ({e})") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{name}: safetensors header is not a JSON object")
    data = fh.read()
    out = {}
    for k, info in header.items():
        if k == "__metadata__":
            continue
        try:
            dtype_name, shape, (begin, end) = info["dtype"], [int(s) for s in info["shape"]], info["data_offsets"]
        except (TypeError, KeyError, ValueError) as e:
            raise CheckpointError(f"{name}: bad safetensors entry for {k!r}: {info!r:.100}") from None
        if dtype_name == "BF16":
            dtype, itemsize = None, 2
        elif dtype_name in _ST_DTYPES:
            dtype = np.dtype(_ST_DTYPES[dtype_name]).newbyteorder("<")
            itemsize = dtype.itemsize
        else:
            raise CheckpointError(f"{name}: tensor {k!r} has safetensors dtype {dtype_name}, which NumPy cannot hold")
        count = math.prod(shape)
        if min(shape, default=0) < 0 or not (0 <= begin <= end <= len(data)) or end - begin != count * itemsize:
            raise CheckpointError(f"{name}: tensor {k!r} ({dtype_name} {shape}) has data offsets [{begin}, {end}] "
                                  f"that do not fit its size or the {len(data)} data bytes (truncated file?)")
        chunk = bytearray(data[begin:end])  # a writable copy
        if dtype is None:
            arr = bf16_to_float32(np.frombuffer(chunk, np.dtype("<u2")))
        else:
            native = dtype.newbyteorder("=")
            arr = np.frombuffer(chunk, dtype)
            arr = arr.view(native) if dtype.isnative else arr.astype(native)
        out[k] = arr.reshape(shape)
    return out


def bf16_to_float32(bits):
    """bfloat16 bit patterns (uint16) -> float32: bfloat16 is the top half of a float32."""
    return (bits.astype(np.uint32) << 16).view(np.float32)
