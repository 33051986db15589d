import CLibBPF
import Glibc

/// An ELF object file read with libelf and copied into Swift values: every section (name, header,
/// bytes) and the symbols of its symbol table.
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

    let sections: [Section]
    /// The symbols of the first SHT_SYMTAB section; nil when there is none (a stripped object).
    let symbols: [Symbol]?
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
        compression = .none
    }

    /// Every section and the first symbol table of an open libelf handle.
    @unsafe private static func parse(_ elf: OpaquePointer, path: String) throws(ScanError) -> (sections: [Section], symbols: [Symbol]?) {
        guard unsafe elf_kind(elf) == ELF_K_ELF else { throw .notELF(path: path, reason: "not an ELF file") }
        var names = 0
        guard unsafe elf_getshdrstrndx(elf, &names) == 0 else { throw .notELF(path: path, reason: Self.lastError) }
        var sections: [Section] = []
        var symbols: [Symbol]?
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
        }
        return (sections, symbols)
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

    /// The `count` entries of a symbol table, named from string table `names`.
    @unsafe private static func symbols(_ data: UnsafeMutablePointer<Elf_Data>, count: Int, _ elf: OpaquePointer, names: Int) -> [Symbol] {
        (0..<count).compactMap { index in
            var symbol = GElf_Sym()
            guard unsafe gelf_getsym(data, Int32(index), &symbol) != nil else { return nil }
            return Symbol(name: unsafe string(elf, section: names, offset: Int(symbol.st_name)), info: symbol.st_info,
                          section: Int(symbol.st_shndx), value: Int(symbol.st_value), size: Int(symbol.st_size))
        }
    }
}
