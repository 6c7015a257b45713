"""Find and read the CUDA C sources in ``kernels/``.

The kernels live at the repository root (``kernels/*.cu``), next to the
``minicnn`` package of an editable install; ``MINICNN_KERNELS_DIR`` points
elsewhere. Local ``#include "..."`` lines are pasted in, so a source handed to
NVRTC is self-contained and CuPy's compile cache (keyed on the source text)
sees every change to a shared header.
"""
import os
import pathlib
import re

#: the kernel files, one per op family
FAMILIES = ("im2col", "pooling", "unpool", "batchnorm", "lrn", "elementwise", "depthwise")

_INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"\s*$', re.MULTILINE)


def kernels_dir():
    """The folder holding ``<family>.cu``: $MINICNN_KERNELS_DIR, else ``<repo>/kernels``."""
    override = os.environ.get("MINICNN_KERNELS_DIR")
    folder = pathlib.Path(override) if override else pathlib.Path(__file__).resolve().parents[2] / "kernels"
    if not (folder / "im2col.cu").is_file():
        where = "MINICNN_KERNELS_DIR" if override else "the repository root (editable install)"
        raise RuntimeError(
            f"minicnn.cuda: CUDA kernel sources not found in {folder} ({where}); "
            "install minicnn from a source checkout with `pip install -e .`, "
            "or set MINICNN_KERNELS_DIR to the folder holding kernels/*.cu"
        )
    return folder


def cu_path(family):
    if family not in FAMILIES:
        raise ValueError(f"minicnn.cuda: unknown kernel family {family!r}; expected one of {FAMILIES}")
    return kernels_dir() / f"{family}.cu"


def read_source(family):
    """The text of ``<family>.cu`` with its local includes pasted in (each header once).

    Headers included from inside ``#ifndef __CUDACC__`` (the host shim) are
    pasted too; the preprocessor drops them again when compiling for the GPU.
    """
    seen = set()

    def expand(path):
        def paste(match):
            header = path.parent / match.group(1)
            if header in seen:
                return ""
            seen.add(header)
            return f"// ---- {match.group(1)} ----\n{expand(header)}\n// ---- end {match.group(1)} ----"

        return _INCLUDE.sub(paste, path.read_text())

    return expand(cu_path(family))
