/// SHA-256 and SHA-512 (FIPS 180-4). The two differ only in word size, constants, rotation
/// amounts and the number of rounds, so one implementation serves both.
public struct SHA2<Word: FixedWidthInteger & UnsignedInteger & Sendable>: Sendable {
    /// The initial hash value, H(0).
    let initial: [Word]
    /// The round constants; there are as many rounds as constants.
    let k: [Word]
    /// Rotation amounts of Σ0 and Σ1.
    let sum0: (Int, Int, Int), sum1: (Int, Int, Int)
    /// Two rotation amounts and a shift, for σ0 and σ1 of the message schedule.
    let sigma0: (Int, Int, Int), sigma1: (Int, Int, Int)

    private static var wordBytes: Int { Word.bitWidth / 8 }
    /// A block is sixteen words.
    private static var blockBytes: Int { wordBytes * 16 }

    public func hash(_ message: [UInt8]) -> [UInt8] {
        var state = initial
        var schedule = [Word](repeating: 0, count: k.count)
        let whole = message.count / Self.blockBytes * Self.blockBytes
        message.withUnsafeBufferPointer { bytes in
            for start in stride(from: 0, to: whole, by: Self.blockBytes) {
                compress(&state, &schedule, bytes, start)
            }
        }
        // Padding: a one bit, zeros, then the length in bits as a two-word big-endian number.
        var tail = Array(message[whole...])
        tail.append(0x80)
        let lengthBytes = 2 * Self.wordBytes
        while (tail.count + lengthBytes) % Self.blockBytes != 0 { tail.append(0) }
        let bits = UInt64(message.count) &* 8
        tail += [UInt8](repeating: 0, count: lengthBytes - 8)
        for i in stride(from: 56, through: 0, by: -8) { tail.append(UInt8(truncatingIfNeeded: bits >> UInt64(i))) }
        tail.withUnsafeBufferPointer { bytes in
            for start in stride(from: 0, to: tail.count, by: Self.blockBytes) {
                compress(&state, &schedule, bytes, start)
            }
        }
        var digest: [UInt8] = []
        digest.reserveCapacity(state.count * Self.wordBytes)
        for word in state {
            for i in stride(from: Word.bitWidth - 8, through: 0, by: -8) {
                digest.append(UInt8(truncatingIfNeeded: word &>> Word(i)))
            }
        }
        return digest
    }

    @inline(__always) private func rotr(_ x: Word, _ n: Int) -> Word {
        (x &>> Word(n)) | (x &<< Word(Word.bitWidth - n))
    }

    /// Runs one block (at `start` in `bytes`) through the compression function.
    private func compress(_ state: inout [Word], _ w: inout [Word], _ bytes: UnsafeBufferPointer<UInt8>, _ start: Int) {
        for t in 0..<16 {
            var word: Word = 0
            for j in 0..<Self.wordBytes { word = word &<< 8 | Word(bytes[start + t * Self.wordBytes + j]) }
            w[t] = word
        }
        for t in 16..<k.count {
            let a = w[t - 15], b = w[t - 2]
            let s0 = rotr(a, sigma0.0) ^ rotr(a, sigma0.1) ^ (a &>> Word(sigma0.2))
            let s1 = rotr(b, sigma1.0) ^ rotr(b, sigma1.1) ^ (b &>> Word(sigma1.2))
            w[t] = w[t - 16] &+ s0 &+ w[t - 7] &+ s1
        }
        var a = state[0], b = state[1], c = state[2], d = state[3]
        var e = state[4], f = state[5], g = state[6], h = state[7]
        for t in 0..<k.count {
            let s1 = rotr(e, sum1.0) ^ rotr(e, sum1.1) ^ rotr(e, sum1.2)
            let choose = (e & f) ^ (~e & g)
            let t1 = h &+ s1 &+ choose &+ k[t] &+ w[t]
            let s0 = rotr(a, sum0.0) ^ rotr(a, sum0.1) ^ rotr(a, sum0.2)
            let majority = (a & b) ^ (a & c) ^ (b & c)
            let t2 = s0 &+ majority
            h = g; g = f; f = e; e = d &+ t1
            d = c; c = b; b = a; a = t1 &+ t2
        }
        state[0] &+= a; state[1] &+= b; state[2] &+= c; state[3] &+= d
        state[4] &+= e; state[5] &+= f; state[6] &+= g; state[7] &+= h
    }
}

/// The digests Sluice uses: scripts' `sha256`/`sha512`, flow hashes, result-cache keys.
public enum Digest {
    public static let sha256 = SHA2<UInt32>(
        initial: [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19],
        k: [
            0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
            0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
            0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
            0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
            0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
            0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
            0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
            0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
        ],
        sum0: (2, 13, 22), sum1: (6, 11, 25), sigma0: (7, 18, 3), sigma1: (17, 19, 10))

