#ifndef BOTTLENECK_WINOGRAD_SHIMS_H
#define BOTTLENECK_WINOGRAD_SHIMS_H
#include <stddef.h>

// The input and output transforms of Winograd F(4×4, 3×3) and F(2×2, 3×3) in AVX-512F, 16 channels per instruction (the last
// ones masked). They compute each lane with the same operations in the same order as the portable transforms of
// the VGG16 module (no fused multiply-adds), so the results are the same bits. Calling them on a CPU without
// AVX512F stops the process (illegal instruction): check `bn_cpu_features()` first.

/// V = Bᵀ d B for `tiles` 6×6 input tiles side by side, Bᵀ = [[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0],
/// [0, 4, -4, -1, 1, 0], [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]]: tile t starts at
/// `origin + 4·t·channels` (HWC, rows `row_floats` apart, pixels `channels` apart); its V_ξ (ξ = 6·row + column)
/// goes to `out + t·channels + ξ·stride`, `channels` floats each.
void bn_winograd4x4_input_row(const float *origin, ptrdiff_t row_floats, int channels, int tiles, float *out,
                              ptrdiff_t stride);

/// Y = Aᵀ M A for one tile, Aᵀ = [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0],
/// [0, 1, -1, 8, -8, 1]], M_ξ at `source + ξ·stride` (`channels` floats each); then ReLU(Y + bias), and either
/// the 2×2 max-pooled outputs (`pools`: up to `rows`/2 × `columns`/2) or the `rows` × `columns` valid outputs
/// at `target` (rows `row_stride` floats apart, pixels `channels` apart).
void bn_winograd4x4_output_tile(const float *source, ptrdiff_t stride, const float *bias, float *target,
                                ptrdiff_t row_stride, int channels, int pools, int rows, int columns);

/// V = Bᵀ d B for `tiles` 4×4 input tiles side by side, Bᵀ = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0],
/// [0, 1, 0, -1]]: tile t starts at `origin + 2·t·channels`; its V_ξ (ξ = 4·row + column) goes to
/// `out + t·channels + ξ·stride`.
void bn_winograd2x2_input_row(const float *origin, ptrdiff_t row_floats, int channels, int tiles, float *out,
                              ptrdiff_t stride);

/// Y = Aᵀ M A for one tile, Aᵀ = [[1, 1, 1, 0], [0, 1, -1, -1]], M_ξ at `source + ξ·stride`; then ReLU(Y + bias),
/// and either the max of the 2×2 outputs (`pools`, one pixel) or the `rows` × `columns` valid outputs at `target`.
void bn_winograd2x2_output_tile(const float *source, ptrdiff_t stride, const float *bias, float *target,
                                ptrdiff_t row_stride, int channels, int pools, int rows, int columns);

#endif
