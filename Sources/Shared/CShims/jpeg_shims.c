// libjpeg wrappers: libjpeg reports fatal errors by calling a handler that must not return, which needs
// setjmp/longjmp and therefore C. Declarations: JPEGShims.h.
#include "JPEGShims.h"

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>

#include "decode_internal.h"

// MARK: - JPEG

typedef struct {
    struct jpeg_error_mgr base;
    jmp_buf jump;
    int saw_eof;
    int eof_is_fine;  ///< set once every scanline has been read
    char *message;
    size_t message_capacity;
} bn_jpeg_error_mgr;

static void bn_jpeg_error_exit(j_common_ptr cinfo) {
    bn_jpeg_error_mgr *err = (bn_jpeg_error_mgr *)cinfo->err;
    char buffer[JMSG_LENGTH_MAX];
    (*cinfo->err->format_message)(cinfo, buffer);
    bn_copy_message(err->message, err->message_capacity, buffer);
    longjmp(err->jump, 1);
}

static void bn_jpeg_emit_message(j_common_ptr cinfo, int msg_level) {
    // Warnings (msg_level -1) are silent; only the premature end of data is remembered, because
    // Pillow treats it as a truncated file. Trace messages (level >= 0) are ignored.
    bn_jpeg_error_mgr *err = (bn_jpeg_error_mgr *)cinfo->err;
    if (msg_level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF && !err->eof_is_fine) err->saw_eof = 1;
}

static void bn_jpeg_output_message(j_common_ptr cinfo) { (void)cinfo; }

/* Points libjpeg's error handling at `err`: errors longjmp with the message in `message`, warnings are kept
   quiet (a truncated stream is noticed through saw_eof instead of printed). */
static struct jpeg_error_mgr *bn_jpeg_errors(bn_jpeg_error_mgr *err, char *message, size_t message_capacity) {
    struct jpeg_error_mgr *base = jpeg_std_error(&err->base);
    err->base.error_exit = bn_jpeg_error_exit;
    err->base.emit_message = bn_jpeg_emit_message;
    err->base.output_message = bn_jpeg_output_message;
    err->saw_eof = 0;
    err->eof_is_fine = 0;
    err->message = message;
    err->message_capacity = message_capacity;
    return base;
}

int bn_jpeg_decode(const uint8_t *data, size_t size, int header_only, bn_jpeg_image *out,
                   char *message, size_t message_capacity) {
    struct jpeg_decompress_struct cinfo;
    bn_jpeg_error_mgr err;
    uint8_t *volatile pixels = NULL;

    memset(out, 0, sizeof *out);
    if (message && message_capacity) message[0] = '\0';
    memset(&cinfo, 0, sizeof cinfo);
    cinfo.err = bn_jpeg_errors(&err, message, message_capacity);

    if (setjmp(err.jump)) {
        jpeg_destroy_decompress(&cinfo);
        free(pixels);
        return err.saw_eof ? BN_DECODE_TRUNCATED : BN_DECODE_ERROR;
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, data, (unsigned long)size);
    jpeg_read_header(&cinfo, TRUE);
    if (err.saw_eof) goto truncated;

    out->width = (int)cinfo.image_width;
    out->height = (int)cinfo.image_height;
    out->progressive = cinfo.progressive_mode ? 1 : 0;
    switch (cinfo.num_components) {
    case 1: cinfo.out_color_space = JCS_GRAYSCALE; out->components = 1; break;
    case 3: cinfo.out_color_space = JCS_RGB; out->components = 3; break;
    case 4: cinfo.out_color_space = JCS_CMYK; out->components = 4; break;
    default:
        snprintf(message, message_capacity, "cannot handle %d-layer images", cinfo.num_components);
        jpeg_destroy_decompress(&cinfo);
        return BN_DECODE_ERROR;
    }
    if (bn_too_many_pixels(cinfo.image_width, cinfo.image_height, message, message_capacity)) {
        jpeg_destroy_decompress(&cinfo);
        return BN_DECODE_ERROR;
    }
    if (header_only) {
        jpeg_destroy_decompress(&cinfo);
        return BN_DECODE_OK;
    }
    // libjpeg's defaults, stated for clarity: accurate integer IDCT and fancy upsampling.
    cinfo.dct_method = JDCT_ISLOW;
    cinfo.do_fancy_upsampling = TRUE;

    jpeg_start_decompress(&cinfo);
    size_t stride = (size_t)cinfo.output_width * (size_t)cinfo.output_components;
    pixels = malloc(stride * (size_t)cinfo.output_height + 1);
    if (pixels == NULL) {
        jpeg_destroy_decompress(&cinfo);
        return BN_DECODE_NOMEM;
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW row = pixels + stride * cinfo.output_scanline;
        jpeg_read_scanlines(&cinfo, &row, 1);
        if (err.saw_eof) goto truncated;
    }
    // Pillow then calls jpeg_finish_decompress and accepts its suspension once every scanline is out, so
    // running out of data from here on (a missing EOI) is not an error; a fatal error while reading the
    // rest (a damaged marker) still is. Data that ends before the last scanline is "image file is
    // truncated" (checked above).
    err.eof_is_fine = 1;
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    out->pixels = pixels;
    return BN_DECODE_OK;

truncated:
    bn_copy_message(message, message_capacity, "premature end of JPEG data (image file is truncated)");
    jpeg_destroy_decompress(&cinfo);
    free(pixels);
    return BN_DECODE_TRUNCATED;
}

int bn_jpeg_encode(const uint8_t *pixels, int width, int height, int components, int quality, int progressive,
                   int ycck, uint8_t **out, size_t *out_size, char *message, size_t message_capacity) {
    struct jpeg_compress_struct cinfo;
    bn_jpeg_error_mgr err;
    unsigned char *volatile buffer = NULL;
    unsigned long size = 0;

    *out = NULL;
    *out_size = 0;
    if (message && message_capacity) message[0] = '\0';
    memset(&cinfo, 0, sizeof cinfo);
    cinfo.err = bn_jpeg_errors(&err, message, message_capacity);
    if (setjmp(err.jump)) {
        jpeg_destroy_compress(&cinfo);
        free(buffer);
        return BN_DECODE_ERROR;
    }
    jpeg_create_compress(&cinfo);
    jpeg_mem_dest(&cinfo, (unsigned char **)&buffer, &size);
    cinfo.image_width = (JDIMENSION)width;
    cinfo.image_height = (JDIMENSION)height;
    cinfo.input_components = components;
    cinfo.in_color_space = components == 1 ? JCS_GRAYSCALE : (components == 4 ? JCS_CMYK : JCS_RGB);
    jpeg_set_defaults(&cinfo);
    if (components == 4 && ycck) jpeg_set_colorspace(&cinfo, JCS_YCCK);
    jpeg_set_quality(&cinfo, quality, TRUE);
    if (progressive) jpeg_simple_progression(&cinfo);
    jpeg_start_compress(&cinfo, TRUE);
    size_t stride = (size_t)width * (size_t)components;
    while (cinfo.next_scanline < cinfo.image_height) {
        JSAMPROW row = (JSAMPROW)(pixels + stride * cinfo.next_scanline);
        jpeg_write_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_compress(&cinfo);
    jpeg_destroy_compress(&cinfo);
    *out = buffer;
    *out_size = size;
    return BN_DECODE_OK;
}

int bn_jpeg_turbo_version_number(void) {
#ifdef LIBJPEG_TURBO_VERSION_NUMBER
    return LIBJPEG_TURBO_VERSION_NUMBER;
#else
    return 0;
#endif
}
