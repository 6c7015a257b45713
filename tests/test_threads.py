"""The batch split over cores (minicnn/cpu/threads.py): parts, BLAS threads, errors, and
convolutions that give the same result split and unsplit."""
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

import minicnn as mc
import minicnn.nn.functional as F
from minicnn import tuning
from minicnn.cpu import conv_winograd as winograd
from minicnn.cpu import threads
from minicnn.geometry import Window
from minicnn.ops import conv_tiled

pytestmark = pytest.mark.skipif(threads.blas_threads() is None,
                                reason="needs threadpoolctl and a BLAS whose threads it can set")


@pytest.fixture
def split():
    """Every batch splits (no minimum work or map size); ``split(parts)`` gives BLAS ``parts``
    threads. Both are restored afterwards."""
    from threadpoolctl import ThreadpoolController
    blas = ThreadpoolController().select(user_api="blas")
    with tuning.override(MIN_SPLIT_WORK=0, MIN_SHARE_PIXELS=1), blas.limit(limits=threads.blas_threads()):
        yield lambda parts: blas.limit(limits=parts)


def _record(calls):
    def fn(n0, n1):
        calls.append((n0, n1, threads.share(), threads.blas_threads(), threading.get_ident()))
        return n1 - n0
    return fn


@pytest.mark.parametrize("n, parts, bounds", [(8, 2, [(0, 4), (4, 8)]), (7, 3, [(0, 2), (2, 4), (4, 7)]),
                                              (2, 4, [(0, 1), (1, 2)])])
def test_parts_cover_the_batch_in_order_on_as_many_threads(split, n, parts, bounds):
    split(parts)
    calls = []
    assert threads.over_batch(_record(calls), n, work=1) == [b - a for a, b in bounds]
    assert sorted(c[:2] for c in calls) == bounds
    assert {c[2] for c in calls} == {len(bounds)}  # every part knows how many share the batch
    assert {c[3] for c in calls} == {1}  # single-threaded BLAS inside
    me = threading.get_ident()
    assert [c[4] == me for c in sorted(calls)] == [True] + [False] * (len(bounds) - 1)  # the rest on workers
    assert threads.blas_threads() == parts and threads.share() == 1  # restored


@pytest.mark.parametrize("case", ["one image", "little work", "one BLAS thread", "too few images per part"])
def test_no_split_runs_one_call_on_this_thread(split, case):
    split(1 if case == "one BLAS thread" else 2)
    calls = []
    with tuning.override(MIN_SPLIT_WORK=100 if case == "little work" else 0):
        threads.over_batch(_record(calls), 1 if case == "one image" else 6, work=99,
                           min_images=4 if case == "too few images per part" else 1)
    assert [c[:3] for c in calls] == [(0, 1 if case == "one image" else 6, 1)]
    assert calls[0][4] == threading.get_ident()


def test_no_split_inside_a_split(split):
    split(2)
    inner = []
    threads.over_batch(lambda n0, n1: threads.over_batch(_record(inner), 5, work=1), 4, work=1)
    assert sorted(c[:3] for c in inner) == [(0, 5, 2), (0, 5, 2)]  # each share ran the inner batch whole


def test_an_error_in_a_part_reaches_the_caller_and_blas_gets_its_threads_back(split):
    split(2)

    def fail_second(n0, n1):
        if n0:
            raise ValueError(f"part {n0}:{n1} failed")
        return 0
    with pytest.raises(ValueError, match="part 3:6 failed"):
        threads.over_batch(fail_second, 6, work=1)
    assert threads.blas_threads() == 2 and threads.share() == 1
    assert threads.over_batch(lambda n0, n1: n1 - n0, 6, work=1) == [3, 3]  # the lock was released


