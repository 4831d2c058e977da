import CHDF5
import CShims

/// A numeric element type HDF5 can read into and write from; HDF5 converts between stored and native types.
public protocol HDF5Scalar: Numeric, Sendable {
    static var nativeType: hid_t { get }
}

extension Float: HDF5Scalar { public static var nativeType: hid_t { bn_h5t_native_float() } }
extension Double: HDF5Scalar { public static var nativeType: hid_t { bn_h5t_native_double() } }
extension Int32: HDF5Scalar { public static var nativeType: hid_t { bn_h5t_native_int32() } }
extension Int64: HDF5Scalar { public static var nativeType: hid_t { bn_h5t_native_int64() } }
extension UInt8: HDF5Scalar { public static var nativeType: hid_t { bn_h5t_native_uint8() } }
