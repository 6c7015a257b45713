// host_shim.h -- lets the CUDA kernels in this folder compile as plain C++.
//
// Included (through common.cuh) only when __CUDACC__ is not defined, i.e. when
// g++ compiles a .cu file for the CPU. The CUDA keywords become ordinary C++,
// and the built-in thread coordinates become globals that a host runner sets
// before each call (minicnn/cuda/host.py): it calls a kernel once per
// (block, thread) of a small grid, one after the other. Our kernels are
// grid-stride loops in which every thread writes only its own outputs, so
// running the threads one at a time gives exactly the GPU's result (up to the
// GPU's fused multiply-adds).
//
// Compile ONE .cu file per shared library: the globals below are defined here.
#ifndef MINICNN_HOST_SHIM_H
#define MINICNN_HOST_SHIM_H

#include <cmath>  // INFINITY, powf, pow

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline

struct mc_uint3 {
    unsigned int x, y, z;
};

static mc_uint3 threadIdx = {0, 0, 0};
static mc_uint3 blockIdx = {0, 0, 0};
static mc_uint3 blockDim = {1, 1, 1};
static mc_uint3 gridDim = {1, 1, 1};

// Make the next kernel call behave as thread `thread` of block `block` in a
// one-dimensional launch of `grid` blocks of `threads` threads.
extern "C" void mc_host_set_thread(unsigned int grid, unsigned int threads,
                                   unsigned int block, unsigned int thread) {
    gridDim = {grid, 1, 1};
    blockDim = {threads, 1, 1};
    blockIdx = {block, 0, 0};
    threadIdx = {thread, 0, 0};
}

#endif  // MINICNN_HOST_SHIM_H
