// pooling.cu -- max and average pooling, forward and backward, NCHW.
//
// Output sizes (floor or ceil mode) are chosen by the caller; a window of
// output (y, x) starts at (y*sh - ph, x*sw - pw). Backward kernels gather:
// one thread per input pixel sums over the windows that cover it, so there
// are no atomics and the result is the same on every run.
#include "common.cuh"

// Max pooling: the padding is -inf, so it never wins. idx is the flat index
// h*W + w within the (n, c) plane of the first maximum in row-major window
// order; a NaN wins over any number (as PyTorch: `v > best || v != v`).
template <typename T>
__device__ __forceinline__ void max_pool2d_forward_impl(
    const T* __restrict__ x, T* __restrict__ y, long long* __restrict__ idx,
    long long NC, long long H, long long W, long long kh, long long kw,
    long long sh, long long sw, long long ph, long long pw, long long dh,
    long long dw, long long oh, long long ow) {
    MC_KERNEL_LOOP(e, NC * oh * ow) {
        const long long ox = e % ow, oy = (e / ow) % oh, nc = e / (oh * ow);
        const T* plane = x + nc * H * W;
        // first tap inside the image (taps before it are padding)
        long long h0 = oy * sh - ph, w0 = ox * sw - pw;
        const long long h1 = mc_min(h0 + (kh - 1) * dh + 1, H);
        const long long w1 = mc_min(w0 + (kw - 1) * dw + 1, W);
        while (h0 < 0) h0 += dh;
        while (w0 < 0) w0 += dw;
        T best = -INFINITY;
        long long best_at = h0 * W + w0;
        for (long long h = h0; h < h1; h += dh) {
            for (long long w = w0; w < w1; w += dw) {
                const T v = plane[h * W + w];
                if (v > best || v != v) {  // v != v: v is NaN
                    best = v;
                    best_at = h * W + w;
                }
            }
        }
        y[e] = best;
        idx[e] = best_at;
    }
}

// Max pooling backward: gx[h, w] = sum of gy[oy, ox] over the windows that
// cover (h, w) AND chose it (idx == h*W + w). Tap i of window row oy sits on
// h when oy = (h + ph - i*dh) / sh exactly. Taps are visited from the last to
// the first so windows come in row-major order, the order in which a scatter
// over gy would add them.
template <typename T>
__device__ __forceinline__ void max_pool2d_backward_impl(
    const T* __restrict__ gy, const long long* __restrict__ idx,
    T* __restrict__ gx, long long NC, long long H, long long W, long long kh,
    long long kw, long long sh, long long sw, long long ph, long long pw,
    long long dh, long long dw, long long oh, long long ow) {
    MC_KERNEL_LOOP(e, NC * H * W) {
        const long long w = e % W, h = (e / W) % H, nc = e / (H * W);
        const long long me = h * W + w;
        const T* gplane = gy + nc * oh * ow;
        const long long* iplane = idx + nc * oh * ow;
        T sum = T(0);
        for (long long i = kh - 1; i >= 0; --i) {
            const long long ty = h + ph - i * dh;
            if (ty < 0 || ty % sh != 0 || ty / sh >= oh) continue;
            const long long oy = ty / sh;
            for (long long j = kw - 1; j >= 0; --j) {
                const long long tx = w + pw - j * dw;
                if (tx < 0 || tx % sw != 0 || tx / sw >= ow) continue;
                const long long o = oy * ow + tx / sw;
                if (iplane[o] == me) sum += gplane[o];
            }
        }
        gx[e] = sum;
    }
}

// Average pooling's divisor, PyTorch's rule: the window is first cut at the
// far edge of the padding (pool_size counts padding taps), then at the image
// (the count of real pixels). divisor_override > 0 replaces both.
struct AvgWindow {
    long long h0, h1, w0, w1, divisor;
};

__device__ __forceinline__ AvgWindow avg_window(
    long long oy, long long ox, long long H, long long W, long long kh,
    long long kw, long long sh, long long sw, long long ph, long long pw,
    long long count_include_pad, long long divisor_override) {
    AvgWindow a;
    a.h0 = oy * sh - ph;
    a.w0 = ox * sw - pw;
    a.h1 = mc_min(a.h0 + kh, H + ph);
    a.w1 = mc_min(a.w0 + kw, W + pw);
    const long long pool_size = (a.h1 - a.h0) * (a.w1 - a.w0);
    a.h0 = mc_max(a.h0, 0LL);
    a.w0 = mc_max(a.w0, 0LL);
    a.h1 = mc_min(a.h1, H);
    a.w1 = mc_min(a.w1, W);
    if (divisor_override > 0)
        a.divisor = divisor_override;
    else if (count_include_pad)
        a.divisor = pool_size;
    else
        a.divisor = (a.h1 - a.h0) * (a.w1 - a.w0);
    return a;
}

