"""Every speed threshold of minicnn's CPU and GPU paths, in one place, with its reason.

None of these changes a result, only which loop or tile size computes it (every path is
tested against the reference to 1e-12 in float64). Sizes that depend on the machine come
from the machine (its cache sizes, read once from the OS); the rest are crossover points,
and ``benchmarks/README.md`` holds the measurements behind them.

To try other values (in a benchmark, or a test that wants tiny tiles)::

    with minicnn.tuning.override(CACHE_TILE=2**16):
        ...

Code reads these names at call time (``tuning.CACHE_TILE``), so an override takes effect at once.
"""
import contextlib
import os


def _cache_bytes(level, default):
    """The size of this CPU's level-``level`` data or unified cache (Linux sysfs), else ``default``."""
    root = "/sys/devices/system/cpu/cpu0/cache"
    try:
        for index in sorted(os.listdir(root)):
            with open(os.path.join(root, index, "level")) as f:
                if int(f.read()) != level:
                    continue
            with open(os.path.join(root, index, "type")) as f:
                if f.read().strip() == "Instruction":
                    continue
            with open(os.path.join(root, index, "size")) as f:
                size = f.read().strip().upper()
            scale = {"K": 2**10, "M": 2**20, "G": 2**30}.get(size[-1:], 1)
            return int(size.rstrip("KMG")) * scale
    except (OSError, ValueError):
        pass
    return default


L2_BYTES = _cache_bytes(2, 1 * 2**20)
L3_BYTES = _cache_bytes(3, 32 * 2**20)

# -- convolution by im2col (minicnn/ops/conv_tiled.py) ---------------------------------------------

# the column buffer's cap, kept between calls: long matrices for BLAS, yet small next to a step's peak
WORKSPACE_LIMIT = 64 * 2**20
# a chunk of whole images' columns, so that the GEMM reads them from the last-level cache right
# after im2col wrote them: a quarter of L3 (other cores and the weights share it), at most 8 MiB
CACHE_TILE = max(2 * 2**20, min(8 * 2**20, L3_BYTES // 4))
# where BLAS runs on one thread, bands of one image's columns that stay in the core's own cache:
# a stem's GEMM does little work per column read
BAND_TILE = max(2 * 2**20, L2_BYTES)
# maps with fewer output pixels put a tile's images into one weight-gradient GEMM: thin
# per-image products run far below the BLAS peak
SMALL_MAP_PIXELS = 1024
# weight gradient as col @ gy^T ("tall") at most this many output channels per group: OpenBLAS
# runs gy @ col^T slowly when gy has few rows, and the other way round with many
TALL_MAX_OUT_CHANNELS = 128
# a stride-1 input gradient as a correlation (im2col of gy, one GEMM) from this many grid pixels
# in the batch (N*oh*ow) on: it skips the col2im fold, which only pays on big maps
CORRELATION_MIN_PIXELS = 1024

# -- the batch split over cores (minicnn/cpu/threads.py) -------------------------------------------

# below this many multiply-adds a split costs more (waking a thread) than it saves
MIN_SPLIT_WORK = 1 << 23
# each share of a split needs this many GEMM grid pixels at least: narrower GEMMs run slowly on
# one thread, and every share reads all the weights
MIN_SHARE_PIXELS = 256
# log2 of the cycles OpenBLAS's idle workers spin before they sleep (its default 28, ~0.1 s),
# set by the opt-in ``minicnn.backends.tune_cpu_threads()``: long enough to stay awake between
# the products of one convolution, short enough to free the cores for the next op
SPIN_TIMEOUT = 20

# -- Winograd F(2x2, 3x3) (minicnn/cpu/conv_winograd.py) -------------------------------------------

# fewer input or output channels than this: the transforms cost more than the saved multiplies
WINOGRAD_MIN_CHANNELS = 8
# fewer 2x2 output tiles in the batch than this: the filter transform is not paid back
WINOGRAD_MIN_TILES = 128
# a chunk's scratch (V and M together) of about two core caches stays cached from transform to GEMM
WINOGRAD_CHUNK_BYTES = 2 * BAND_TILE
# but a GEMM needs a few hundred tile columns to run at full speed
WINOGRAD_MIN_CHUNK_TILES = 256
# stride phases (minicnn/cpu/conv_phases.py): the phase kernel may hold at most this many times
# the taps of the real one, or Winograd's 2.25x fewer multiplies no longer pay
PHASES_MAX_PADDED_TAPS = 1.5

# -- host kernels (minicnn/cpu/*.py) ---------------------------------------------------------------

# im2col with a horizontal stride splits the image into its column phases first (contiguous
# runs instead of gathers) when a stride step covers at least this many kernel taps: the stems
IM2COL_PHASE_MIN_TAPS_PER_STEP = 4
# numba loops run in parallel from this many elements on; smaller ones run serially, as
# waking the threads costs more than the loop (col2im, optimizer, activation, normalization, pooling)
PARALLEL_MIN_SIZE = 1 << 16
COL2IM_PARALLEL_MIN_SIZE = 1 << 17
# element-wise numba loops: below the first size NumPy's own ufuncs are as fast; from the second on
# the loop runs in parallel
ELEMENTWISE_MIN_SIZE = 1 << 12
ELEMENTWISE_PARALLEL_MIN_SIZE = 1 << 20

# -- CUDA kernels (minicnn/cuda/*.py) --------------------------------------------------------------

# threads per block of every grid-stride kernel: a multiple of the warp that keeps several blocks
# resident per multiprocessor
CUDA_BLOCK = 256
# partial sums per channel in batch norm's backward reduction: enough threads to fill the GPU on
# small batches, few enough that the second pass over the partials stays short
CUDA_BN_PARTIALS = 1024
# interleaved partial sums per tap in the depthwise weight gradient: a depthwise layer has few taps
# (C*9), so each needs hundreds of threads to fill the GPU; the caller adds the partials up
CUDA_DEPTHWISE_PARTIALS = 256


@contextlib.contextmanager
def override(**values):
    """Run the block with some thresholds changed (names as above), then restore them."""
    here = globals()
    unknown = sorted(name for name in values if not name.isupper() or name not in here)
    if unknown:
        raise ValueError(f"tuning.override: unknown threshold(s) {unknown}; "
                         f"known: {sorted(n for n in here if n.isupper())}")
    previous = {name: here[name] for name in values}
    here.update(values)
    try:
        yield
    finally:
        here.update(previous)
