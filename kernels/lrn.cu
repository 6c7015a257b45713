// lrn.cu -- local response normalisation across channels (AlexNet, Caffe).
//
// x is (N, C, *) seen as (N, C, S). Channel c is normalised by the squares of
// its neighbours c' in W(c) = [c - size/2, c + (size-1)/2] (zero outside):
//   scale_c = k + alpha/size * sum_{c' in W(c)} x_{c'}^2,   y_c = x_c * scale_c^-beta
// Backward (j is in W(c) exactly when c is in [j - (size-1)/2, j + size/2]):
//   gx_j = gy_j * scale_j^-beta
//          - 2*alpha*beta/size * x_j * sum_{c : j in W(c)} gy_c * y_c / scale_c
#include "common.cuh"

template <typename T>
__device__ __forceinline__ void lrn_forward_impl(
    const T* __restrict__ x, T* __restrict__ y, T* __restrict__ scale,
    long long N, long long C, long long S, long long size, T alpha, T beta,
    T k) {
    MC_KERNEL_LOOP(e, N * C * S) {
        const long long c = (e / S) % C;
        const T* column = x + (e - c * S);  // channel 0 at this (n, s)
        const long long lo = mc_max(c - size / 2, 0LL);
        const long long hi = mc_min(c + (size - 1) / 2, C - 1);
        T sum = T(0);
        for (long long q = lo; q <= hi; ++q) sum += column[q * S] * column[q * S];
        const T s = k + alpha / T(size) * sum;
        scale[e] = s;
        y[e] = x[e] * mc_pow(s, -beta);
    }
}

template <typename T>
__device__ __forceinline__ void lrn_backward_impl(
    const T* __restrict__ gy, const T* __restrict__ x, const T* __restrict__ y,
    const T* __restrict__ scale, T* __restrict__ gx, long long N, long long C,
    long long S, long long size, T alpha, T beta) {
    MC_KERNEL_LOOP(e, N * C * S) {
        const long long j = (e / S) % C;
        const long long base = e - j * S;  // channel 0 at this (n, s)
        const long long lo = mc_max(j - (size - 1) / 2, 0LL);
        const long long hi = mc_min(j + size / 2, C - 1);
        T acc = T(0);
        for (long long c = lo; c <= hi; ++c) {
            const long long at = base + c * S;
            acc += gy[at] * y[at] / scale[at];
        }
        gx[e] = gy[e] * mc_pow(scale[e], -beta) - T(2) * alpha * beta / T(size) * x[e] * acc;
    }
}

// C entry points, one per precision (extern "C": no C++ name mangling).
extern "C" __global__ void lrn_forward_f32(const float* x, float* y, float* scale, long long N,
                                           long long C, long long S, long long size, float alpha,
                                           float beta, float k) {
    lrn_forward_impl<float>(x, y, scale, N, C, S, size, alpha, beta, k);
}
extern "C" __global__ void lrn_forward_f64(const double* x, double* y, double* scale, long long N,
                                           long long C, long long S, long long size, double alpha,
                                           double beta, double k) {
    lrn_forward_impl<double>(x, y, scale, N, C, S, size, alpha, beta, k);
}
extern "C" __global__ void lrn_backward_f32(const float* gy, const float* x, const float* y,
                                            const float* scale, float* gx, long long N, long long C,
                                            long long S, long long size, float alpha, float beta) {
    lrn_backward_impl<float>(gy, x, y, scale, gx, N, C, S, size, alpha, beta);
}
extern "C" __global__ void lrn_backward_f64(const double* gy, const double* x, const double* y,
                                            const double* scale, double* gx, long long N, long long C,
                                            long long S, long long size, double alpha, double beta) {
    lrn_backward_impl<double>(gy, x, y, scale, gx, N, C, S, size, alpha, beta);
}
