"""Every kernels/*.cu compiles for the GPU: with nvcc for sm_70/sm_75/sm_80/sm_90
(where the installed nvcc still targets them), and with NVRTC -- the compiler
CuPy's RawModule uses, which has no system headers -- when a libnvrtc is found.
No GPU is needed for either.
"""
import ctypes
import ctypes.util
import functools
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile

import pytest

from minicnn.cuda import source

ARCHS = ["sm_70", "sm_75", "sm_80", "sm_90"]
NVCC = shutil.which("nvcc")
needs_nvcc = pytest.mark.skipif(NVCC is None, reason="nvcc is not on PATH")


@functools.lru_cache(maxsize=None)
def nvcc_targets():
    out = subprocess.run([NVCC, "--list-gpu-code"], capture_output=True, text=True)
    return set(out.stdout.split()) if out.returncode == 0 else set(ARCHS)


@pytest.fixture(scope="module")
def nvcc_builds(tmp_path_factory):
    """One nvcc call per architecture, all files in it, the calls running in parallel:
    arch -> (output folder, return code, log)."""
    files = [str(source.cu_path(f)) for f in source.FAMILIES]
    procs = {}
    for arch in ARCHS:
        if arch in nvcc_targets():
            out = tmp_path_factory.mktemp(arch)
            procs[arch] = (out, subprocess.Popen(
                [NVCC, "-cubin", f"-arch={arch}", "-Werror", "all-warnings", "--output-directory", str(out), *files],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    results = {}
    for arch, (out, p) in procs.items():
        log = p.communicate()[0]
        results[arch] = (out, p.returncode, log)
    return results


@needs_nvcc
@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("family", source.FAMILIES)
def test_nvcc_compiles(nvcc_builds, family, arch):
    if arch not in nvcc_targets():
        version = re.search(r"release (\S+),", subprocess.run([NVCC, "--version"], capture_output=True,
                                                               text=True).stdout)
        pytest.skip(f"nvcc {version.group(1) if version else ''} cannot target {arch} "
                    f"(CUDA 13 dropped sm_70); it targets {' '.join(sorted(nvcc_targets()))}")
    out, rc, log = nvcc_builds[arch]
    cubin = out / f"{family}.cubin"
    assert rc == 0 and cubin.is_file() and cubin.stat().st_size > 0, f"nvcc -arch={arch} failed:\n{log}"
    # every precision of every entry point is in the binary, under its C name
    text = cubin.read_bytes()
    for name in re.findall(r'extern "C" __global__ void (\w+)\(', source.read_source(family)):
        assert name.encode() in text, f"{name} missing from {cubin.name}"


def _find_nvrtc():
    """libnvrtc from $MINICNN_NVRTC, the loader path, or an nvidia-*-nvrtc wheel (as CuPy uses)."""
    candidates = [os.environ.get("MINICNN_NVRTC"), ctypes.util.find_library("nvrtc")]
    for root in sys.path:
        candidates += sorted(glob.glob(os.path.join(root, "nvidia", "*", "lib", "libnvrtc.so*")))
    for path in filter(None, candidates):
        if "builtins" in path or "alt" in os.path.basename(path):
            continue
        try:
            # libnvrtc opens its builtins library by name: load it first from the same folder
            for builtins in glob.glob(os.path.join(os.path.dirname(path), "libnvrtc-builtins.so*")):
                if ".alt." not in builtins:
                    ctypes.CDLL(builtins, mode=ctypes.RTLD_GLOBAL)
            return ctypes.CDLL(path)
        except OSError:
            continue
    return None


@pytest.mark.parametrize("family", source.FAMILIES)
def test_nvrtc_compiles_the_source_cupy_gets(family):
    lib = _find_nvrtc()
    if lib is None:
        pytest.skip("no libnvrtc found (set MINICNN_NVRTC=/path/to/libnvrtc.so)")
    code = source.read_source(family)
    assert "#include \"" not in code.replace('#include "host_shim.h"', "")  # self-contained
    prog = ctypes.c_void_p()
    assert lib.nvrtcCreateProgram(ctypes.byref(prog), code.encode(), f"{family}.cu".encode(), 0, None, None) == 0
    options = [b"--gpu-architecture=compute_75", b"--std=c++11"]
    rc = lib.nvrtcCompileProgram(prog, len(options), (ctypes.c_char_p * len(options))(*options))
    size = ctypes.c_size_t()
    lib.nvrtcGetProgramLogSize(prog, ctypes.byref(size))
    log = ctypes.create_string_buffer(size.value)
    lib.nvrtcGetProgramLog(prog, log)
    lib.nvrtcDestroyProgram(ctypes.byref(prog))
    assert rc == 0, f"NVRTC failed on {family}.cu:\n{log.value.decode()}"


def test_host_compiler_builds_every_file_without_warnings():
    """The g++ side of the same source (kernels/host_shim.h), with warnings on."""
    from minicnn.cuda import host

    cxx = host.compiler()
    if cxx is None:
        pytest.skip("no C++ compiler (g++ or $CXX)")
    with tempfile.TemporaryDirectory() as tmp:
        procs = [subprocess.Popen([cxx, "-std=c++17", "-fsyntax-only", "-Wall", "-Wextra", "-x", "c++",
                                   str(source.cu_path(f))], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  text=True, cwd=tmp) for f in source.FAMILIES]
        logs = [(p.communicate()[0], p.returncode) for p in procs]
    for family, (log, rc) in zip(source.FAMILIES, logs):
        assert rc == 0 and not log.strip(), f"{family}.cu on the host:\n{log}"
