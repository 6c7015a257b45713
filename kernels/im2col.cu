// im2col.cu -- unfold image patches into columns, and the exact adjoint.
//
// Convolution becomes one matrix product (cuBLAS) once every receptive field
// is a column:
//   col[n, (c*kh + i)*kw + j, y*ow + x] = img[n, c, y*sh - ph + i*dh, x*sw - pw + j*dw]
// with 0 where the tap falls outside the image. col2im sums columns back into
// an image; it is the transpose of im2col, so conv2d's input gradient is
// col2im(W^T @ gy).
#include "common.cuh"

// One thread per element of col (N, C*kh*kw, oh*ow): consecutive threads
// write consecutive memory.
template <typename T>
__device__ __forceinline__ void im2col_impl(
    const T* __restrict__ img, T* __restrict__ col, long long N, long long C,
    long long H, long long W, long long kh, long long kw, long long sh,
    long long sw, long long ph, long long pw, long long dh, long long dw,
    long long oh, long long ow) {
    const long long L = oh * ow;
    const long long K = C * kh * kw;
    MC_KERNEL_LOOP(e, N * K * L) {
        const long long p = e % L;        // output position y*ow + x
        const long long row = (e / L) % K;  // (c*kh + i)*kw + j
        const long long n = e / (L * K);
        const long long c = row / (kh * kw);
        const long long i = (row / kw) % kh, j = row % kw;
        const long long h = (p / ow) * sh - ph + i * dh;
        const long long w = (p % ow) * sw - pw + j * dw;
        const bool inside = 0 <= h && h < H && 0 <= w && w < W;
        col[e] = inside ? img[((n * C + c) * H + h) * W + w] : T(0);
    }
}

// One thread per image pixel, gathering every column entry that read it.
// Gathering instead of scattering needs no atomics, so the sum is computed in
// the same order on every run (deterministic). Tap i of output row y reads
// pixel h when y*sh - ph + i*dh == h, i.e. y = (h + ph - i*dh) / sh must be an
// integer in [0, oh).
template <typename T>
__device__ __forceinline__ void col2im_impl(
    const T* __restrict__ col, T* __restrict__ img, long long N, long long C,
    long long H, long long W, long long kh, long long kw, long long sh,
    long long sw, long long ph, long long pw, long long dh, long long dw,
    long long oh, long long ow) {
    const long long L = oh * ow;
    MC_KERNEL_LOOP(e, N * C * H * W) {
        const long long w = e % W;
        const long long h = (e / W) % H;
        const long long nc = e / (H * W);  // n*C + c
        // col row (c*kh + i)*kw + j of sample n starts at ((n*C + c)*kh*kw + i*kw + j) * L
        const T* plane = col + nc * kh * kw * L;
        T sum = T(0);
        for (long long i = 0; i < kh; ++i) {
            const long long ty = h + ph - i * dh;
            if (ty < 0 || ty % sh != 0 || ty / sh >= oh) continue;
            const long long y = ty / sh;
            for (long long j = 0; j < kw; ++j) {
                const long long tx = w + pw - j * dw;
                if (tx < 0 || tx % sw != 0 || tx / sw >= ow) continue;
                sum += plane[(i * kw + j) * L + y * ow + tx / sw];
            }
        }
        img[e] = sum;
    }
}

#define IM2COL_ARGS(T)                                                         \
    const T *src, T *dst, long long N, long long C, long long H, long long W, \
        long long kh, long long kw, long long sh, long long sw, long long ph,  \
        long long pw, long long dh, long long dw, long long oh, long long ow
#define IM2COL_PASS N, C, H, W, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow

extern "C" __global__ void im2col_f32(IM2COL_ARGS(float)) { im2col_impl<float>(src, dst, IM2COL_PASS); }
extern "C" __global__ void im2col_f64(IM2COL_ARGS(double)) { im2col_impl<double>(src, dst, IM2COL_PASS); }
extern "C" __global__ void col2im_f32(IM2COL_ARGS(float)) { col2im_impl<float>(src, dst, IM2COL_PASS); }
extern "C" __global__ void col2im_f64(IM2COL_ARGS(double)) { col2im_impl<double>(src, dst, IM2COL_PASS); }
