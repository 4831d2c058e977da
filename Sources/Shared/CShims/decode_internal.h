#ifndef BOTTLENECK_DECODE_INTERNAL_H
#define BOTTLENECK_DECODE_INTERNAL_H
// Helpers shared by jpeg_shims.c and png_shims.c; not part of the module's interface.
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/// Pillow's decompression-bomb limit (2 * Image.MAX_IMAGE_PIXELS): larger images fail to open.
#define BN_MAX_PIXELS 178956970ULL

static inline int bn_too_many_pixels(uint64_t width, uint64_t height, char *message, size_t capacity) {
    if (width * height <= BN_MAX_PIXELS) return 0;
    snprintf(message, capacity,
             "image size (%llux%llu) exceeds limit of %llu pixels, could be decompression bomb DOS attack",
             (unsigned long long)width, (unsigned long long)height, BN_MAX_PIXELS);
    return 1;
}

static inline void bn_copy_message(char *dst, size_t capacity, const char *src) {
    if (dst == NULL || capacity == 0) return;
    strncpy(dst, src, capacity - 1);
    dst[capacity - 1] = '\0';
}

#endif
