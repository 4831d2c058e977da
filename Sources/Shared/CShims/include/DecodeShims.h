#ifndef BOTTLENECK_DECODE_SHIMS_H
#define BOTTLENECK_DECODE_SHIMS_H
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

#endif
