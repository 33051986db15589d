import CLibBPF
import CVPIOAgentShim

/// What kind of port access a probe site is (mirrors VPIO_SITE_* in guest-agent/bpf/vpio_agent.h).
public enum SiteKind: UInt8, Sendable, CustomStringConvertible {
    case portIn = 1, portOut = 2, stringIn = 3, stringOut = 4, afterIn = 5
    /// A call (or tail jump) to the kernel's `ioreadN` / `iowriteN`.
    case callRead = 6, callWrite = 7

    public var description: String {
        switch self {
        case .portIn: "in"
        case .portOut: "out"
        case .stringIn: "ins"
        case .stringOut: "outs"
        case .afterIn: "post"
        case .callRead: "call-read"
        case .callWrite: "call-write"
        }
    }

    /// Whether a hit at this site is a device access (the post site only reads the value).
    public var isAccess: Bool { self != .afterIn }
}

/// One place to attach the kprobe: a module function and an offset into it.
public struct ProbeSite: Sendable, Equatable {
    /// The bpf cookie and index into the BPF `sites` table.
    public var id: Int = 0
    /// The kernel's module name (`ne2k_pci`, `8390`).
    public var module: String
    public var function: String
    /// Offset from the function's start (preferred candidate: with its prefixes).
    public var offset: Int
    /// Further offsets to try when the kernel says `offset` is inside an instruction (EILSEQ): the
    /// bytes taken as prefixes may belong to the previous instruction.
    public var fallbackOffsets: [Int] = []
    public var section: String
    public var kind: SiteKind
    /// Bytes per access: 1, 2 or 4.
    public var width: Int
    /// A rep string op (the count is in cx).
    public var rep: Bool
    /// Inside a `.cold` part of a function: the kernel refuses to probe it.
    public var cold: Bool
    /// For an `in`, the id of its post site; for a post site, the id of its `in`.
    public var pair: Int?

    /// `module:function+0xoff`.
    public var label: String { "\(module):\(function)+0x\(String(offset, radix: 16))" }
}

/// Errors from reading a module file.
public enum ScanError: Error, CustomStringConvertible {
    case open(path: String, errno: Int32)
    case notELF(path: String, reason: String)
    case noSymbols(path: String)

    public var description: String {
        switch self {
        case let .open(path, e): "cannot open \(path): \(errnoText(e))"
        case let .notELF(path, reason): "\(path) is not a readable ELF object: \(reason)"
        case let .noSymbols(path): "\(path) has no .symtab (stripped module?): cannot name functions"
        }
    }
}

/// Finds candidate port-I/O sites in a kernel module's executable sections with libelf.
///
/// Without a disassembler, a candidate is an `in`/`out` (dx forms, 0xEC–0xEF) or a `rep ins`/`rep outs`
/// (0xF3 with 0x6C–0x6F), with an operand-size prefix 0x66 where it fits, inside a function symbol. A byte
/// that only looks like one (part of a displacement or an immediate) sits inside another instruction; the
/// kernel decodes the function and refuses such an offset with EILSEQ, so the attach step is the validator.
public enum SiteScanner {
    /// A candidate site in one module, before ids are assigned.
    public struct ModuleScan: Sendable {
        public var module: String
        public var path: String
        public var sites: [ProbeSite]
        /// Executable sections scanned and skipped (init/exit code is gone or never runs I/O).
        public var scannedSections: [String]
        public var skippedSections: [String]
        /// `srcversion=` from .modinfo, to compare with /sys/module/<name>/srcversion.
        public var srcversion: String?
        /// `vermagic=` from .modinfo (its first word is the kernel release the module was built for).
        public var vermagic: String?
        /// How the file was stored.
        public var compression: ModuleImage.Compression = .none
    }

    /// Kernel module name for a .ko file name: `ne2k-pci.ko` → `ne2k_pci`.
    public static func moduleName(forFile path: String) -> String {
        var base = path.split(separator: "/").last.map(String.init) ?? path
        for suffix in [".ko", ".ko.xz", ".ko.zst", ".ko.gz"] where base.hasSuffix(suffix) {
            base = String(base.dropLast(suffix.count))
            break
        }
        return String(base.map { $0 == "-" ? "_" : $0 })
    }

