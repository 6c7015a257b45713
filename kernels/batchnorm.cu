// batchnorm.cu -- batch normalisation: the fused per-element passes.
//
// x is (N, C, *) seen as (N, C, S) with S the product of the trailing sizes;
// channel c has M = N*S values. The op computes mean and invstd = 1/sqrt(var + eps)
// per channel; these kernels apply them and back-propagate through them:
//   xhat = (x - mean) * invstd,  y = xhat * weight + bias
//   gbias = sum gy,  gweight = sum gy * xhat          (sums over N and S)
//   training: gx = weight * invstd * (gy - gbias/M - xhat * gweight/M)
//   eval:     gx = weight * invstd * gy              (mean, invstd are constants)
#include "common.cuh"

template <typename T>
__device__ __forceinline__ void batch_norm_forward_impl(
    const T* __restrict__ x, const T* __restrict__ mean,
    const T* __restrict__ invstd, const T* __restrict__ weight,
    const T* __restrict__ bias, T* __restrict__ y, long long N, long long C,
    long long S) {
    MC_KERNEL_LOOP(e, N * C * S) {
        const long long c = (e / S) % C;
        y[e] = (x[e] - mean[c]) * invstd[c] * weight[c] + bias[c];
    }
}

// Partial sums for the two per-channel reductions, in one pass over gy and x.
// Thread (c, p) adds the values m = p, p + P, p + 2P, ... of channel c, so
// neighbouring threads read neighbouring addresses; the caller adds the P
// partials of each channel. Fixed order, no atomics: deterministic.
template <typename T>
__device__ __forceinline__ void batch_norm_reduce_impl(
    const T* __restrict__ gy, const T* __restrict__ x,
    const T* __restrict__ mean, const T* __restrict__ invstd,
    T* __restrict__ part_gy, T* __restrict__ part_gy_xhat, long long N,
    long long C, long long S, long long P) {
    MC_KERNEL_LOOP(t, C * P) {
        const long long c = t / P, p = t % P;
        T sum_gy = T(0), sum_gy_xc = T(0);  // xc = x - mean
        for (long long m = p; m < N * S; m += P) {
            const long long at = ((m / S) * C + c) * S + m % S;
            sum_gy += gy[at];
            sum_gy_xc += gy[at] * (x[at] - mean[c]);
        }
        part_gy[t] = sum_gy;
        part_gy_xhat[t] = sum_gy_xc * invstd[c];
    }
}

// Partial sums for the batch statistics, the same layout as batch_norm_reduce:
// part[c, p] = sum over m = p, p + P, ... of (x - shift[c]) ** power, power 1 or 2.
// With shift = 0, power = 1 they add up to the sum (-> mean); with shift = mean,
// power = 2 to the squared deviations (-> variance): two passes, which stay accurate
// in float32 where sum(x^2)/M - mean^2 would cancel when |mean| >> std.
template <typename T>
__device__ __forceinline__ void batch_norm_moment_impl(
    const T* __restrict__ x, const T* __restrict__ shift, T* __restrict__ part,
    long long N, long long C, long long S, long long P, long long power) {
    MC_KERNEL_LOOP(t, C * P) {
        const long long c = t / P, p = t % P;
        T sum = T(0);
        for (long long m = p; m < N * S; m += P) {
            const T d = x[((m / S) * C + c) * S + m % S] - shift[c];
            sum += power == 2 ? d * d : d;
        }
        part[t] = sum;
    }
}

// sum_gy and sum_gy_xhat are the finished per-channel sums (C,), only read
// when training.
template <typename T>
__device__ __forceinline__ void batch_norm_backward_impl(
    const T* __restrict__ gy, const T* __restrict__ x,
    const T* __restrict__ mean, const T* __restrict__ invstd,
    const T* __restrict__ weight, const T* __restrict__ sum_gy,
    const T* __restrict__ sum_gy_xhat, T* __restrict__ gx, long long N,
    long long C, long long S, long long training) {
    const T M = T(N * S);
    MC_KERNEL_LOOP(e, N * C * S) {
        const long long c = (e / S) % C;
        const T scale = weight[c] * invstd[c];
        if (training) {
            const T xhat = (x[e] - mean[c]) * invstd[c];
            gx[e] = scale * (gy[e] - sum_gy[c] / M - xhat * (sum_gy_xhat[c] / M));
        } else {
            gx[e] = scale * gy[e];
        }
    }
}

// C entry points, one per precision (extern "C": no C++ name mangling).
#define BN_FORWARD(SUFFIX, T)                                                                  \
    extern "C" __global__ void batch_norm_forward_##SUFFIX(                                    \
        const T* x, const T* mean, const T* invstd, const T* weight, const T* bias, T* y,      \
        long long N, long long C, long long S) {                                               \
        batch_norm_forward_impl<T>(x, mean, invstd, weight, bias, y, N, C, S);                 \
    }
#define BN_REDUCE(SUFFIX, T)                                                                   \
    extern "C" __global__ void batch_norm_reduce_##SUFFIX(                                     \
        const T* gy, const T* x, const T* mean, const T* invstd, T* part_gy, T* part_gy_xhat,  \
        long long N, long long C, long long S, long long P) {                                  \
        batch_norm_reduce_impl<T>(gy, x, mean, invstd, part_gy, part_gy_xhat, N, C, S, P);     \
    }
#define BN_MOMENT(SUFFIX, T)                                                                   \
    extern "C" __global__ void batch_norm_moment_##SUFFIX(                                     \
        const T* x, const T* shift, T* part, long long N, long long C, long long S,            \
        long long P, long long power) {                                                        \
        batch_norm_moment_impl<T>(x, shift, part, N, C, S, P, power);                          \
    }
#define BN_BACKWARD(SUFFIX, T)                                                                 \
    extern "C" __global__ void batch_norm_backward_##SUFFIX(                                   \
        const T* gy, const T* x, const T* mean, const T* invstd, const T* weight,              \
        const T* sum_gy, const T* sum_gy_xhat, T* gx, long long N, long long C, long long S,   \
        long long training) {                                                                  \
        batch_norm_backward_impl<T>(gy, x, mean, invstd, weight, sum_gy, sum_gy_xhat, gx, N,   \
                                    C, S, training);                                           \
    }

BN_FORWARD(f32, float)
BN_FORWARD(f64, double)
BN_REDUCE(f32, float)
BN_REDUCE(f64, double)
BN_MOMENT(f32, float)
BN_MOMENT(f64, double)
BN_BACKWARD(f32, float)
BN_BACKWARD(f64, double)
