// libpng wrappers: libpng reports fatal errors by calling a handler that must not return, which needs
// setjmp/longjmp and therefore C. Declarations: PNGShims.h.
#include "PNGShims.h"

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <png.h>

#include "decode_internal.h"

// MARK: - PNG

typedef struct {
    const uint8_t *data;
    size_t size;
    size_t offset;
    int hit_end;
    jmp_buf jump;
    char *message;
    size_t message_capacity;
} bn_png_reader;

static void bn_png_error(png_structp png, png_const_charp text) {
    bn_png_reader *reader = (bn_png_reader *)png_get_error_ptr(png);
    bn_copy_message(reader->message, reader->message_capacity, text);
    longjmp(reader->jump, 1);
}

static void bn_png_warning(png_structp png, png_const_charp text) { (void)png; (void)text; }

static void bn_png_read(png_structp png, png_bytep dst, size_t length) {
    bn_png_reader *reader = (bn_png_reader *)png_get_io_ptr(png);
    if (reader->size - reader->offset < length) {
        reader->hit_end = 1;
        png_error(png, "unexpected end of PNG data (image file is truncated)");
    }
    memcpy(dst, reader->data + reader->offset, length);
    reader->offset += length;
}

// Bitwise CRC-32 (the PNG polynomial): only chunks before the image data are checked, which are small,
// and a table would need thread-safe initialisation.
static uint32_t bn_crc32(const uint8_t *p, size_t n) {
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    }
    return c ^ 0xFFFFFFFFu;
}

// Pillow verifies the CRC of every chunk before the first IDAT and of none after; libpng's own checks are
// then turned off so that a damaged IDAT/IEND checksum is accepted, as Pillow accepts it.
static int bn_png_header_crcs_ok(const uint8_t *data, size_t size, char *message, size_t capacity) {
    size_t pos = 8;
    while (pos + 12 <= size) {
        uint32_t length = ((uint32_t)data[pos] << 24) | ((uint32_t)data[pos + 1] << 16) |
                          ((uint32_t)data[pos + 2] << 8) | data[pos + 3];
        const uint8_t *type = data + pos + 4;
        if (memcmp(type, "IDAT", 4) == 0) return 1;
        if (length > size - pos - 12) return 1;  // truncated: libpng reports it
        const uint8_t *crc = data + pos + 8 + length;
        uint32_t stored = ((uint32_t)crc[0] << 24) | ((uint32_t)crc[1] << 16) | ((uint32_t)crc[2] << 8) | crc[3];
        if (bn_crc32(type, (size_t)length + 4) != stored) {
            snprintf(message, capacity, "broken PNG file (bad header checksum in %.4s)", (const char *)type);
            return 0;
        }
        pos += (size_t)length + 12;
    }
    return 1;
}

