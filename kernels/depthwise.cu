// depthwise.cu -- depthwise convolution (groups = input channels), computed directly.
//
// Output channel o = c*k + m (k = O/C, the multiplier) sees input channel c only:
//   y[n, o, y_, x_] = sum_{i,j} w[o, i, j] * x[n, o/k, y_*sh - ph + i*dh, x_*sw - pw + j*dw]
// (0 outside the image). Each output is a sum of kh*kw products, so the
// kernels gather: the forward pass and the input gradient give one thread per
// element they write, and the weight gradient sums in P interleaved partial
// sums per tap that the caller adds up. No atomics: every run adds in the same
// order (deterministic).
#include "common.cuh"

// One thread per element of y (N, O, oh, ow); each sum starts from the bias b[o].
template <typename T>
__device__ __forceinline__ void depthwise_forward_impl(
    const T* __restrict__ x, const T* __restrict__ w, const T* __restrict__ b, T* __restrict__ y, long long N, long long C,
    long long H, long long W, long long O, long long kh, long long kw, long long sh, long long sw,
    long long ph, long long pw, long long dh, long long dw, long long oh, long long ow) {
    const long long k = O / C;
    MC_KERNEL_LOOP(e, N * O * oh * ow) {
        const long long ox = e % ow, oy = (e / ow) % oh, o = (e / (ow * oh)) % O, n = e / (ow * oh * O);
        const T* plane = x + (n * C + o / k) * H * W;
        T sum = b[o];
        for (long long i = 0; i < kh; ++i) {
            const long long h = oy * sh - ph + i * dh;
            if (h < 0 || h >= H) continue;
            for (long long j = 0; j < kw; ++j) {
                const long long v = ox * sw - pw + j * dw;
                if (v < 0 || v >= W) continue;
                sum += w[(o * kh + i) * kw + j] * plane[h * W + v];
            }
        }
        y[e] = sum;
    }
}

// One thread per element of gx (N, C, H, W), gathering every output that read it:
// tap i of output row y_ reads row h when y_ = (h + ph - i*dh) / sh is an integer in [0, oh).
template <typename T>
__device__ __forceinline__ void depthwise_input_grad_impl(
    const T* __restrict__ gy, const T* __restrict__ w, T* __restrict__ gx, long long N, long long C,
    long long H, long long W, long long O, long long kh, long long kw, long long sh, long long sw,
    long long ph, long long pw, long long dh, long long dw, long long oh, long long ow) {
    const long long k = O / C;
    MC_KERNEL_LOOP(e, N * C * H * W) {
        const long long v = e % W, h = (e / W) % H, c = (e / (W * H)) % C, n = e / (W * H * C);
        T sum = T(0);
        for (long long m = 0; m < k; ++m) {
            const long long o = c * k + m;
            const T* plane = gy + (n * O + o) * oh * ow;
            for (long long i = 0; i < kh; ++i) {
                const long long ty = h + ph - i * dh;
                if (ty < 0 || ty % sh != 0 || ty / sh >= oh) continue;
                for (long long j = 0; j < kw; ++j) {
                    const long long tx = v + pw - j * dw;
                    if (tx < 0 || tx % sw != 0 || tx / sw >= ow) continue;
                    sum += w[(o * kh + i) * kw + j] * plane[(ty / sh) * ow + tx / sw];
                }
            }
        }
        gx[e] = sum;
    }
}

// One thread per (tap (o, i, j), part p < P): partial[tap * P + p] sums
// gy[n, o, y_, x_] * x[n, o/k, ...] over the flat (n, y_, x_) indices q = p, p + P,
// p + 2P, ... (neighbouring threads read neighbouring outputs); gw = partial.sum(-1).
template <typename T>
__device__ __forceinline__ void depthwise_weight_grad_impl(
    const T* __restrict__ x, const T* __restrict__ gy, T* __restrict__ partial, long long N,
    long long C, long long H, long long W, long long O, long long kh, long long kw, long long sh,
    long long sw, long long ph, long long pw, long long dh, long long dw, long long oh, long long ow,
    long long P) {
    const long long k = O / C, L = oh * ow;
    MC_KERNEL_LOOP(e, O * kh * kw * P) {
        const long long p = e % P, j = (e / P) % kw, i = (e / (P * kw)) % kh, o = e / (P * kw * kh);
        T sum = T(0);
        for (long long q = p; q < N * L; q += P) {
            const long long n = q / L, oy = (q % L) / ow, ox = q % ow;
            const long long h = oy * sh - ph + i * dh, v = ox * sw - pw + j * dw;
            if (h < 0 || h >= H || v < 0 || v >= W) continue;
            sum += gy[(n * O + o) * L + oy * ow + ox] * x[((n * C + o / k) * H + h) * W + v];
        }
        partial[e] = sum;
    }
}

#define DW_ARGS(T)                                                                           \
    const T *a, const T *b, T *out, long long N, long long C, long long H, long long W,      \
        long long O, long long kh, long long kw, long long sh, long long sw, long long ph,   \
        long long pw, long long dh, long long dw, long long oh, long long ow
#define DW_PASS N, C, H, W, O, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow

// C entry points, one per precision (extern "C": no C++ name mangling).
#define DW_KERNELS(T, SUFFIX)                                                                     \
    extern "C" __global__ void depthwise_forward_##SUFFIX(const T *bias, DW_ARGS(T)) {            \
        depthwise_forward_impl<T>(a, b, bias, out, DW_PASS);                                      \
    }                                                                                             \
    extern "C" __global__ void depthwise_input_grad_##SUFFIX(DW_ARGS(T)) {                        \
        depthwise_input_grad_impl<T>(a, b, out, DW_PASS);                                         \
    }                                                                                             \
    extern "C" __global__ void depthwise_weight_grad_##SUFFIX(DW_ARGS(T), long long P) {          \
        depthwise_weight_grad_impl<T>(a, b, out, DW_PASS, P);                                     \
    }
DW_KERNELS(float, f32)
DW_KERNELS(double, f64)
