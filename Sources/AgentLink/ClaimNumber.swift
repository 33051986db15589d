/// Ring claim numbers and intent indexes come from guest RAM, so the host orders them modulo 2^64
/// (serial-number arithmetic) instead of with `<`/`+`: any value the guest writes then has a defined
/// meaning, and none traps. No honest agent comes near 2^64 records, so the readers count a wrap as a
/// protocol violation.
extension UInt64 {
    /// Whether `self` comes after `other` by less than half the number space.
    public func isAhead(of other: UInt64) -> Bool {
        let distance = self &- other
        return distance != 0 && distance < 1 << 63
    }
}
