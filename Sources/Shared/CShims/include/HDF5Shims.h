#ifndef BOTTLENECK_HDF5_SHIMS_H
#define BOTTLENECK_HDF5_SHIMS_H
#include <hdf5.h>

// HDF5's type, property-list and access-flag "constants" are macros that call H5open() and read a
// global; Swift cannot import them, and reading the globals before H5open() gives -1.
static inline hid_t bn_h5t_native_float(void) { return H5T_NATIVE_FLOAT; }
static inline hid_t bn_h5t_native_double(void) { return H5T_NATIVE_DOUBLE; }
static inline hid_t bn_h5t_native_int32(void) { return H5T_NATIVE_INT32; }
static inline hid_t bn_h5t_native_int64(void) { return H5T_NATIVE_INT64; }
static inline hid_t bn_h5t_native_uint8(void) { return H5T_NATIVE_UINT8; }
static inline hid_t bn_h5t_c_s1(void) { return H5T_C_S1; }
static inline hid_t bn_h5p_dataset_create(void) { return H5P_DATASET_CREATE; }
static inline hid_t bn_h5p_file_access(void) { return H5P_FILE_ACCESS; }
static inline hid_t bn_h5p_attribute_create(void) { return H5P_ATTRIBUTE_CREATE; }
static inline hid_t bn_h5p_link_create(void) { return H5P_LINK_CREATE; }
static inline hid_t bn_h5p_group_create(void) { return H5P_GROUP_CREATE; }
static inline hid_t bn_h5p_file_create(void) { return H5P_FILE_CREATE; }
static inline unsigned bn_h5f_acc_trunc(void) { return H5F_ACC_TRUNC; }
static inline unsigned bn_h5f_acc_excl(void) { return H5F_ACC_EXCL; }
static inline unsigned bn_h5f_acc_rdonly(void) { return H5F_ACC_RDONLY; }
static inline unsigned bn_h5f_acc_rdwr(void) { return H5F_ACC_RDWR; }
static inline hsize_t bn_h5s_unlimited(void) { return H5S_UNLIMITED; }
static inline size_t bn_h5t_variable(void) { return H5T_VARIABLE; }

#endif