CASES = [  # fn, x shape, w shape, stride, padding, groups, what it exercises
    (F.conv2d, (5, 4, 11, 9), (6, 2, 3, 3), (1, 1), (1, 1), 2, "gx by correlation"),
    (F.conv2d, (4, 3, 13, 10), (4, 3, 5, 4), (3, 2), (2, 1), 1, "gx by col2im"),
    (F.conv2d, (3, 3, 23, 21), (4, 3, 11, 11), (4, 4), (2, 2), 1, "a stem: im2col by phase"),
    (F.conv2d, (4, 6, 9, 9), (5, 6, 1, 1), (1, 1), (0, 0), 1, "pointwise"),
    (F.conv2d, (3, 9, 17, 14), (10, 9, 3, 3), (1, 1), (1, 1), 1, "Winograd"),
    (F.conv_transpose2d, (5, 4, 6, 5), (4, 3, 3, 3), (2, 2), (1, 1), 2, "transposed"),
]


def _output_and_grads(fn, x, w, b, **kw):
    """[y, gx, gw, gb] (arrays) of y = fn(x, w, b, **kw) and the loss sum(y * cos(index))."""
    tx, tw, tb = (mc.tensor(a, requires_grad=True) for a in (x, w, b))
    y = fn(tx, tw, tb, **kw)
    (y * mc.tensor(np.cos(np.arange(y.numel())).reshape(y.shape))).sum().backward()
    return [y.numpy(), tx.grad.numpy(), tw.grad.numpy(), tb.grad.numpy()]


@pytest.mark.parametrize("case", CASES, ids=[c[-1] for c in CASES])
@pytest.mark.parametrize("limit, band_tile", [(2**30, 2**30), (1, 2**30), (2**30, 1)],
                         ids=["whole images", "bands of rows", "cache bands"])
def test_conv_split_over_threads_equals_one_thread(split, case, limit, band_tile):
    """Output and all three gradients (float64) equal the unsplit run's to rounding, also with
    a workspace so small that every share cuts its images into bands, and with bands for the
    cache alone (what the shares of a stem run)."""
    with tuning.override(BAND_TILE=band_tile):
        _check_split_equals_one_thread(split, case, limit)


def _check_split_equals_one_thread(split, case, limit):
    fn, x_shape, w_shape, stride, padding, groups, _ = case
    rng = np.random.default_rng(40)
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    b = rng.standard_normal(w_shape[0] if fn is F.conv2d else w_shape[1] * groups)
    kw = dict(stride=stride, padding=padding, groups=groups)
    results = []
    previous = mc.backends.set_workspace_limit(limit)
    try:
        for parts in (1, 3):
            split(parts)
            results.append(_output_and_grads(fn, x, w, b, **kw))
    finally:
        mc.backends.set_workspace_limit(previous)
    for got, want in zip(results[1], results[0]):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


def test_single_threaded_blas_cuts_big_images_into_cache_bands_except_for_col2im(split):
    # one image: 3*3*3 rows of columns, 10x8 output pixels; one output row of columns = 27*8*4 bytes
    plan = conv_tiled.ColumnPlan((4, 3, 10, 8), Window(3, 3, 1, 1, 1, 1, 1, 1), 10, 8, 1)
    split(2)
    with tuning.override(BAND_TILE=4 * 27 * 8 * 4, CACHE_TILE=2**23):
        shares = threads.over_batch(lambda n0, n1: (plan.tiles(np, n1 - n0, 4), plan.tiles(np, n1 - n0, 4, fold=True)),
                                    4, work=1)
        for read, fold in shares:
            assert read == [(n, n + 1, y0, y1) for n in range(2) for y0, y1 in [(0, 3), (3, 6), (6, 10)]]
            assert fold == [(0, 2, 0, 10)]  # col2im adds bands into the image: whole images there
        assert plan.tiles(np, 2, 4) == [(0, 2, 0, 10)]  # outside a split the threaded BLAS takes whole images
        split(1)  # a single-threaded BLAS: bands as in a share
        assert plan.tiles(np, 2, 4) == shares[0][0]
        split(2)
    with tuning.override(BAND_TILE=10 * 27 * 8 * 4, CACHE_TILE=2**23):  # an image that fits is not cut
        assert threads.over_batch(lambda n0, n1: plan.tiles(np, n1 - n0, 4), 4, work=1) == [[(0, 2, 0, 10)]] * 2