template <typename T>
__device__ __forceinline__ void avg_pool2d_forward_impl(
    const T* __restrict__ x, T* __restrict__ y, long long NC, long long H,
    long long W, long long kh, long long kw, long long sh, long long sw,
    long long ph, long long pw, long long oh, long long ow,
    long long count_include_pad, long long divisor_override) {
    MC_KERNEL_LOOP(e, NC * oh * ow) {
        const long long ox = e % ow, oy = (e / ow) % oh, nc = e / (oh * ow);
        const AvgWindow a = avg_window(oy, ox, H, W, kh, kw, sh, sw, ph, pw,
                                       count_include_pad, divisor_override);
        const T* plane = x + nc * H * W;
        T sum = T(0);
        for (long long h = a.h0; h < a.h1; ++h)
            for (long long w = a.w0; w < a.w1; ++w) sum += plane[h * W + w];
        y[e] = sum / T(a.divisor);
    }
}

// Average pooling backward: gx[h, w] = sum over windows covering (h, w) of
// gy / divisor. Window row oy covers h when oy*sh - ph <= h < oy*sh - ph + kh.
template <typename T>
__device__ __forceinline__ void avg_pool2d_backward_impl(
    const T* __restrict__ gy, T* __restrict__ gx, long long NC, long long H,
    long long W, long long kh, long long kw, long long sh, long long sw,
    long long ph, long long pw, long long oh, long long ow,
    long long count_include_pad, long long divisor_override) {
    MC_KERNEL_LOOP(e, NC * H * W) {
        const long long w = e % W, h = (e / W) % H, nc = e / (H * W);
        const long long oy0 = h + ph < kh ? 0 : (h + ph - kh) / sh + 1;
        const long long oy1 = mc_min((h + ph) / sh + 1, oh);
        const long long ox0 = w + pw < kw ? 0 : (w + pw - kw) / sw + 1;
        const long long ox1 = mc_min((w + pw) / sw + 1, ow);
        const T* gplane = gy + nc * oh * ow;
        T sum = T(0);
        for (long long oy = oy0; oy < oy1; ++oy) {
            for (long long ox = ox0; ox < ox1; ++ox) {
                const AvgWindow a = avg_window(oy, ox, H, W, kh, kw, sh, sw, ph, pw,
                                               count_include_pad, divisor_override);
                sum += gplane[oy * ow + ox] / T(a.divisor);
            }
        }
        gx[e] = sum;
    }
}

// C entry points, one per precision (extern "C": no C++ name mangling, so
// CuPy and ctypes find them by these names).
#define MAXPOOL_GEOMETRY                                                        \
    long long NC, long long H, long long W, long long kh, long long kw,         \
        long long sh, long long sw, long long ph, long long pw, long long dh,   \
        long long dw, long long oh, long long ow
#define MAXPOOL_PASS NC, H, W, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow
#define AVGPOOL_GEOMETRY                                                        \
    long long NC, long long H, long long W, long long kh, long long kw,         \
        long long sh, long long sw, long long ph, long long pw, long long oh,   \
        long long ow, long long count_include_pad, long long divisor_override
#define AVGPOOL_PASS NC, H, W, kh, kw, sh, sw, ph, pw, oh, ow, count_include_pad, divisor_override

extern "C" __global__ void max_pool2d_forward_f32(const float* x, float* y, long long* idx, MAXPOOL_GEOMETRY) {
    max_pool2d_forward_impl<float>(x, y, idx, MAXPOOL_PASS);
}
extern "C" __global__ void max_pool2d_forward_f64(const double* x, double* y, long long* idx, MAXPOOL_GEOMETRY) {
    max_pool2d_forward_impl<double>(x, y, idx, MAXPOOL_PASS);
}
extern "C" __global__ void max_pool2d_backward_f32(const float* gy, const long long* idx, float* gx, MAXPOOL_GEOMETRY) {
    max_pool2d_backward_impl<float>(gy, idx, gx, MAXPOOL_PASS);
}
extern "C" __global__ void max_pool2d_backward_f64(const double* gy, const long long* idx, double* gx, MAXPOOL_GEOMETRY) {
    max_pool2d_backward_impl<double>(gy, idx, gx, MAXPOOL_PASS);
}
extern "C" __global__ void avg_pool2d_forward_f32(const float* x, float* y, AVGPOOL_GEOMETRY) {
    avg_pool2d_forward_impl<float>(x, y, AVGPOOL_PASS);
}
extern "C" __global__ void avg_pool2d_forward_f64(const double* x, double* y, AVGPOOL_GEOMETRY) {
    avg_pool2d_forward_impl<double>(x, y, AVGPOOL_PASS);
}
extern "C" __global__ void avg_pool2d_backward_f32(const float* gy, float* gx, AVGPOOL_GEOMETRY) {
    avg_pool2d_backward_impl<float>(gy, gx, AVGPOOL_PASS);
}
extern "C" __global__ void avg_pool2d_backward_f64(const double* gy, double* gx, AVGPOOL_GEOMETRY) {
    avg_pool2d_backward_impl<double>(gy, gx, AVGPOOL_PASS);
}
