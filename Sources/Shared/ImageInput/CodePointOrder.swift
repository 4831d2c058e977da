/// Python's `str` ordering: lexicographic by code point, no normalisation, no locale.
///
/// Swift's `String <` is not used because it compares canonically-equivalent (normalised) forms. Names
/// that are not valid UTF-8 are rejected when listed, so byte order of the UTF-8 form, which equals
/// code-point order, is exact.
public enum CodePointOrder {
    public static func less(_ a: String, _ b: String) -> Bool {
        var ia = a.utf8.makeIterator()
        var ib = b.utf8.makeIterator()
        while true {
            switch (ia.next(), ib.next()) {
            case (nil, nil): return false
            case (nil, _): return true
            case (_, nil): return false
            case let (x?, y?): if x != y { return x < y }
            }
        }
    }
}