@pytest.mark.parametrize("hw, n, shares", [(18, 8, [4, 4]), (9, 8, [8]), (9, 32, [16, 16])])
def test_conv_splits_a_batch_of_big_enough_maps(split, monkeypatch, hw, n, shares):
    """Maps of 16x16 outputs split a batch of 8; 7x7 ones (49 pixels: a share needs 256) only
    a batch of 32."""
    split(2)
    seen = []
    original = conv_tiled.Conv2d._forward

    def spy(self, x, w, b, y):
        seen.append(x.shape[0])
        return original(self, x, w, b, y)
    monkeypatch.setattr(conv_tiled.Conv2d, "_forward", spy)
    with tuning.override(MIN_SHARE_PIXELS=256):
        F.conv2d(mc.randn(n, 2, hw, hw), mc.randn(3, 2, 3, 3))
    assert sorted(seen) == shares


def test_conv_splits_the_batch_it_is_given(split, monkeypatch):
    """A convolution really runs in shares (one per thread), each on its own images."""
    split(2)
    seen = []
    original = conv_tiled.Conv2d._forward

    def spy(self, x, w, b, y):
        seen.append((x.shape[0], threads.share()))
        return original(self, x, w, b, y)
    monkeypatch.setattr(conv_tiled.Conv2d, "_forward", spy)
    F.conv2d(mc.randn(5, 2, 6, 6), mc.randn(3, 2, 3, 3))
    assert sorted(seen) == [(2, 2), (3, 2)]


def _conv_in_child(queue):
    x, w = mc.ones(4, 2, 6, 6), mc.ones(3, 2, 3, 3)
    queue.put(float(F.conv2d(x, w).sum().item()))


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs fork")
def test_a_forked_child_can_split_again(split):
    """The child of a fork has none of the parent's pool threads; its convolutions must not wait
    for them."""
    import multiprocessing
    split(2)
    F.conv2d(mc.ones(4, 2, 6, 6), mc.ones(3, 2, 3, 3))  # the parent's pool exists now
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_conv_in_child, args=(queue,))
    child.start()
    child.join(timeout=60)
    alive = child.is_alive()
    if alive:
        child.kill()
    assert not alive and child.exitcode == 0
    assert queue.get(timeout=5) == 4 * 3 * 4 * 4 * 18.0


@pytest.mark.parametrize("n, bands", [(1, 5), (1, 3), (3, 1)], ids=["one image in 5 bands", "one image in 3 bands",
                                                                   "three images"])