static uint32_t bn_be32(const uint8_t *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

// Pillow stops reading a PNG at the end of the first run of IDAT chunks and accepts whatever follows
// (damaged chunks, a missing IEND, a cut-off CRC) once the compressed data is complete. libpng reads the
// chunk after the image data, so it is given a copy that ends after that run with a clean IEND; a last
// IDAT cut short keeps the bytes present. Returns NULL (use the data as is) when there is no IDAT.
static uint8_t *bn_png_trimmed_copy(const uint8_t *data, size_t size, size_t *out_size, int *was_cut) {
    size_t pos = 8, end = 0;
    int in_idat = 0;
    while (pos + 8 <= size) {
        uint32_t length = bn_be32(data + pos);
        int is_idat = memcmp(data + pos + 4, "IDAT", 4) == 0;
        if (in_idat && !is_idat) break;
        if (!is_idat && (size_t)length > size - pos - 8) return NULL;  // a header chunk cut short: truncated
        if (is_idat) {
            in_idat = 1;
            size_t available = size - pos - 8;
            if ((size_t)length >= available) {  // cut inside this IDAT's data or CRC
                end = pos + 8 + ((size_t)length < available ? (size_t)length : available);
                size_t data_length = end - pos - 8;
                uint8_t *copy = malloc(end + 4 + 12);
                if (copy == NULL) return NULL;
                memcpy(copy, data, end);
                copy[pos] = (uint8_t)(data_length >> 24);
                copy[pos + 1] = (uint8_t)(data_length >> 16);
                copy[pos + 2] = (uint8_t)(data_length >> 8);
                copy[pos + 3] = (uint8_t)data_length;
                memset(copy + end, 0, 4);  // CRC, not checked for IDAT
                static const uint8_t iend[12] = {0, 0, 0, 0, 'I', 'E', 'N', 'D', 0xAE, 0x42, 0x60, 0x82};
                memcpy(copy + end + 4, iend, 12);
                *out_size = end + 16;
                *was_cut = 1;
                return copy;
            }
        }
        pos += (size_t)length + 12;
        if (in_idat) end = pos;
    }
    if (!in_idat) return NULL;
    if (end == 0) end = pos;
    uint8_t *copy = malloc(end + 12);
    if (copy == NULL) return NULL;
    memcpy(copy, data, end);
    static const uint8_t iend[12] = {0, 0, 0, 0, 'I', 'E', 'N', 'D', 0xAE, 0x42, 0x60, 0x82};
    memcpy(copy + end, iend, 12);
    *out_size = end + 12;
    return copy;
}

static int bn_png_decode_stream(const uint8_t *data, size_t size, int header_only, bn_png_image *out,
                                char *message, size_t message_capacity);

int bn_png_decode(const uint8_t *data, size_t size, int header_only, bn_png_image *out,
                  char *message, size_t message_capacity) {
    if (header_only) return bn_png_decode_stream(data, size, 1, out, message, message_capacity);
    size_t trimmed_size = 0;
    int was_cut = 0;
    uint8_t *trimmed = bn_png_trimmed_copy(data, size, &trimmed_size, &was_cut);
    if (trimmed == NULL) return bn_png_decode_stream(data, size, 0, out, message, message_capacity);
    int code = bn_png_decode_stream(trimmed, trimmed_size, 0, out, message, message_capacity);
    free(trimmed);
    if (code == BN_DECODE_ERROR && was_cut) {
        bn_copy_message(message, message_capacity, "image data ends early (image file is truncated)");
        code = BN_DECODE_TRUNCATED;
    }
    return code;
}

static int bn_png_decode_stream(const uint8_t *data, size_t size, int header_only, bn_png_image *out,
                                char *message, size_t message_capacity) {
    bn_png_reader reader;
    png_structp png = NULL;
    png_infop info = NULL;
    uint8_t *volatile pixels = NULL;

    memset(out, 0, sizeof *out);
    if (message && message_capacity) message[0] = '\0';
    reader.data = data;
    reader.size = size;
    reader.offset = 0;
    reader.hit_end = 0;
    reader.message = message;
    reader.message_capacity = message_capacity;

    png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &reader, bn_png_error, bn_png_warning);
    if (png == NULL) return BN_DECODE_NOMEM;
    info = png_create_info_struct(png);
    if (info == NULL) {
        png_destroy_read_struct(&png, NULL, NULL);
        return BN_DECODE_NOMEM;
    }
    if (setjmp(reader.jump)) {
        png_destroy_read_struct(&png, &info, NULL);
        free(pixels);
        return reader.hit_end ? BN_DECODE_TRUNCATED : BN_DECODE_ERROR;
    }
    if (!bn_png_header_crcs_ok(data, size, message, message_capacity)) {
        png_destroy_read_struct(&png, &info, NULL);
        return BN_DECODE_ERROR;
    }
    png_set_read_fn(png, &reader, bn_png_read);
    png_set_crc_action(png, PNG_CRC_QUIET_USE, PNG_CRC_QUIET_USE);
    // Unknown critical chunks are kept (and ignored) instead of being fatal, as in Pillow.
    png_set_keep_unknown_chunks(png, PNG_HANDLE_CHUNK_ALWAYS, NULL, 0);
    // Pillow has no width/height limit of its own below its decompression-bomb check.
    png_set_user_limits(png, 0x7fffffff, 0x7fffffff);
    png_read_info(png, info);

    png_uint_32 width = 0, height = 0;
    int bit_depth = 0, color_type = 0, interlace = 0;
    png_get_IHDR(png, info, &width, &height, &bit_depth, &color_type, &interlace, NULL, NULL);
    out->width = width;
    out->height = height;
    out->bit_depth = bit_depth;
    out->color_type = color_type;
    out->interlaced = interlace != PNG_INTERLACE_NONE;

    png_colorp palette = NULL;
    int palette_count = 0;
    if (png_get_PLTE(png, info, &palette, &palette_count) && palette != NULL) {
        if (palette_count > 256) palette_count = 256;
        for (int i = 0; i < palette_count; i++) {
            out->palette[i * 3 + 0] = palette[i].red;
            out->palette[i * 3 + 1] = palette[i].green;
            out->palette[i * 3 + 2] = palette[i].blue;
        }
        out->palette_count = palette_count;
    }
    png_bytep trans_alpha = NULL;
    int num_trans = 0;
    png_color_16p trans_color = NULL;
    if (png_get_tRNS(png, info, &trans_alpha, &num_trans, &trans_color)) {
        if (color_type == PNG_COLOR_TYPE_PALETTE && trans_alpha != NULL) {
            if (num_trans > 256) num_trans = 256;
            memcpy(out->trns, trans_alpha, (size_t)num_trans);
            out->trns_length = num_trans;
        } else if (trans_color != NULL && color_type == PNG_COLOR_TYPE_GRAY) {
            out->trns[0] = (uint8_t)(trans_color->gray >> 8);
            out->trns[1] = (uint8_t)(trans_color->gray & 0xff);
            out->trns_length = 2;
        } else if (trans_color != NULL && color_type == PNG_COLOR_TYPE_RGB) {
            png_uint_16 v[3] = {trans_color->red, trans_color->green, trans_color->blue};
            for (int i = 0; i < 3; i++) {
                out->trns[2 * i] = (uint8_t)(v[i] >> 8);
                out->trns[2 * i + 1] = (uint8_t)(v[i] & 0xff);
            }
            out->trns_length = 6;
        }
    }
    if (bn_too_many_pixels(width, height, message, message_capacity)) {
        png_destroy_read_struct(&png, &info, NULL);
        return BN_DECODE_ERROR;
    }
    if (header_only) {
        png_destroy_read_struct(&png, &info, NULL);
        return BN_DECODE_OK;
    }

    (void)png_set_interlace_handling(png);
    png_read_update_info(png, info);
    size_t rowbytes = png_get_rowbytes(png, info);
    out->rowbytes = rowbytes;
    if (height != 0 && rowbytes > ((size_t)-1 - 1) / height) {
        bn_copy_message(message, message_capacity, "image too large");
        png_destroy_read_struct(&png, &info, NULL);
        return BN_DECODE_NOMEM;
    }
    pixels = malloc(rowbytes * (size_t)height + 1);
    if (pixels == NULL) {
        png_destroy_read_struct(&png, &info, NULL);
        return BN_DECODE_NOMEM;
    }
    png_bytep *rows = malloc(sizeof(png_bytep) * (size_t)(height ? height : 1));
    if (rows == NULL) {
        png_destroy_read_struct(&png, &info, NULL);
        free(pixels);
        return BN_DECODE_NOMEM;
    }
    for (png_uint_32 y = 0; y < height; y++) rows[y] = pixels + rowbytes * y;
    // png_read_image longjmps on error; the row table must not leak then, so it is freed on both
    // paths through a second setjmp scope. An error raised after the last row of the last pass was
    // delivered (libpng finishing the compressed stream: missing Adler-32, damaged data after the image)
    // is ignored, as Pillow stops once it has every row.
    if (setjmp(reader.jump)) {
        int complete = interlace != PNG_INTERLACE_NONE ? png_get_current_pass_number(png) >= 7
                                                       : png_get_current_row_number(png) >= height;
        free(rows);
        png_destroy_read_struct(&png, &info, NULL);
        if (complete) {
            out->pixels = pixels;
            return BN_DECODE_OK;
        }
        free(pixels);
        return reader.hit_end ? BN_DECODE_TRUNCATED : BN_DECODE_ERROR;
    }
    png_read_image(png, rows);
    free(rows);
    png_destroy_read_struct(&png, &info, NULL);
    out->pixels = pixels;
    return BN_DECODE_OK;
}
