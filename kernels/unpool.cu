// unpool.cu -- max unpooling: put each value back where max pooling found it.
//
// idx holds, for every pooled value, the flat index oy*ow + ox of its pixel in
// the (n, c) plane of the unpooled output (as max_pool2d's indices).
#include "common.cuh"

// y must be zero-filled by the caller; each input element writes one pixel.
// Out-of-range indices are rejected on the host before the launch; the
// bounds test here only keeps a bad index from writing outside y. If two
// inputs carry the same index, which of them lands is unspecified (as in
// PyTorch).
template <typename T>
__device__ __forceinline__ void max_unpool2d_forward_impl(
    const T* __restrict__ x, const long long* __restrict__ idx,
    T* __restrict__ y, long long NC, long long HW, long long OHW) {
    MC_KERNEL_LOOP(e, NC * HW) {
        const long long k = idx[e];
        if (0 <= k && k < OHW) y[(e / HW) * OHW + k] = x[e];
    }
}

// The adjoint is a gather: gx[e] = gy at the pixel x[e] was sent to.
template <typename T>
__device__ __forceinline__ void max_unpool2d_backward_impl(
    const T* __restrict__ gy, const long long* __restrict__ idx,
    T* __restrict__ gx, long long NC, long long HW, long long OHW) {
    MC_KERNEL_LOOP(e, NC * HW) {
        const long long k = idx[e];
        gx[e] = (0 <= k && k < OHW) ? gy[(e / HW) * OHW + k] : T(0);
    }
}

// C entry points, one per precision (extern "C": no C++ name mangling).
extern "C" __global__ void max_unpool2d_forward_f32(const float* x, const long long* idx, float* y,
                                                    long long NC, long long HW, long long OHW) {
    max_unpool2d_forward_impl<float>(x, idx, y, NC, HW, OHW);
}
extern "C" __global__ void max_unpool2d_forward_f64(const double* x, const long long* idx, double* y,
                                                    long long NC, long long HW, long long OHW) {
    max_unpool2d_forward_impl<double>(x, idx, y, NC, HW, OHW);
}
extern "C" __global__ void max_unpool2d_backward_f32(const float* gy, const long long* idx, float* gx,
                                                     long long NC, long long HW, long long OHW) {
    max_unpool2d_backward_impl<float>(gy, idx, gx, NC, HW, OHW);
}
extern "C" __global__ void max_unpool2d_backward_f64(const double* gy, const long long* idx, double* gx,
                                                     long long NC, long long HW, long long OHW) {
    max_unpool2d_backward_impl<double>(gy, idx, gx, NC, HW, OHW);
}
