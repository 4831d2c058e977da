#include "HDF5Shims.h"
