/* Shared definitions of the chatgui kernels (cgkernels.c and the SIMD paths it includes).
 *
 * Weights are GGUF blocks exactly as stored in the file (ggml's layouts, see ggml-common.h of
 * llama.cpp). Activations are quantized per row into our own layout ("A32"):
 *   int8 q[k]                      round(x / d) of each element
 *   float d[k / qb]                one scale per qb (32 or 256) elements: max |x| / 127 (for
 *                                  qb = 32 rounded to float16, as llama.cpp's Q8_0 blocks)
 *   int16 s[k / 16]                sum of q over each 16 elements (for offsets and mins)
 *   float f[k / 32]                qb = 256 only: d x the sum of q over each 32 elements (for
 *                                  Q4_K's and Q5_K's mins: one float multiply-add a super-block)
 * so every weight format meets the same activation row, and a dot product is integer sums per
 * 32 (or 16) elements times float scales. */
#ifndef CG_COMMON_H
#define CG_COMMON_H
#include <stdint.h>
#include <stddef.h>
#include <string.h>
#include <math.h>

enum { T_Q4_0, T_Q4_1, T_Q5_0, T_Q5_1, T_Q8_0, T_Q4_K, T_Q5_K, T_Q6_K, T_IQ4_NL, T_IQ4_XS, T_MXFP4, T_COUNT };

/* elements and bytes per block, by type */
static const int BLOCK_ELEMS[T_COUNT] = {32, 32, 32, 32, 32, 256, 256, 256, 32, 256, 32};
static const int BLOCK_BYTES[T_COUNT] = {18, 20, 22, 24, 34, 144, 176, 210, 18, 136, 17};

static const int8_t KV_IQ4NL[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};
/* MXFP4's e2m1 values doubled (ggml's table), so they are integers; the scale is halved to match */
static const int8_t KV_MXFP4[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};

/* a dot-product kernel: out[r * out_stride] = w_row . act_r for r < nr (nr <= 4, or 8 on the AVX-512 path);
 * act rows are act_stride bytes apart (A32 layout, k elements) */
typedef void (*dot_fn)(int k, const uint8_t *w, const uint8_t *act, size_t act_stride, int nr,
                       float *out, size_t out_stride);

static inline const int8_t *act_q(const uint8_t *a) { return (const int8_t *)a; }
static inline int act_qb(int type) { return BLOCK_ELEMS[type] == 256 ? 256 : 32; }
static inline size_t act_row_bytes(int k, int qb) {
    return ((size_t)k + 4 * (size_t)(k / qb) + (size_t)k / 8 + (qb == 256 ? 4 * (size_t)(k / 32) : 0) + 63) / 64 * 64;
}
static inline const float *act_d(const uint8_t *a, int k) { return (const float *)(a + k); }
static inline const int16_t *act_s(const uint8_t *a, int k, int qb) { return (const int16_t *)(a + k + 4 * (k / qb)); }
static inline const float *act_f(const uint8_t *a, int k) { return (const float *)(a + k + 4 * (k / 256) + k / 8); }

/* f of a quantized qb = 256 row (the quantizers write q, d and s) */
static inline void act_fill_f(uint8_t *a, int k) {
    const float *d = act_d(a, k);
    const int16_t *s = act_s(a, k, 256);
    float *f = (float *)act_f(a, k);
    for (int j = 0; j < k / 32; j++) f[j] = d[j / 8] * (float)(s[2 * j] + s[2 * j + 1]);
}

static inline float fp16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0x1f) bits = sign | 0x7f800000u | (man << 13);          /* inf, NaN */
    else if (exp) bits = sign | ((exp + 112) << 23) | (man << 13);     /* normal */
    else if (!man) bits = sign;                                          /* zero */
    else {                                                               /* subnormal: renormalise */
        int e = 113;
        while (!(man & 0x400)) { man <<= 1; e--; }
        bits = sign | ((uint32_t)e << 23) | ((man & 0x3ff) << 13);
    }
    float f; memcpy(&f, &bits, 4); return f;
}

/* float -> the nearest float16 (ties to even) and back: what llama.cpp keeps of a scale */
static inline float round_f16(float f) {
    uint32_t x; memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000, ax = x & 0x7fffffffu;
    uint16_t h;
    if (ax >= 0x47800000u) h = (uint16_t)(sign | (ax > 0x7f800000u ? 0x7e00 : 0x7c00));   /* overflow, inf, NaN */
    else if (ax < 0x38800000u) {                                      /* float16 subnormal or zero */
        float v; memcpy(&v, &ax, 4);
        h = (uint16_t)(sign | (uint16_t)nearbyintf(v * 16777216.0f));    /* in units of 2^-24 */
    } else {
        uint32_t r = ax + 0xfff + ((ax >> 13) & 1);                     /* round the 13 dropped bits */
        h = (uint16_t)(sign | ((r - 0x38000000u) >> 13));
    }
    return fp16_to_f32(h);
}

/* An activation block's scale (the value its int8 q are multiplied by) and the factor that
 * makes q from x, as llama.cpp's quantize_row_q8_0 does for the 32-wide blocks (the scale kept
 * as float16, q made with the float32 one), so that our integer sums and per-block scales are
 * those llama.cpp multiplies; 256-wide blocks (its Q8_K) keep a float32 scale. NaN or an
 * infinity in the block: a NaN scale, never a silent number. */
static inline void act_scale(float amax, int bad, int qb, float *inv, float *scale) {
    float d = amax / 127.0f;
    *inv = amax > 0.0f && !bad ? 1.0f / d : 0.0f;
    *scale = bad ? NAN : qb == 32 ? round_f16(d) : d;
}

static inline float rd_f16(const uint8_t *p) { uint16_t h; memcpy(&h, p, 2); return fp16_to_f32(h); }

/* E8M0 exponent byte -> 2^(e - 127) / 2 (the half matches KV_MXFP4's doubled values) */
static inline float e8m0_half(uint8_t e) {
    uint32_t bits = e < 2 ? 0x00200000u << e : (uint32_t)(e - 1) << 23;
    float f; memcpy(&f, &bits, 4); return f;
}

/* Q4_K / Q5_K: the j-th (0..7) 6-bit scale and min of the 12 packed bytes */
static inline void scale_min_k4(int j, const uint8_t *q, int *sc, int *mn) {
    if (j < 4) { *sc = q[j] & 63; *mn = q[j + 4] & 63; }
    else { *sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4); *mn = (q[j + 4] >> 4) | ((q[j] >> 6) << 4); }
}
#endif