@pytest.mark.parametrize("parts", [2, 3])
def test_winograd_chunks_split_over_threads_equal_one_thread(split, n, bands, parts):
    """A batch too small to split by images shares its Winograd chunks (bands of tile rows)
    instead: output and all gradients equal the one-thread run's (float64)."""
    rng = np.random.default_rng(41)
    x, w, b = rng.standard_normal((n, 9, 30, 29)), rng.standard_normal((10, 9, 3, 3)), rng.standard_normal(10)
    tile_row = 16 * (9 + 10) * 8 * 15  # bytes of scratch per row of 15 tiles
    results = []
    previous = mc.backends.set_workspace_limit(parts * tile_row * 15 // bands)
    try:
        for p in (1, parts):
            split(p)
            if p == parts:  # the chunks the threads share
                assert len(winograd._chunks(n, 15, 15, 16 * 19 * 8, winograd._chunk_parts())) == n * bands
            with mc.backends.conv_algorithm("winograd"):
                results.append(_output_and_grads(F.conv2d, x, w, b, padding=1))
    finally:
        mc.backends.set_workspace_limit(previous)
    for got, want in zip(results[1], results[0]):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


@pytest.mark.parametrize("chunks, parts", [(10, 2), (7, 3), (3, 2)])
def test_neighbouring_bands_never_run_at_the_same_time(split, monkeypatch, chunks, parts):
    """With two rounds, the groups of chunks that run together are never neighbours (they
    would add into the same rows of the input gradient at once); every chunk runs once."""
    split(parts)
    rounds = []
    real = threads.over_batch

    def record(fn, n, work, min_images=1):
        done = real(fn, n, work, min_images)
        rounds.append([g for part in done for g in part])
        return done
    monkeypatch.setattr(threads, "over_batch", record)
    groups = winograd._over_chunks(lambda group: list(group), list(range(chunks)), work=1, rounds=2)
    assert sorted(i for g in groups for i in g) == list(range(chunks))  # every chunk once
    if chunks < 2 * parts:  # too few to share: one call, no split
        assert rounds == [] and groups == [list(range(chunks))]
    for together in rounds:
        spans = sorted((g[0], g[-1]) for g in together if g)
        assert all(b[0] > a[1] + 1 for a, b in zip(spans, spans[1:])), spans


def test_one_blas_thread_inside_the_block_only(split):
    split(2)
    with threads.one_blas_thread():
        assert threads.blas_threads() == 1
    assert threads.blas_threads() == 2
    with pytest.raises(RuntimeError):
        with threads.one_blas_thread():
            raise RuntimeError("boom")
    assert threads.blas_threads() == 2


_SPIN = """
import os, time
import numpy as np
import minicnn
from minicnn.cpu import threads
minicnn.backends.tune_cpu_threads()
a = np.ones((512, 512), np.float32)
a @ a  # a threaded product: OpenBLAS's worker spins after it
t = time.process_time()
time.sleep(0.3)
print(os.environ["OPENBLAS_THREAD_TIMEOUT"], threads.blas_threads(), time.process_time() - t)
"""


@pytest.mark.parametrize("user_value", [None, "28"])
def test_openblas_workers_stop_spinning_soon_after_a_product(user_value):
    """Through the opt-in, OpenBLAS's default spin (2**28 cycles, ~0.1 s of a core) is cut to
    2**20 (~0.3 ms), measured as the process's CPU time while its main thread sleeps; a value
    the user set is left alone."""
    import subprocess
    import sys
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_THREAD_TIMEOUT", "OPENBLAS_NUM_THREADS")}
    env["OPENBLAS_NUM_THREADS"] = "2"
    if user_value:
        env["OPENBLAS_THREAD_TIMEOUT"] = user_value
    out = subprocess.run([sys.executable, "-c", _SPIN], env=env, capture_output=True, text=True, check=True).stdout
    timeout, blas, cpu = out.split()
    assert blas == "2"
    if user_value:
        assert timeout == user_value
    else:
        assert timeout == str(tuning.SPIN_TIMEOUT)
        assert float(cpu) < 0.03, f"the process used {cpu} s of CPU while it slept"


# -- numba's serial and parallel builds of one loop ---------------------------------------------

JIT_PROBE = r"""
import sys
import numba
import numpy as np
sys.path.insert(0, sys.argv[1])
import loops
x, y = np.ones(64), np.empty(64)
getattr(loops, sys.argv[2])(x, y)
try:
    print(numba.threading_layer())
except ValueError:
    print("serial")
"""


def test_serial_and_parallel_builds_keep_apart_in_numbas_disk_cache(tmp_path):
    """numba's cache keys an entry by function name and line only: without serial_and_parallel
    the parallel build would load the serial one's code in the next process."""
    (tmp_path / "loops.py").write_text(
        "import sys, numba\n"
        f"sys.path.insert(0, {os.path.dirname(os.path.dirname(os.path.abspath(__file__)))!r})\n"
        "from minicnn.cpu.jit import serial_and_parallel\n"
        "def double(x, y):\n"
        "    for i in numba.prange(x.size):\n"
        "        y[i] = 2 * x[i]\n"
        "serial, parallel = serial_and_parallel(double)\n")

    def run(name):
        out = subprocess.run([sys.executable, "-c", JIT_PROBE, str(tmp_path), name], capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        return out.stdout.strip()

    assert run("serial") == "serial"  # compiled and cached first
    assert run("parallel") != "serial"  # a threading layer started: the parallel code ran
    assert run("parallel") != "serial"  # and again, from the cache
    assert run("serial") == "serial"
