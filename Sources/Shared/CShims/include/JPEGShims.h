#ifndef BOTTLENECK_JPEG_SHIMS_H
#define BOTTLENECK_JPEG_SHIMS_H
#include <stddef.h>
// JPEG decoding through libjpeg, whose error handler must longjmp (Swift cannot call setjmp).
// Declarations are added by the ImageInput module's owner.
#endif
