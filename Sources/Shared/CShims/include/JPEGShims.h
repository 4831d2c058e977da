#ifndef BOTTLENECK_JPEG_SHIMS_H
#define BOTTLENECK_JPEG_SHIMS_H
#include "DecodeShims.h"

/// A decoded JPEG. `components` is 1 (grayscale), 3 (RGB, after libjpeg's YCbCr conversion) or
/// 4 (CMYK as libjpeg delivers it, i.e. Adobe-inverted for the usual Adobe files; YCCK is converted
/// to CMYK by libjpeg). Pixels are HWC, `width * components` bytes per row, no padding.
typedef struct {
    int width;
    int height;
    int components;
    int progressive;
    uint8_t *pixels;
} bn_jpeg_image;

/// Decodes a JPEG held in memory with libjpeg's defaults (ISLOW IDCT, fancy upsampling), as Pillow
/// does outside draft mode. With `header_only` non-zero only the size and component count are read.
/// Data that ends before the last scanline (libjpeg warning JWRN_JPEG_EOF) gives BN_DECODE_TRUNCATED,
/// matching Pillow's "image file is truncated"; running out only after it (e.g. just the EOI marker
/// missing, when the decoder did not have to read ahead) is accepted, as Pillow accepts it. Other
/// warnings are ignored and nothing is printed to stderr.
int bn_jpeg_decode(const uint8_t *data, size_t size, int header_only, bn_jpeg_image *out,
                   char *message, size_t message_capacity);

/// Encodes 8-bit pixels (HWC, `components` 1 = grayscale, 3 = RGB, 4 = CMYK written as YCCK with an
/// Adobe marker when `ycck` is non-zero, else as plain CMYK) to a JPEG in memory. On success `*out` is
/// malloc'd (free() it) and `*out_size` its length. Used by tests and tools to make inputs.
int bn_jpeg_encode(const uint8_t *pixels, int width, int height, int components, int quality, int progressive,
                   int ycck, uint8_t **out, size_t *out_size, char *message, size_t message_capacity);

/// libjpeg-turbo's version as a number (2.1.5 is 2001005), from LIBJPEG_TURBO_VERSION_NUMBER; 0 when the
/// library is not libjpeg-turbo.
int bn_jpeg_turbo_version_number(void);

#endif