    public static let sha512 = SHA2<UInt64>(
        initial: [
            0x6a09e667f3bcc908, 0xbb67ae8584caa73b, 0x3c6ef372fe94f82b, 0xa54ff53a5f1d36f1,
            0x510e527fade682d1, 0x9b05688c2b3e6c1f, 0x1f83d9abfb41bd6b, 0x5be0cd19137e2179,
        ],
        k: [
            0x428a2f98d728ae22, 0x7137449123ef65cd, 0xb5c0fbcfec4d3b2f, 0xe9b5dba58189dbbc,
            0x3956c25bf348b538, 0x59f111f1b605d019, 0x923f82a4af194f9b, 0xab1c5ed5da6d8118,
            0xd807aa98a3030242, 0x12835b0145706fbe, 0x243185be4ee4b28c, 0x550c7dc3d5ffb4e2,
            0x72be5d74f27b896f, 0x80deb1fe3b1696b1, 0x9bdc06a725c71235, 0xc19bf174cf692694,
            0xe49b69c19ef14ad2, 0xefbe4786384f25e3, 0x0fc19dc68b8cd5b5, 0x240ca1cc77ac9c65,
            0x2de92c6f592b0275, 0x4a7484aa6ea6e483, 0x5cb0a9dcbd41fbd4, 0x76f988da831153b5,
            0x983e5152ee66dfab, 0xa831c66d2db43210, 0xb00327c898fb213f, 0xbf597fc7beef0ee4,
            0xc6e00bf33da88fc2, 0xd5a79147930aa725, 0x06ca6351e003826f, 0x142929670a0e6e70,
            0x27b70a8546d22ffc, 0x2e1b21385c26c926, 0x4d2c6dfc5ac42aed, 0x53380d139d95b3df,
            0x650a73548baf63de, 0x766a0abb3c77b2a8, 0x81c2c92e47edaee6, 0x92722c851482353b,
            0xa2bfe8a14cf10364, 0xa81a664bbc423001, 0xc24b8b70d0f89791, 0xc76c51a30654be30,
            0xd192e819d6ef5218, 0xd69906245565a910, 0xf40e35855771202a, 0x106aa07032bbd1b8,
            0x19a4c116b8d2d0c8, 0x1e376c085141ab53, 0x2748774cdf8eeb99, 0x34b0bcb5e19b48a8,
            0x391c0cb3c5c95a63, 0x4ed8aa4ae3418acb, 0x5b9cca4f7763e373, 0x682e6ff3d6b2b8a3,
            0x748f82ee5defb2fc, 0x78a5636f43172f60, 0x84c87814a1f0ab72, 0x8cc702081a6439ec,
            0x90befffa23631e28, 0xa4506cebde82bde9, 0xbef9a3f7b2c67915, 0xc67178f2e372532b,
            0xca273eceea26619c, 0xd186b8c721c0c207, 0xeada7dd6cde0eb1e, 0xf57d4f7fee6ed178,
            0x06f067aa72176fba, 0x0a637dc5a2c898a6, 0x113f9804bef90dae, 0x1b710b35131c471b,
            0x28db77f523047d84, 0x32caab7b40c72493, 0x3c9ebe0a15c9bebc, 0x431d67c49c100d4c,
            0x4cc5d4becb3e42b6, 0x597f299cfc657e2a, 0x5fcb6fab3ad6faec, 0x6c44198c4a475817,
        ],
        sum0: (28, 34, 39), sum1: (14, 18, 41), sigma0: (1, 8, 7), sigma1: (19, 61, 6))

    public static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 2)
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}

extension Digest {
    /// The SHA-256 of `bytes` as 64 lowercase hex digits.
    public static func sha256Hex(_ bytes: [UInt8]) -> String { hex(sha256.hash(bytes)) }
}

extension Digest {
    /// HMAC-SHA256 (RFC 2104) of `message` under `key`.
    public static func hmacSHA256(key: [UInt8], message: [UInt8]) -> [UInt8] {
        let blockSize = 64
        var k = key.count > blockSize ? sha256.hash(key) : key
        k += [UInt8](repeating: 0, count: blockSize - k.count)
        let inner = sha256.hash(k.map { $0 ^ 0x36 } + message)
        return sha256.hash(k.map { $0 ^ 0x5c } + inner)
    }

    /// Whether two byte strings are equal, taking the same time wherever they differ (for
    /// comparing secrets: signatures, tokens, passwords).
    public static func constantTimeEquals(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var diff = UInt8(truncatingIfNeeded: a.count ^ b.count)
        for i in 0..<max(a.count, b.count) {
            diff |= (i < a.count ? a[i] : 0) ^ (i < b.count ? b[i] : 0)
        }
        return diff == 0
    }
}