    /// Where a driver's device accesses are: its own port instructions (ne2k-pci, 8390), or its calls
    /// to the kernel's iomap accessors (8139too, which has no port instruction at all).
    public enum Source: Sendable {
        case portInstructions, accessorCalls
    }

    /// The kernel's iomap accessors a driver calls, with the width of each access.
    public static let accessors: [String: (kind: SiteKind, width: Int)] = [
        "ioread8": (.callRead, 1), "ioread16": (.callRead, 2), "ioread32": (.callRead, 4),
        "iowrite8": (.callWrite, 1), "iowrite16": (.callWrite, 2), "iowrite32": (.callWrite, 4),
    ]

    /// Scans one module file.
    public static func scan(path: String, module: String? = nil, source: Source = .portInstructions) throws -> ModuleScan {
        let elf = try ELFObject(path: path)
        guard let symbols = elf.symbols else { throw ScanError.noSymbols(path: path) }
        // Function symbols per section index: (start, size, name).
        var functions: [Int: [(start: Int, size: Int, name: String)]] = [:]
        for symbol in symbols where symbol.info & 0xf == UInt8(STT_FUNC) && symbol.section != 0 && symbol.section < 0xff00 {
            functions[symbol.section, default: []].append((symbol.value, symbol.size, symbol.name))
        }

        var result = ModuleScan(module: module ?? moduleName(forFile: path), path: path, sites: [],
                                scannedSections: [], skippedSections: [], srcversion: nil)
        result.compression = elf.compression
        if let modinfo = elf.sections.first(where: { $0.name == ".modinfo" }) {
            for entry in modinfo.bytes.split(separator: 0) {
                let text = String(decoding: entry, as: UTF8.self)
                if text.hasPrefix("srcversion=") { result.srcversion = String(text.dropFirst("srcversion=".count)) }
                if text.hasPrefix("vermagic=") { result.vermagic = String(text.dropFirst("vermagic=".count)) }
            }
        }
        for section in elf.sections where section.header.sh_type == SHT_PROGBITS && section.header.sh_flags & UInt64(SHF_EXECINSTR) != 0 {
            if section.name.hasPrefix(".init") || section.name.hasPrefix(".exit") {
                result.skippedSections.append(section.name)
                continue
            }
            result.scannedSections.append(section.name)
            let funcs = (functions[section.index] ?? []).sorted { $0.start < $1.start }
            switch source {
            case .portInstructions:
                result.sites += candidates(in: section.bytes, functions: funcs, section: section.name, module: result.module)
            case .accessorCalls:
                let references = elf.relocations.filter { $0.section == section.index }.map { (offset: $0.offset, type: $0.type, symbol: $0.symbol) }
                result.sites += accessorCalls(references, in: section.bytes, functions: funcs, section: section.name, module: result.module)
            }
        }
        return result
    }

    /// The calls and tail jumps to an iomap accessor in one section (pure; exposed for tests). A direct
    /// `call`/`jmp rel32` (0xE8/0xE9) to a symbol outside the module is a PC-relative relocation
    /// (R_X86_64_PLT32 or PC32) at the byte after the opcode; the site is the opcode, where the
    /// arguments are in place: ioreadN(addr in di), iowriteN(value in di, addr in si).
    public static func accessorCalls(
        _ relocations: [(offset: Int, type: UInt32, symbol: String)], in bytes: [UInt8],
        functions: [(start: Int, size: Int, name: String)], section: String, module: String
    ) -> [ProbeSite] {
        let pcRelative: Set<UInt32> = [2, 4] // R_X86_64_PC32, R_X86_64_PLT32
        return relocations.sorted { $0.offset < $1.offset }.compactMap { reference in
            guard let accessor = accessors[reference.symbol], pcRelative.contains(reference.type) else { return nil }
            let opcode = reference.offset - 1
            guard opcode >= 0, opcode < bytes.count, bytes[opcode] == 0xE8 || bytes[opcode] == 0xE9,
                  let function = functions.first(where: { $0.start <= opcode && opcode < $0.start + $0.size }) else { return nil }
            return ProbeSite(module: module, function: function.name, offset: opcode - function.start, section: section,
                             kind: accessor.kind, width: accessor.width, rep: false, cold: function.name.contains(".cold"), pair: nil)
        }
    }

