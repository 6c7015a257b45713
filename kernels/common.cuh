// common.cuh -- helpers shared by every kernel file.
//
// The same source compiles three ways: by NVRTC (what CuPy's RawModule uses;
// no standard headers there), by nvcc, and by g++ through host_shim.h.
#ifndef MINICNN_COMMON_CUH
#define MINICNN_COMMON_CUH

#ifndef __CUDACC__
#include "host_shim.h"
#endif

#ifndef INFINITY  // NVRTC has no <math.h>; this is the IEEE bit pattern of +inf
#define INFINITY __int_as_float(0x7f800000)
#endif

// Grid-stride loop: thread t handles items t, t + T, t + 2T, ... where T is the
// number of threads in the whole grid, so any grid size covers any n. The
// index is 64-bit because tensors (an im2col buffer above all) can pass 2^31
// elements.
#define MC_KERNEL_LOOP(i, n)                                           \
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; \
         i < (n); i += (long long)blockDim.x * gridDim.x)

template <typename T>
__device__ __forceinline__ T mc_min(T a, T b) { return a < b ? a : b; }

template <typename T>
__device__ __forceinline__ T mc_max(T a, T b) { return a > b ? a : b; }

// pow for either precision (powf keeps float math in float).
__device__ __forceinline__ float mc_pow(float a, float b) { return powf(a, b); }
__device__ __forceinline__ double mc_pow(double a, double b) { return pow(a, b); }

#endif  // MINICNN_COMMON_CUH
