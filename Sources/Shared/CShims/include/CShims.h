#ifndef BOTTLENECK_CSHIMS_H
#define BOTTLENECK_CSHIMS_H
// The only C code of the project: getters for C macros Swift cannot import, and wrappers around
// libraries that report errors with longjmp, and the project's own SIMD kernels (CPU feature detection, an
// FMA peak probe, a bf16 and an fp32 matrix product, the top model's sparse kernel gradient). No other
// module calls C except through the C<Lib> system-library modules.
#include "HDF5Shims.h"
#include "DecodeShims.h"
#include "JPEGShims.h"
#include "PNGShims.h"
#include "CPUFeatureShims.h"
#include "FMAPeakShims.h"
#include "BF16GEMMShims.h"
#include "FP32GEMMShims.h"
#include "SparseUpdateShims.h"
#endif