    /// The candidate sites in one section's bytes (pure; exposed for tests).
    public static func candidates(
        in bytes: [UInt8], functions: [(start: Int, size: Int, name: String)], section: String, module: String
    ) -> [ProbeSite] {
        var sites: [ProbeSite] = []
        for function in functions where function.size > 0 {
            let end = min(function.start + function.size, bytes.count)
            guard function.start < end else { continue }
            var i = function.start
            while i < end {
                let opcode = bytes[i]
                let isPort = (0xEC...0xEF).contains(opcode)
                let isString = (0x6C...0x6F).contains(opcode)
                guard isPort || isString else { i += 1; continue }
                // Up to two prefixes before the opcode, inside the function: 0x66 (operand size), 0xF3 (rep).
                var prefixes: [UInt8] = []
                var j = i - 1
                while j >= function.start, prefixes.count < 2, bytes[j] == 0x66 || bytes[j] == 0xF3, !prefixes.contains(bytes[j]) {
                    prefixes.insert(bytes[j], at: 0)
                    j -= 1
                }
                let operand16 = prefixes.contains(0x66)
                let rep = prefixes.contains(0xF3)
                let kind: SiteKind
                let width: Int
                switch opcode {
                case 0xEC: kind = .portIn; width = 1
                case 0xED: kind = .portIn; width = operand16 ? 2 : 4
                case 0xEE: kind = .portOut; width = 1
                case 0xEF: kind = .portOut; width = operand16 ? 2 : 4
                case 0x6C: kind = .stringIn; width = 1
                case 0x6D: kind = .stringIn; width = operand16 ? 2 : 4
                case 0x6E: kind = .stringOut; width = 1
                default: kind = .stringOut; width = operand16 ? 2 : 4
                }
                // A byte-wide port op takes no prefix; a string op here is always rep (insl/outsl(port, buf, n)).
                let usable: [UInt8] = (opcode == 0xEC || opcode == 0xEE) ? [] : prefixes
                if isString && !rep { i += 1; continue }
                let start = i - usable.count
                var fallbacks: [Int] = []
                if !usable.isEmpty {
                    // Offsets with fewer prefixes, when the first bytes turn out to end the previous instruction.
                    for k in stride(from: usable.count - 1, through: 0, by: -1) {
                        let kept = Array(usable.suffix(k))
                        if isString && !kept.contains(0xF3) { continue }
                        fallbacks.append(i - k - function.start)
                    }
                }
                let cold = function.name.contains(".cold")
                let site = ProbeSite(module: module, function: function.name, offset: start - function.start,
                                     fallbackOffsets: fallbacks, section: section, kind: kind,
                                     width: width, rep: isString, cold: cold, pair: nil)
                sites.append(site)
                if kind == .portIn, i + 1 < end {
                    var post = site
                    post.kind = .afterIn
                    post.offset = i + 1 - function.start
                    post.fallbackOffsets = []
                    sites.append(post)
                }
                i += 1
            }
        }
        return sites
    }

    /// Numbers the sites of several modules (ids = bpf cookies) and links each `in` with its post site.
    public static func assignIDs(_ scans: [ModuleScan]) -> [ProbeSite] {
        var all: [ProbeSite] = []
        for scan in scans {
            for var site in scan.sites {
                site.id = all.count
                if site.kind == .afterIn, let last = all.last, last.kind == .portIn, last.function == site.function {
                    site.pair = last.id
                    all[all.count - 1].pair = site.id
                }
                all.append(site)
            }
        }
        return all
    }
}
