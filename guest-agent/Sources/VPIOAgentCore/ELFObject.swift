import CLibBPF
import Glibc

/// An ELF object file read with libelf and copied into Swift values: every section (name, header,
/// bytes), the symbols of its symbol table and the relocations with addends (SHT_RELA).
///
/// `@safe`: the libelf handle lives only inside `init(bytes:path:)`; every pointer libelf returns
/// (sections, their data, strings) is copied before `elf_end` releases it.
struct ELFObject {
    struct Section {
        var index: Int
        var name: String
        var header: GElf_Shdr
        /// The section's contents (empty for SHT_NOBITS).
        var bytes: [UInt8]
    }

    struct Symbol {
        var name: String
        /// st_info, st_shndx, st_value and st_size of the symbol.
        var info: UInt8
        var section: Int
        var value: Int
        var size: Int
    }

    /// One SHT_RELA entry: where in section `section` a reference to symbol `symbol` is patched.
    struct Relocation {
        var section: Int
        var offset: Int
        /// ELF64_R_TYPE (R_X86_64_*).
        var type: UInt32
        /// The name of the symbol it refers to (empty when the index is outside the symbol table).
        var symbol: String
    }

    let sections: [Section]
    /// The symbols of the first SHT_SYMTAB section; nil when there is none (a stripped object).
    let symbols: [Symbol]?
    let relocations: [Relocation]
    /// How the file was stored (`none` for an image given in memory).
    private(set) var compression: ModuleImage.Compression

    /// Reads `path`, decompressing it first when it is a compressed module (`ModuleImage`).
    init(path: String) throws(ScanError) {
        let image = try ModuleImage.read(path: path)
        try self.init(bytes: image.bytes, path: path)
        compression = image.compression
    }

    /// Parses an ELF image held in memory; `path` names it in errors.
    init(bytes: [UInt8], path: String) throws(ScanError) {
        var image = bytes
        _ = elf_version(UInt32(EV_CURRENT))
        // SAFETY: libelf reads the image in place (ELF_C_READ_MMAP semantics of elf_memory) only while
        // the closure runs: `image` is a local copy nothing else touches, and everything parsed is
        // copied into Swift values before elf_end at the closure's end.
        let parsed = try unsafe image.withUnsafeMutableBufferPointer { buffer throws(ScanError) in
            try unsafe buffer.baseAddress!.withMemoryRebound(to: CChar.self, capacity: buffer.count) { start throws(ScanError) in
                guard let elf = unsafe elf_memory(start, buffer.count) else { throw ScanError.notELF(path: path, reason: Self.lastError) }
                defer { _ = unsafe elf_end(elf) }
                return try unsafe Self.parse(elf, path: path)
            }
        }
        sections = parsed.sections
        symbols = parsed.symbols
        relocations = parsed.relocations
        compression = .none
    }

    /// Every section and the first symbol table of an open libelf handle.
    @unsafe private static func parse(_ elf: OpaquePointer, path: String) throws(ScanError)
        -> (sections: [Section], symbols: [Symbol]?, relocations: [Relocation]) {
        guard unsafe elf_kind(elf) == ELF_K_ELF else { throw .notELF(path: path, reason: "not an ELF file") }
        var names = 0
        guard unsafe elf_getshdrstrndx(elf, &names) == 0 else { throw .notELF(path: path, reason: Self.lastError) }
        var sections: [Section] = []
        var symbols: [Symbol]?
        var rela: [(header: GElf_Shdr, data: UnsafeMutablePointer<Elf_Data>)] = unsafe []
        var scn: OpaquePointer? = nil
        while let next = unsafe elf_nextscn(elf, scn) {
            unsafe scn = next
            var header = GElf_Shdr()
            guard unsafe gelf_getshdr(next, &header) != nil else { continue }
            let data = unsafe elf_getdata(next, nil)
            let name = unsafe Self.string(elf, section: names, offset: Int(header.sh_name))
            sections.append(Section(index: unsafe elf_ndxscn(next), name: name, header: header, bytes: unsafe Self.bytes(of: data)))
            if symbols == nil, header.sh_type == SHT_SYMTAB, header.sh_entsize > 0, let data = unsafe data {
                symbols = unsafe Self.symbols(data, count: Int(header.sh_size / header.sh_entsize), elf, names: Int(header.sh_link))
            }
            if header.sh_type == SHT_RELA, header.sh_entsize > 0, let data = unsafe data { unsafe rela.append((header, data)) }
        }
        // After the loop: a relocation section may come before the symbol table it names.
        let relocations = unsafe rela.flatMap { unsafe Self.relocations($0.data, $0.header, symbols: symbols ?? []) }
        return (sections, symbols, relocations)
    }

    /// The entries of one SHT_RELA section, with their symbols' names.
    @unsafe private static func relocations(_ data: UnsafeMutablePointer<Elf_Data>, _ header: GElf_Shdr, symbols: [Symbol]) -> [Relocation] {
        (0..<Int(header.sh_size / header.sh_entsize)).compactMap { index in
            var entry = GElf_Rela()
            guard unsafe gelf_getrela(data, Int32(index), &entry) != nil else { return nil }
            let symbol = Int(entry.r_info >> 32)
            return Relocation(section: Int(header.sh_info), offset: Int(entry.r_offset), type: UInt32(truncatingIfNeeded: entry.r_info),
                              symbol: symbol < symbols.count ? symbols[symbol].name : "")
        }
    }

    /// libelf's message for its last error.
    private static var lastError: String {
        // SAFETY: elf_errmsg returns a static NUL-terminated string (or NULL); it is copied at once.
        unsafe elf_errmsg(-1).map { unsafe String(cString: $0) } ?? "unknown libelf error"
    }

    /// The NUL-terminated string at `offset` of string table `section`; empty if there is none.
    @unsafe private static func string(_ elf: OpaquePointer, section: Int, offset: Int) -> String {
        unsafe elf_strptr(elf, section, offset).map { unsafe String(cString: $0) } ?? ""
    }

    /// A copy of a section's data (d_size bytes at d_buf), empty without data.
    @unsafe private static func bytes(of data: UnsafeMutablePointer<Elf_Data>?) -> [UInt8] {
        guard let data = unsafe data, let buffer = unsafe data.pointee.d_buf else { return [] }
        return unsafe Array(UnsafeRawBufferPointer(start: buffer, count: data.pointee.d_size))
    }

    /// The `count` entries of a symbol table, named from string table `names` (index for index: an
    /// entry libelf cannot read stays, unnamed, so relocations' symbol indexes keep pointing right).
    @unsafe private static func symbols(_ data: UnsafeMutablePointer<Elf_Data>, count: Int, _ elf: OpaquePointer, names: Int) -> [Symbol] {
        (0..<count).map { index in
            var symbol = GElf_Sym()
            guard unsafe gelf_getsym(data, Int32(index), &symbol) != nil else { return Symbol(name: "", info: 0, section: 0, value: 0, size: 0) }
            return Symbol(name: unsafe string(elf, section: names, offset: Int(symbol.st_name)), info: symbol.st_info,
                          section: Int(symbol.st_shndx), value: Int(symbol.st_value), size: Int(symbol.st_size))
        }
    }
}
