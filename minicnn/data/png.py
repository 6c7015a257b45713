"""A small PNG reader and writer (zlib only, no Pillow), enough for datasets of images and masks.

A PNG file is an 8-byte signature then chunks ``length, type, data, crc``. IHDR
gives width, height, bit depth and colour type (0 gray, 2 RGB, 3 palette, 4
gray+alpha, 6 RGBA); PLTE the palette; the IDAT chunks together are one zlib
stream of scanlines, each a filter byte then the row's bytes. A filter predicts
each byte from its left neighbour a (one pixel back), the byte above b and the
upper-left c, and stores the difference (mod 256)::

    0 none   1 sub: a   2 up: b   3 average: floor((a + b) / 2)   4 paeth: whichever of a, b, c
                                                                     is closest to a + b - c
Reading undoes the filters (a sequential loop, compiled with numba); writing uses
filter 0. Bit depths 1, 2, 4, 8 (gray and palette) and 8, 16 (all types) are read;
interlaced (Adam7) files are not.
"""
import struct
import zlib

import numba
import numpy as np

SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


@numba.njit(cache=True)
def _unfilter(raw, height, stride, bpp):
    """Undo the per-row filters: raw (height * (1 + stride),) uint8 -> (height, stride) uint8."""
    out = np.zeros((height, stride), np.uint8)
    prev = np.zeros(stride, np.int32)
    for y in range(height):
        f = raw[y * (stride + 1)]
        row = raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)]
        for i in range(stride):
            a = np.int32(out[y, i - bpp]) if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if f == 0:
                pred = 0
            elif f == 1:
                pred = a
            elif f == 2:
                pred = b
            elif f == 3:
                pred = (a + b) // 2
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
            else:
                raise ValueError("PNG: unknown filter type")
            out[y, i] = (np.int32(row[i]) + pred) & 255
        for i in range(stride):
            prev[i] = out[y, i]
    return out


def _chunks(data, path):
    if data[:8] != SIGNATURE:
        raise ValueError(f"{path}: not a PNG file (bad signature)")
    pos = 8
    while pos + 8 <= len(data):
        length, ctype = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if len(body) != length:
            raise ValueError(f"{path}: truncated PNG chunk {ctype!r}")
        yield ctype, body
        pos += 12 + length


def read_png(path, expand_palette=False):
    """Read a PNG into a NumPy array: (H, W) for gray and palette, (H, W, C) otherwise.

    Palette images give palette indices (the class ids of a mask) unless
    ``expand_palette``, which gives the (H, W, 3) RGB colours. 16-bit files give uint16.
    """
    with open(path, "rb") as f:
        data = f.read()
    header, palette, idat = None, None, []
    for ctype, body in _chunks(data, path):
        if ctype == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif ctype == b"PLTE":
            palette = np.frombuffer(body, np.uint8).reshape(-1, 3)
        elif ctype == b"IDAT":
            idat.append(body)
        elif ctype == b"IEND":
            break
    if header is None:
        raise ValueError(f"{path}: PNG without an IHDR chunk")
    width, height, depth, ctype, _, _, interlace = header
    if ctype not in _CHANNELS:
        raise ValueError(f"{path}: unknown PNG colour type {ctype}")
    if interlace:
        raise ValueError(f"{path}: interlaced (Adam7) PNGs are not supported; save it without interlacing")
    if depth not in ((1, 2, 4, 8, 16) if ctype in (0, 3) else (8, 16)) or (ctype == 3 and depth == 16):
        raise ValueError(f"{path}: bit depth {depth} is not valid for PNG colour type {ctype}")
    channels = _CHANNELS[ctype]
    bits = width * channels * depth
    stride, bpp = (bits + 7) // 8, max(1, channels * depth // 8)
    raw = np.frombuffer(zlib.decompress(b"".join(idat)), np.uint8)
    if raw.size < height * (stride + 1):
        raise ValueError(f"{path}: PNG image data is shorter than {width}x{height} pixels need")
    rows = _unfilter(raw[:height * (stride + 1)], height, stride, bpp)
    if depth == 16:
        img = rows.view(">u2").astype(np.uint16).reshape(height, width, channels)
    elif depth == 8:
        img = rows.reshape(height, width, channels)
    else:  # 1, 2 or 4 bits per pixel, packed from the most significant bit
        shifts = np.arange(8 - depth, -1, -depth, dtype=np.uint8)
        vals = (rows[:, :, None] >> shifts) & ((1 << depth) - 1)
        img = vals.reshape(height, -1)[:, :width, None]
    img = img[:, :, 0] if channels == 1 else img
    if ctype == 3 and expand_palette:
        if palette is None:
            raise ValueError(f"{path}: palette PNG without a PLTE chunk")
        img = palette[img]
    return np.ascontiguousarray(img)


def _chunk(ctype, body):
    return struct.pack(">I", len(body)) + ctype + body + struct.pack(">I", zlib.crc32(ctype + body) & 0xFFFFFFFF)


def write_png(path, image, palette=None):
    """Write uint8 ``image`` (H, W) gray, (H, W, 3) RGB or (H, W, 4) RGBA as an 8-bit PNG.

    With ``palette`` ((K, 3) uint8 colours), an (H, W) image is written as palette
    indices, the usual format of segmentation masks.
    """
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise TypeError(f"write_png: expected a uint8 image, got {image.dtype} (scale and convert it first)")
    if image.ndim == 2:
        ctype = 0 if palette is None else 3
    elif image.ndim == 3 and image.shape[2] in (1, 3, 4) and palette is None:
        ctype = {1: 0, 3: 2, 4: 6}[image.shape[2]]
    else:
        raise ValueError(f"write_png: expected (H, W), (H, W, 3) or (H, W, 4), got {image.shape}"
                         + (" with a palette" if palette is not None else ""))
    h, w = image.shape[:2]
    rows = image.reshape(h, -1)
    raw = np.concatenate([np.zeros((h, 1), np.uint8), rows], axis=1)  # filter byte 0 on each row
    chunks = [_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, ctype, 0, 0, 0))]
    if palette is not None:
        palette = np.asarray(palette, np.uint8).reshape(-1, 3)
        if len(palette) > 256 or image.max(initial=0) >= len(palette):
            raise ValueError(f"write_png: {len(palette)} palette entries for indices up to {image.max()}")
        chunks.append(_chunk(b"PLTE", palette.tobytes()))
    chunks.append(_chunk(b"IDAT", zlib.compress(raw.tobytes(), 6)))
    chunks.append(_chunk(b"IEND", b""))
    with open(path, "wb") as f:
        f.write(SIGNATURE + b"".join(chunks))
