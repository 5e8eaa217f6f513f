import Testing
import TensorCore

@Suite struct HostileInputTests {
    @Test func terminalEscaping() {
        #expect("plain café ✓".escapedForTerminal == "plain café ✓")
        #expect("a\u{1B}[2Jb".escapedForTerminal == "a\\u{1B}[2Jb")
        #expect("x\nError: forged".escapedForTerminal == "x\\u{A}Error: forged")
        #expect("\u{9B}31m\u{7F}\u{202E}".escapedForTerminal == "\\u{9B}31m\\u{7F}\\u{202E}")
        let once = "\u{1B}\\u{1B}".escapedForTerminal
        #expect(once.escapedForTerminal == once)
        #expect(!once.unicodeScalars.contains(where: String.needsTerminalEscape))
    }

    @Test func checkedProductsAreOrderIndependent() throws {
        let big = 1 << 62
        #expect(try SizeLimits.product([0, big, big], what: "t") == 0)
        #expect(try SizeLimits.product([big, big, 0], what: "t") == 0)
        #expect(throws: TernaryKitError.self) { try SizeLimits.product([big, big, 1], what: "t") }
        #expect(throws: TernaryKitError.self) { try SizeLimits.product([1, -1], what: "t") }
        #expect(throws: TernaryKitError.self) { try SizeLimits.sum(.max, 1, what: "t") }
        #expect(throws: TernaryKitError.self) { try SizeLimits.bytes(count: 1 << 50, elementSize: 4, what: "t") }
        #expect(try SizeLimits.bytes(count: 1024, elementSize: 4, what: "t") == 4096)
    }

    @Test func threadCountsAreBounded() {
        #expect(throws: TernaryKitError.self) { try ComputeContext(threads: .max) }
        #expect(throws: TernaryKitError.self) { try ComputeContext(threads: 0) }
        #expect(throws: Never.self) { try ComputeContext(threads: ComputeContext.maximumThreads) }
    }
}
