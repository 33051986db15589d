import Foundation
import SystemPackage
import Testing
@testable import KVMProbe

@Suite struct KVMErrorTests {
    @Test func aMissingDeviceSaysSo() {
        #expect(throws: KVMError.deviceMissing(path: "/nonexistent/kvm")) { try KVMDevice(path: "/nonexistent/kvm") }
    }

    @Test func aCharacterDeviceThatIsNotKVMSaysSo() {
        #expect(throws: KVMError.notAKVMDevice(path: "/dev/null", errno: .inappropriateIOCTLForDevice)) { try KVMDevice(path: "/dev/null") }
    }

    @Test func aRegularFileIsNotAKVMDevice() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("kvmprobe-\(getpid())").path
        #expect(FileManager.default.createFile(atPath: path, contents: Data([0])))
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(throws: KVMError.notAKVMDevice(path: path, errno: .inappropriateIOCTLForDevice)) { try KVMDevice(path: path) }
    }

    @Test func aDirectoryCannotBeOpenedReadWrite() {
        #expect(throws: KVMError.cannotOpen(path: "/", errno: .isDirectory)) { try KVMDevice(path: "/") }
    }

    @Test func everyReasonHasItsOwnStatusAndOneLine() {
        let all: [KVMError] = [
            .deviceMissing(path: "/dev/kvm"), .permissionDenied(path: "/dev/kvm"),
            .cannotOpen(path: "/dev/kvm", errno: .ioError), .notAKVMDevice(path: "/dev/null", errno: .inappropriateIOCTLForDevice),
            .unsupportedAPIVersion(11), .createVMFailed(.noMemory),
            .guestMemoryFailed(step: "mmap", errno: .noMemory), .vcpuSetupFailed(step: "KVM_CREATE_VCPU", errno: .invalidArgument),
            .runFailed(errno: .invalidArgument, afterIOExits: 0), .guestDidNotReachLoop(.shutdown),
            .guestLeftLoop(.mmio(address: 0x10000), afterIOExits: 7), .unexpectedAccess("in port 0x301", afterIOExits: 3),
        ]
        let statuses = all.map(\.exitStatus)
        #expect(Set(statuses).count == all.count)
        #expect(statuses.allSatisfy { $0 > 2 && $0 < 64 })
        for error in all {
            #expect(!error.description.isEmpty && !error.description.contains("\n"))
        }
        #expect(KVMError.deviceMissing(path: "/dev/kvm").description.hasPrefix("/dev/kvm does not exist"))
    }
}
