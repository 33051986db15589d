// Callers get FileDescriptor, FilePath and Errno with `import VPIOSystem` alone.
@_exported import SystemPackage
