extension Duration {
    /// Parses `500ms`, `10s`, `1m30s`, `1h`, `2d`, `1.5s` or a bare number of seconds.
    public init?(parsing text: String) {
        let s = String(text.drop(while: { $0 == " " }).reversed().drop(while: { $0 == " " }).reversed())
        if s.isEmpty { return nil }
        if let seconds = Double(s) {
            guard seconds >= 0, seconds.isFinite else { return nil }
            self = .milliseconds(Int64((seconds * 1000).rounded()))
            return
        }
        var total = Duration.zero
        var rest = Substring(s)
        while !rest.isEmpty {
            rest = rest.drop(while: { $0 == " " })
            let number = rest.prefix(while: { $0.isNumber || $0 == "." })
            guard !number.isEmpty, let value = Double(number) else { return nil }
            rest = rest.dropFirst(number.count).drop(while: { $0 == " " })
            let unit = rest.prefix(while: { $0.isLetter || $0 == "µ" })
            rest = rest.dropFirst(unit.count)
            let nanos: Double
            switch unit {
            case "ns": nanos = 1
            case "us", "µs": nanos = 1e3
            case "ms": nanos = 1e6
            case "s", "sec", "secs", "second", "seconds": nanos = 1e9
            case "m", "min", "mins", "minute", "minutes": nanos = 60e9
            case "h", "hr", "hour", "hours": nanos = 3600e9
            case "d", "day", "days": nanos = 86400e9
            default: return nil
            }
            total += .nanoseconds(Int64((value * nanos).rounded()))
        }
        self = total
    }

    /// The duration in seconds, as a double.
    public var seconds: Double {
        let c = components
        return Double(c.seconds) + Double(c.attoseconds) / 1e18
    }

    /// A short human form: `250ms`, `1.5s`, `2m30s`.
    public var shortDescription: String {
        let s = seconds
        if s < 0.001 { return "\(Int((s * 1e6).rounded()))µs" }
        if s < 1 { return "\(Int((s * 1000).rounded()))ms" }
        if s < 60 {
            let r = (s * 10).rounded() / 10
            return r == r.rounded() ? "\(Int(r))s" : "\(r)s"
        }
        let m = Int(s) / 60, rem = Int(s) % 60
        if m < 60 { return rem == 0 ? "\(m)m" : "\(m)m\(rem)s" }
        let h = m / 60, mm = m % 60
        return mm == 0 ? "\(h)h" : "\(h)h\(mm)m"
    }
}
