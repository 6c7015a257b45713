"""Write ``torch.save``'s zip format without PyTorch, for ``mc.save(obj, "model.pt")``.

The archive holds ``archive/data.pkl`` (a protocol-2 pickle of the structure, every array a
``torch._utils._rebuild_tensor_v2`` record whose storage is a persistent id), one member
``archive/data/<key>`` of raw little-endian bytes per array, ``archive/byteorder`` and
``archive/version``: what ``torch.load(path, weights_only=True)`` reads. The pickle is written
opcode by opcode (a few of them), so no PyTorch class has to exist here.
"""
import collections
import struct
import zipfile

import numpy as np

from . import backend

_STORAGES = {np.dtype(np.float32): "FloatStorage", np.dtype(np.float64): "DoubleStorage",
             np.dtype(np.float16): "HalfStorage", np.dtype(np.int64): "LongStorage",
             np.dtype(np.int32): "IntStorage", np.dtype(np.int16): "ShortStorage", np.dtype(np.int8): "CharStorage",
             np.dtype(np.uint8): "ByteStorage", np.dtype(np.bool_): "BoolStorage"}


class _Pickle:
    """Protocol-2 opcodes for dicts (str or int keys), lists, tuples, numbers, strings, None and arrays."""

    def __init__(self):
        self.out, self.storages = [b"\x80\x02"], []

    def global_(self, module, name):
        self.out.append(b"c" + module.encode() + b"\n" + name.encode() + b"\n")

    def dump(self, obj, where="obj"):
        from .tensor import Tensor

        out = self.out
        if isinstance(obj, Tensor):
            obj = obj.array
        if hasattr(obj, "shape") and hasattr(obj, "dtype") and not isinstance(obj, np.generic):
            return self.tensor(backend.to_numpy(obj), where)
        if isinstance(obj, np.generic):
            obj = obj.item()
        if obj is None:
            out.append(b"N")
        elif isinstance(obj, bool):
            out.append(b"\x88" if obj else b"\x89")
        elif isinstance(obj, int):
            out.append(b"J" + struct.pack("<i", obj) if -2**31 <= obj < 2**31 else self._long(obj))
        elif isinstance(obj, float):
            out.append(b"G" + struct.pack(">d", obj))
        elif isinstance(obj, str):
            data = obj.encode("utf-8")
            out.append(b"X" + struct.pack("<I", len(data)) + data)
        elif isinstance(obj, dict):
            if isinstance(obj, collections.OrderedDict):
                self.global_("collections", "OrderedDict")
                out.append(b")R")
            else:
                out.append(b"}")
            if obj:
                out.append(b"(")
                for k, v in obj.items():
                    if not isinstance(k, (str, int)) or isinstance(k, bool):
                        raise TypeError(f"save: {where} has a key of type {type(k).__name__}; PyTorch's format "
                                        "here takes str or int keys")
                    self.dump(k, where)
                    self.dump(v, f"{where}[{k!r}]")
                out.append(b"u")
        elif isinstance(obj, (list, tuple)):
            out.append(b"(" if isinstance(obj, tuple) else b"](")
            for i, v in enumerate(obj):
                self.dump(v, f"{where}[{i}]")
            out.append(b"t" if isinstance(obj, tuple) else b"e")
        else:
            raise TypeError(f"save: cannot write {where} of type {type(obj).__name__} to a PyTorch file")

    @staticmethod
    def _long(value):
        data = value.to_bytes((value.bit_length() + 8) // 8, "little", signed=True)
        return b"\x8a" + bytes([len(data)]) + data

    def tensor(self, array, where):
        if array.dtype not in _STORAGES:
            raise TypeError(f"save: {where} has dtype {array.dtype}, which PyTorch's format here does not take")
        array = np.array(array, order="C", copy=not array.flags.c_contiguous)  # 0-d stays 0-d
        key = str(len(self.storages))
        self.storages.append(array.astype(array.dtype.newbyteorder("<"), copy=False))
        self.global_("torch._utils", "_rebuild_tensor_v2")
        self.out.append(b"(")  # the arguments
        self.out.append(b"(")  # the storage's persistent id
        self.dump("storage")
        self.global_("torch", _STORAGES[array.dtype])
        self.dump(key)
        self.dump("cpu")
        self.dump(int(array.size))
        self.out.append(b"tQ")
        self.dump(0)  # storage offset
        self.dump(tuple(int(s) for s in array.shape))
        self.dump(tuple(int(s) // array.itemsize for s in array.strides) if array.size else (1,) * array.ndim)
        self.dump(False)  # requires_grad
        self.global_("collections", "OrderedDict")
        self.out.append(b")R")  # backward hooks
        self.out.append(b"tR")

    def bytes(self):
        return b"".join(self.out) + b"."


def write_torch(obj, fh):
    """Write ``obj`` (a state dict or nesting of dicts, lists and tuples of arrays, numbers and
    strings) to the binary file ``fh`` in ``torch.save``'s zip format."""
    pickle = _Pickle()
    pickle.dump(obj)
    with zipfile.ZipFile(fh, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("archive/data.pkl", pickle.bytes())
        zf.writestr("archive/byteorder", "little")
        for key, array in enumerate(pickle.storages):
            zf.writestr(f"archive/data/{key}", array.tobytes())
        zf.writestr("archive/version", "3\n")
