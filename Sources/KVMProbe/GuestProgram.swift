/// The guest's code: a loop of one-byte port accesses that ends in HLT.
///
/// ```
/// top:  out dx, al     ; EE      exit 1: user space sees AL
///       in  al, dx     ; EC      exit 2: user space answers AL
///       loop top       ; E2 FC   ECX -= 1, back to top while ECX != 0
///       hlt            ; F4      the end: one KVM_EXIT_HLT
/// ```
///
/// Each iteration makes two exits, and the `out` sends back the value the preceding `in` was
/// answered with, so user space can check the guest really ran on its answers. The counts come in
/// through registers (`entry(forExits:)`), so one program serves any number of exits: an odd
/// number starts at the `in`, skipping the first `out`.
public struct GuestProgram: Equatable, Sendable {
    /// The x86 instructions the loop uses (32-bit protected mode encodings).
    public enum Instruction: Equatable, Sendable {
        /// `out dx, al`
        case outDXAL
        /// `in al, dx`
        case inALDX
        /// `loop` to an absolute program offset (ECX-counted in a 32-bit code segment).
        case loop(to: Int)
        /// `hlt`
        case hlt

        var length: Int {
            switch self {
            case .outDXAL, .inALDX, .hlt: 1
            case .loop: 2
            }
        }
    }

    /// Where each run starts and what ECX holds.
    public struct Entry: Equatable, Sendable {
        /// Program offset of the first instruction executed.
        public var offset: Int
        /// Iterations of the loop (ECX).
        public var iterations: UInt32
    }

    /// The encoded program.
    public let bytes: [UInt8]
    /// Offsets of the loop's `out` and `in`.
    public let outOffset: Int
    public let inOffset: Int

    /// The exit-cost loop.
    public static let ioLoop = GuestProgram(
        assembling: [.outDXAL, .inALDX, .loop(to: 0), .hlt], outOffset: 0, inOffset: 1)

    /// Encodes `instructions`; a `loop` target must lie within a rel8 jump of the next instruction.
    public init(assembling instructions: [Instruction], outOffset: Int, inOffset: Int) {
        var bytes: [UInt8] = []
        for instruction in instructions {
            switch instruction {
            case .outDXAL: bytes.append(0xEE)
            case .inALDX: bytes.append(0xEC)
            case .hlt: bytes.append(0xF4)
            case .loop(let target):
                // rel8 counts from the end of the 2-byte instruction.
                let displacement = target - (bytes.count + instruction.length)
                precondition((-128...127).contains(displacement), "loop target out of rel8 range")
                bytes += [0xE2, UInt8(bitPattern: Int8(displacement))]
            }
        }
        self.bytes = bytes
        self.outOffset = outOffset
        self.inOffset = inOffset
    }

    /// Where to start and how many iterations make exactly `exits` port exits (`exits` ≥ 1).
    public func entry(forExits exits: Int) -> Entry {
        precondition(exits >= 1 && exits <= 2 * Int(UInt32.max), "exit count out of range")
        return Entry(offset: exits.isMultiple(of: 2) ? outOffset : inOffset, iterations: UInt32((exits + 1) / 2))
    }
}
