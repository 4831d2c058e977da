#ifndef BOTTLENECK_CSHIMS_H
#define BOTTLENECK_CSHIMS_H
// The only C code of the project: getters for C macros Swift cannot import, and wrappers around
// libraries that report errors with longjmp. No other module calls C except through the C<Lib>
// system-library modules.
#include "HDF5Shims.h"
#include "DecodeShims.h"
#include "JPEGShims.h"
#include "PNGShims.h"
#endif
