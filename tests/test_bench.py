"""Smoke tests of the benchmark command (minicnn/apps/bench.py): it runs, prints its tables with real
numbers and states the settings it ran under. Timings themselves are not asserted."""
import json
import platform
import re
import subprocess
import sys

import pytest

from minicnn.apps import bench


def test_quick_layers_table(capsys, tmp_path):
    out_file = tmp_path / "layers.json"
    # --malloc system: the allocator setting would outlast the call, in the test process
    assert bench.main(["--quick", "--layers", "--no-torch", "--repeat", "1", "--malloc", "system",
                       "--json", str(out_file)]) == 0
    out = capsys.readouterr().out
    for needle in ("load average", "numba:", "OPENBLAS_CORETYPE=", "MALLOC_MMAP_THRESHOLD_=",
                   "MALLOC_TRIM_THRESHOLD_=", "GEMM peak", "f+b ms", "convolutions: ",
                   "allocator: glibc's defaults (--malloc system)"):
        assert needle in out
    assert "torch fwd" not in out  # --no-torch: no torch columns
    peak = float(re.search(r"float32, best of the runs before and after: ([\d.]+) GFLOP/s", out).group(1))
    import_s = float(re.search(r"import minicnn: ([\d.]+) s", out).group(1))
    assert 0 < import_s < 30
    assert peak == pytest.approx(json.loads(out_file.read_text())["gemm_peak_gflops"], abs=0.06)
    result = json.loads(out_file.read_text())
    names = [row["layer"] for row in result["layers"]]
    assert names == [name for name, *_ in bench.LAYERS]
    for row in result["layers"]:
        assert row["fwd_ms"] > 0 and row["fb_ms"] > 0
        if row["layer"].startswith("conv"):
            assert row["fb_gflops"] > 0
            assert row["fb_peak_fraction"] == pytest.approx(row["fb_gflops"] / result["gemm_peak_gflops"])
    assert "Models" not in out  # --layers alone


def test_quick_model_in_subprocess(capsys):
    assert bench.main(["--quick", "--models", "unet_same", "--no-torch", "--repeat", "1"]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("unet_same"))
    assert "error" not in row, row
    seconds, images, peak, work = (float(v) for v in row.split()[-4:])
    assert seconds > 0 and images == pytest.approx(1 / seconds, rel=0.02)
    assert peak >= work > 0  # MiB, measured in the child process


_FREE_AND_MEASURE = """
import sys, numpy as np
from minicnn.apps import bench
if sys.argv[1] == "keep":
    print(bench.keep_freed_memory())
a = np.ones(2**24)  # 128 MiB, touched
del a
with open("/proc/self/statm") as f:
    print(int(f.read().split()[1]) * 4096 // 2**20)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
                    reason="mallopt and /proc: Linux with glibc")
def test_keep_freed_memory_keeps_a_freed_block_resident():
    """With glibc's defaults a freed 128 MiB block goes back to the OS; kept, it stays resident
    (so that allocating it again costs no page faults)."""
    rss = {}
    for mode in ("keep", "system"):
        proc = subprocess.run([sys.executable, "-c", _FREE_AND_MEASURE, mode], capture_output=True, text=True,
                              check=True)
        lines = proc.stdout.split("\n")
        if mode == "keep":
            assert lines[0].startswith("glibc keeps freed memory")
        rss[mode] = int(lines[-2])
    assert rss["keep"] - rss["system"] >= 100, rss


def test_threads_and_cpu_clock_rerun_in_a_fresh_interpreter(capfd):
    assert bench.main(["--quick", "--layers", "--no-torch", "--repeat", "1", "--threads", "1", "--clock", "cpu"]) == 0
    out = capfd.readouterr().out
    assert "OMP_NUM_THREADS=1, OPENBLAS_NUM_THREADS=1, MKL_NUM_THREADS=1, NUMBA_NUM_THREADS=1" in out
    assert "numba: 1 threads" in out and "CPU time of the process" in out
    assert "no batch split" in out  # one BLAS thread: each convolution runs whole


def test_merge_runs_keeps_every_time_and_the_least_disturbed_peak():
    runs = [{"times": [2.0], "rss_import": 10, "rss_peak": 50}, {"error": "killed"},
            {"times": [1.5, 1.7], "rss_import": 12, "rss_peak": 40}]
    merged = bench._merge_runs(runs)
    assert merged["times"] == [2.0, 1.5, 1.7] and merged["rss_peak"] - merged["rss_import"] == 28
    assert merged["runs"] == 2
    assert bench._merge_runs([{"error": "boom"}]) == {"error": "boom"}


def test_conv_flop_count():
    # 2 * N * O * C * k^2 * oh * ow; backward adds the weight gradient and (if wanted) the input gradient
    fwd, fb = bench._conv_flops((2, 3, 10, 10), dict(out=4, k=3, stride=1, pad=1, input_grad=True))
    assert fwd == 2 * 2 * 4 * 3 * 9 * 10 * 10 and fb == 3 * fwd
    fwd, fb = bench._conv_flops((1, 3, 224, 224), dict(out=64, k=7, stride=2, pad=3, input_grad=False))
    assert fwd == 2 * 64 * 3 * 49 * 112 * 112 and fb == 2 * fwd


def test_bad_arguments(capsys):
    with pytest.raises(SystemExit, match="--repeat must be at least 1"):
        bench.main(["--repeat", "0"])
    with pytest.raises(SystemExit, match="--rounds must be at least 1"):
        bench.main(["--models", "--rounds", "0"])
    with pytest.raises(SystemExit, match="unknown model"):
        bench.main(["--models", "lenet"])
    with pytest.raises(SystemExit) as e:
        bench.main(["--help"])
    assert e.value.code == 0 and "--quick" in capsys.readouterr().out


def test_torch_flag_without_torch(monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "torch", None)  # as if PyTorch were not installed
    with pytest.raises(SystemExit, match="PyTorch is not importable"):
        bench.main(["--torch", "--layers", "--quick"])
