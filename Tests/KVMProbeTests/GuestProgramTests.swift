import Testing
@testable import KVMProbe

@Suite struct GuestProgramTests {
    @Test func ioLoopAssemblesToTheDocumentedBytes() {
        // out dx,al ; in al,dx ; loop -4 (back to the out) ; hlt
        #expect(GuestProgram.ioLoop.bytes == [0xEE, 0xEC, 0xE2, 0xFC, 0xF4])
        #expect(GuestProgram.ioLoop.outOffset == 0)
        #expect(GuestProgram.ioLoop.inOffset == 1)
    }

    @Test func loopDisplacementCountsFromTheNextInstruction() {
        let forward = GuestProgram(assembling: [.loop(to: 3), .hlt, .hlt], outOffset: 0, inOffset: 0)
        #expect(forward.bytes == [0xE2, 0x01, 0xF4, 0xF4])
        let toItself = GuestProgram(assembling: [.hlt, .loop(to: 1)], outOffset: 0, inOffset: 0)
        #expect(toItself.bytes == [0xF4, 0xE2, 0xFE])
    }

    @Test(arguments: [(1, 1, 1), (2, 0, 1), (5, 1, 3), (20000, 0, 10000), (21001, 1, 10501)])
    func entryMakesExactlyTheRequestedExits(exits: Int, offset: Int, iterations: UInt32) {
        let entry = GuestProgram.ioLoop.entry(forExits: exits)
        #expect(entry == .init(offset: offset, iterations: iterations))
        // Starting at the `in` skips one of the 2 exits per iteration.
        #expect(Int(entry.iterations) * 2 - (entry.offset == GuestProgram.ioLoop.inOffset ? 1 : 0) == exits)
    }

    @Test func spreadTakesMedianMinMax() {
        let odd = ExitCostReport.Spread([3, 1, 2])
        #expect((odd.median, odd.min, odd.max) == (2, 1, 3))
        #expect(odd.batches == [3, 1, 2])
        #expect(ExitCostReport.Spread([4, 1, 2, 3]).median == 2.5)
    }
}
