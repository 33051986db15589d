import Foundation
import VPIOSystem

/// qtest over a connected UNIX stream socket, each reply bounded in time and length: a QEMU that
/// hangs or floods fails the backend instead of stalling its caller.
public final class QTestSocketLink: QTestLink {
    public struct LinkError: Error, CustomStringConvertible {
        public var description: String
    }

    static let maxLine = 4096
    private let socket: UnixSocket
    private let timeoutMilliseconds: Int32
    private var buffer: [UInt8] = []

    public init(socket: UnixSocket, timeoutMilliseconds: Int32 = 5000) {
        self.socket = socket
        self.timeoutMilliseconds = timeoutMilliseconds
    }

    public func send(_ line: String) throws {
        try socket.send(Array((line + "\n").utf8))
    }

    public func receiveLine() throws -> String {
        let deadline = Date().addingTimeInterval(Double(timeoutMilliseconds) / 1000)
        while true {
            if let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: buffer[..<newline], as: UTF8.self)
                buffer.removeSubrange(...newline)
                return line
            }
            guard buffer.count <= Self.maxLine else { throw LinkError(description: "a line longer than \(Self.maxLine) bytes") }
            let left = Int32(max(0, deadline.timeIntervalSinceNow * 1000))
            let ready = try Poll.wait([(socket.descriptor, .readable)], timeoutMilliseconds: left)
            guard ready.first?.isEmpty == false else { throw LinkError(description: "no reply within \(timeoutMilliseconds) ms") }
            guard let chunk = try socket.receiveAvailable(maxBytes: Self.maxLine, maxDescriptors: 0) else {
                throw LinkError(description: "QEMU closed the qtest connection")
            }
            buffer += chunk.bytes
        }
    }
}

/// `-netdev stream` framing over a connected UNIX stream socket: each frame behind its length as a
/// 4-byte big-endian word. Lengths are QEMU's word, so they are bounded before anything is kept.
public final class StreamFrameLink: FrameLink {
    static let maxFrame = 65_536
    private let socket: UnixSocket
    private var buffer: [UInt8] = []

    public init(socket: UnixSocket) {
        self.socket = socket
    }

    public func send(_ frame: [UInt8]) throws {
        let length = UInt32(frame.count)
        try socket.send([UInt8(length >> 24), UInt8(length >> 16 & 0xFF), UInt8(length >> 8 & 0xFF), UInt8(length & 0xFF)] + frame)
    }

    public func unreadBytes() throws -> Int { try socket.unreadSentBytes() }

    public func receiveAvailable() throws -> [[UInt8]] {
        while true {
            guard let chunk = try socket.receiveAvailable(maxBytes: 16_384, maxDescriptors: 0) else {
                throw QTestSocketLink.LinkError(description: "QEMU closed the netdev connection")
            }
            if chunk.bytes.isEmpty { break }
            buffer += chunk.bytes
        }
        var frames: [[UInt8]] = []
        while buffer.count >= 4 {
            let length = buffer[0..<4].reduce(0) { $0 << 8 | Int($1) }
            guard length <= Self.maxFrame else { throw QTestSocketLink.LinkError(description: "a frame of \(length) bytes") }
            guard buffer.count >= 4 + length else { break }
            frames.append(Array(buffer[4..<4 + length]))
            buffer.removeSubrange(..<(4 + length))
        }
        return frames
    }
}
