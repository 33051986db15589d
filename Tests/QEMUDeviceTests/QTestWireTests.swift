import DeviceBus
import QEMUDevice
import Testing

@Suite struct QTestWireTests {
    @Test func commandsAreQEMUsLines() {
        #expect(QTestCommand.read(port: 0xC000, width: .byte).line == "inb 0xc000")
        #expect(QTestCommand.read(port: 0xC010, width: .word).line == "inw 0xc010")
        #expect(QTestCommand.write(port: 0xCF8, width: .dword, value: 0x8000_1810).line == "outl 0xcf8 0x80001810")
        #expect(QTestCommand.write(port: 0xC000, width: .byte, value: 0x1_21).line == "outb 0xc000 0x21", "masked to the width")
        #expect(QTestCommand.interceptInterrupts(path: "ioapic").line == "irq_intercept_in ioapic")
    }

    @Test func repliesAndInterruptsParse() throws {
        #expect(try QTestMessage.parse("OK") == .ok(value: nil))
        #expect(try QTestMessage.parse("OK 0x802910ec") == .ok(value: 0x8029_10EC))
        #expect(try QTestMessage.parse("FAIL Unknown command 'x'") == .fail("Unknown command 'x'"))
        #expect(try QTestMessage.parse("IRQ raise 11") == .interrupt(line: 11, raised: true))
        #expect(try QTestMessage.parse("IRQ lower 11") == .interrupt(line: 11, raised: false))
    }

    @Test(arguments: ["", "OK 12", "OK 0x", "OK 0xZZ", "OK 0x1 0x2", "IRQ raise", "IRQ up 3", "IRQ raise -1", "hello",
                      "OK 0x1ffffffffffffffff"])
    func garbageIsAnErrorNeverATrap(line: String) {
        #expect(throws: QTestMessage.ParseError.self) { try QTestMessage.parse(line) }
    }

    @Test func configAddresses() {
        #expect(PCIConfigCycle.address(slot: 3, register: 0x10) == 0x8000_1810)
        #expect(PCIConfigCycle.address(slot: 1, function: 0, register: 0x62) == 0x8000_0860)
    }
}
