#ifndef BOTTLENECK_PNG_SHIMS_H
#define BOTTLENECK_PNG_SHIMS_H
#include "DecodeShims.h"

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
