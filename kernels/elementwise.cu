// elementwise.cu -- small fused element-wise kernels: one pass over memory
// instead of two (add the bias, then clamp; or compare, then multiply).
#include "common.cuh"

// y = max(x + b[c], 0) for x (N, C, S); NaN stays NaN (as np.maximum).
template <typename T>
__device__ __forceinline__ void bias_relu_impl(const T* __restrict__ x,
                                               const T* __restrict__ b,
                                               T* __restrict__ y, long long N,
                                               long long C, long long S) {
    MC_KERNEL_LOOP(e, N * C * S) {
        const T v = x[e] + b[(e / S) % C];
        y[e] = v < T(0) ? T(0) : v;
    }
}

// gx = gy where the ReLU's output y was positive, else 0.
template <typename T>
__device__ __forceinline__ void relu_backward_impl(const T* __restrict__ gy,
                                                   const T* __restrict__ y,
                                                   T* __restrict__ gx,
                                                   long long n) {
    MC_KERNEL_LOOP(e, n) { gx[e] = y[e] > T(0) ? gy[e] : T(0); }
}

// C entry points, one per precision (extern "C": no C++ name mangling).
extern "C" __global__ void bias_relu_f32(const float* x, const float* b, float* y, long long N,
                                         long long C, long long S) {
    bias_relu_impl<float>(x, b, y, N, C, S);
}
extern "C" __global__ void bias_relu_f64(const double* x, const double* b, double* y, long long N,
                                         long long C, long long S) {
    bias_relu_impl<double>(x, b, y, N, C, S);
}
extern "C" __global__ void relu_backward_f32(const float* gy, const float* y, float* gx, long long n) {
    relu_backward_impl<float>(gy, y, gx, n);
}
extern "C" __global__ void relu_backward_f64(const double* gy, const double* y, double* gx, long long n) {
    relu_backward_impl<double>(gy, y, gx, n);
}
