#ifndef BOTTLENECK_JPEG_SHIMS_H
#define BOTTLENECK_JPEG_SHIMS_H
#include <stddef.h>
#include <stdint.h>

// Image decoding through libjpeg and libpng, whose error handlers must longjmp (Swift cannot call
// setjmp). Only plain C types cross this header, so Swift sees no libjpeg/libpng structs.
//
// Ownership: on success `pixels` is malloc'd by the shim and owned by the caller (free() it); on
// failure it is NULL. `message` receives a NUL-terminated reason of at most `message_capacity` bytes.

/// Return codes of the decode functions.
enum {
    BN_DECODE_OK = 0,
    BN_DECODE_ERROR = 1,      ///< libjpeg/libpng reported a fatal error (message filled in)
    BN_DECODE_TRUNCATED = 2,  ///< the data ended before the image did (message filled in)
    BN_DECODE_NOMEM = 3,
};

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

/// A PNG as stored: de-interlaced, unfiltered rows with no libpng transforms applied (no gamma, no
/// expansion, no stripping), `rowbytes` bytes per row (samples big-endian for 16-bit depth).
/// Palette entries are RGB triplets; `trns` holds the raw tRNS chunk (`trns_length` bytes; for
/// palette images one alpha per entry, for gray/RGB the 16-bit big-endian key colour).
typedef struct {
    uint32_t width;
    uint32_t height;
    int bit_depth;
    int color_type;
    int interlaced;
    size_t rowbytes;
    int palette_count;
    uint8_t palette[256 * 3];
    int trns_length;
    uint8_t trns[256];
    uint8_t *pixels;
} bn_png_image;

/// Decodes a PNG held in memory with libpng's classic API. With `header_only` non-zero only IHDR
/// (and chunks before the first IDAT) are read. Reading stops after the last row; chunks after the
/// image data are not examined (damage there, a missing IEND, or an error raised by libpng only after
/// the last row was delivered, is accepted), as in Pillow.
int bn_png_decode(const uint8_t *data, size_t size, int header_only, bn_png_image *out,
                  char *message, size_t message_capacity);

#endif
