"""Importing minicnn changes nothing global; its thread settings are an explicit opt-in."""
import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("threadpoolctl")

# the environment, every thread pool threadpoolctl sees (BLAS and OpenMP) and glibc's
# allocator settings, before and after the imports and a convolution's forward and backward
PROBE = r"""
import json, os, sys
import numpy as np
from threadpoolctl import threadpool_info

def state():
    pools = sorted((p["internal_api"], p["filepath"], p["num_threads"]) for p in threadpool_info())
    return {"env": dict(os.environ), "pools": pools}

np.ones((64, 64)) @ np.ones((64, 64))  # NumPy's BLAS has started its threads
before = state()
import minicnn, minicnn.nn, minicnn.models, minicnn.optim
after_import = state()
x = minicnn.randn(8, 16, 32, 32, requires_grad=True)
w = minicnn.randn(16, 16, 3, 3, requires_grad=True)
minicnn.nn.functional.conv2d(x, w, padding=1).sum().backward()
after_call = state()
made = minicnn.backends.tune_cpu_threads() if "tune" in sys.argv else {}
print(json.dumps({"before": before, "after_import": after_import, "after_call": after_call,
                  "made": made, "env_after_tune": dict(os.environ)}))
"""


def _probe(*args, **user_env):
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OPENBLAS_THREAD_TIMEOUT")}
    out = subprocess.run([sys.executable, "-c", PROBE, *args], env=env | user_env, capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout)


def test_import_and_a_convolution_leave_the_environment_and_thread_pools_unchanged():
    seen = _probe()
    assert seen["after_import"]["env"] == seen["before"]["env"]
    assert seen["after_call"]["env"] == seen["before"]["env"]
    # numba may load another library's pools (SciPy's OpenBLAS) as it compiles; those that were
    # there keep their thread counts (a batch split lowers BLAS's while it runs, and puts them back)
    for after in ("after_import", "after_call"):
        assert [p for p in seen[after]["pools"] if p in seen["before"]["pools"]] == seen["before"]["pools"]


def test_tune_cpu_threads_is_an_opt_in_that_keeps_the_users_choice():
    seen = _probe("tune")
    assert seen["made"]["OMP_WAIT_POLICY"] == "PASSIVE"
    assert seen["env_after_tune"]["OMP_WAIT_POLICY"] == "PASSIVE"
    chosen = _probe("tune", OMP_WAIT_POLICY="ACTIVE", OPENBLAS_THREAD_TIMEOUT="4")
    assert chosen["made"] == {}
    assert chosen["env_after_tune"]["OMP_WAIT_POLICY"] == "ACTIVE"
    assert chosen["env_after_tune"]["OPENBLAS_THREAD_TIMEOUT"] == "4"


def test_importing_from_the_folder_above_the_checkout_gets_the_package(tmp_path):
    """``~`` holding the checkout ``~/minicnn``: Python finds the checkout folder first."""
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    os.symlink(repo, tmp_path / "minicnn")
    code = "import minicnn, minicnn.nn; print(minicnn.tensor([1.0]).sum().item(), minicnn.nn.Conv2d.__module__)"
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["1.0", "minicnn.nn.conv"]
