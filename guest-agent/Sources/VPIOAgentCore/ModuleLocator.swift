/// Finds a module's file the way `modinfo NAME` does: through `modules.dep` of the running kernel
/// (`/lib/modules/<release>/modules.dep`, which depmod writes and every distribution ships), in
/// whatever compression the distribution stores it. Without a modules.dep (the VPIO test initramfs),
/// the driver's directory in the kernel tree, then `/lib/modules/NAME.ko`.
public struct ModuleLocator: Sendable {
    public var root: String
    public var release: String
    /// Tells whether a path can be read (injected so the lookup order is testable).
    var readable: @Sendable (String) -> Bool

    public init(root: String = "/lib/modules", release: String, readable: @escaping @Sendable (String) -> Bool = { fileExists($0) }) {
        self.root = root
        self.release = release
        self.readable = readable
    }

    /// The extensions kmod accepts for a module file.
    public static let extensions = [".ko", ".ko.xz", ".ko.zst", ".ko.gz"]

    /// A module's name as the kernel spells it: `ne2k-pci` → `ne2k_pci`.
    public static func normalized(_ name: String) -> String { String(name.map { $0 == "-" ? "_" : $0 }) }

    /// Module name → path (relative to the release directory) from modules.dep text: each line is
    /// `PATH: DEPENDENCY...`, the name being PATH's file name without its module extension.
    public static func index(modulesDep text: String) -> [String: String] {
        var index: [String: String] = [:]
        for line in text.split(separator: "\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let path = String(line[..<colon])
            let name = SiteScanner.moduleName(forFile: path)
            if index[name] == nil { index[name] = path }
        }
        return index
    }

    /// The file of module `name`, or an error that says where it looked.
    public func locate(_ name: String, modulesDep: String?) throws(AgentLookupError) -> String {
        let releaseDirectory = "\(root)/\(release)"
        if let modulesDep {
            guard let relative = Self.index(modulesDep: modulesDep)[Self.normalized(name)] else {
                throw AgentLookupError("\(name) is not in \(releaseDirectory)/modules.dep (built into the kernel, or not installed?); pass --module PATH")
            }
            let path = relative.hasPrefix("/") ? relative : "\(releaseDirectory)/\(relative)"
            guard readable(path) else { throw AgentLookupError("\(path) (from modules.dep) cannot be read; pass --module PATH") }
            return path
        }
        let candidates = Self.extensions.map { "\(releaseDirectory)/kernel/drivers/net/ethernet/8390/\(name)\($0)" } + ["\(root)/\(name).ko"]
        guard let found = candidates.first(where: readable) else {
            throw AgentLookupError("cannot find module \(name): no \(releaseDirectory)/modules.dep, and none of \(candidates.joined(separator: ", ")); pass --module PATH")
        }
        return found
    }
}

/// A module file that cannot be found or is not the loaded module.
public struct AgentLookupError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

extension SiteScanner.ModuleScan {
    /// Why this file is not the module the kernel has loaded, or nil when it is: the srcversion (a
    /// hash of the module's sources) must equal /sys/module/NAME/srcversion; a module built without one
    /// must at least be built for the running kernel (vermagic's first word = `release`).
    public func mismatch(loadedSrcversion: String?, release: String) -> String? {
        if let srcversion, let loadedSrcversion, !loadedSrcversion.isEmpty {
            return srcversion == loadedSrcversion ? nil
                : "\(path) (srcversion \(srcversion)) is not the loaded \(module) (srcversion \(loadedSrcversion))"
        }
        guard let built = vermagic?.split(separator: " ").first.map(String.init) else {
            return "\(path) has neither a srcversion nor a vermagic to tell whether it is the loaded \(module)"
        }
        return built == release ? nil : "\(path) was built for kernel \(built), not the running \(release)"
    }
}
