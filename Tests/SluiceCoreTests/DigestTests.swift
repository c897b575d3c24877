import SluiceCore
import Testing

@Suite("Digests")
struct DigestTests {
    @Test("HMAC-SHA256 matches RFC 4231 test cases 1, 2 and 6 (a key longer than a block)")
    func hmac() {
        let case1 = Digest.hmacSHA256(key: [UInt8](repeating: 0x0b, count: 20), message: Array("Hi There".utf8))
        #expect(Digest.hex(case1) == "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")
        let case2 = Digest.hmacSHA256(key: Array("Jefe".utf8), message: Array("what do ya want for nothing?".utf8))
        #expect(Digest.hex(case2) == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        let case6 = Digest.hmacSHA256(key: [UInt8](repeating: 0xaa, count: 131),
                                      message: Array("Test Using Larger Than Block-Size Key - Hash Key First".utf8))
        #expect(Digest.hex(case6) == "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54")
    }

    @Test("Constant-time comparison: equal, different, and different lengths")
    func constantTime() {
        #expect(Digest.constantTimeEquals(Array("abc".utf8), Array("abc".utf8)))
        #expect(!Digest.constantTimeEquals(Array("abc".utf8), Array("abd".utf8)))
        #expect(!Digest.constantTimeEquals(Array("abc".utf8), Array("abcd".utf8)))
        #expect(!Digest.constantTimeEquals([], Array("a".utf8)))
        #expect(Digest.constantTimeEquals([], []))
    }
}
