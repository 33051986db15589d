import ArgumentParser
import CCycleCounter
import Foundation
import NE2000Model
import VPIOMonitor

struct ModelBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "model-bench",
        abstract: "Measure the cost of a model update: the full and the reduced NE2000 model over a recorded trace.",
        discussion: """
            Prints ns per event (monotonic clock) and TSC ticks per event (rdtsc; the TSC runs at a constant \
            reference rate, which equals core cycles only at nominal frequency). Measured: the full model fed \
            every event (emulated), the full model fed the vmm-model hook set's events, and the reduced \
            model on the cooperative set's DMA starts. The trap decisions and the readback follower are \
            not timed: only the model work a VMM would do per exit. The seed's figure is ~100 cycles per update.
            """)

    @Option(help: "The trace file (default: the committed boot + 64 KiB download fixture).")
    var trace = "Tests/VPIOMonitorTests/Fixtures/boot-download-64k.vptrace"

    @Option(help: "Passes over the trace per measurement.")
    var repetitions = 200

    func run() throws {
        let events = try loadTrace(trace)
        print("trace: \(trace): \(events.count) events")
        for timing in Self.measure(events, repetitions: repetitions) {
            let perEvent = timing.ticksPerEvent.map { String(format: "%.1f TSC ticks", $0) } ?? "no TSC"
            print(String(format: "%-30@ %8d events/pass %7.2f ns/event  %@  (checksum %d)",
                         timing.label as NSString, timing.events, timing.nsPerEvent, perEvent as NSString, timing.checksum))
        }
    }

    /// One measured model configuration.
    struct Timing {
        var label: String
        /// The mode whose per-update cost this is.
        var mode: Mode
        /// Events (updates) per pass over the trace.
        var events: Int
        var nsPerEvent: Double
        var ticksPerEvent: Double?
        /// Folds the models' outputs so the work cannot be optimized away.
        var checksum: Int
    }

    /// Times the full model on every event (emulated), the full model on the vmm-model hook set's events,
    /// and the reduced model on the cooperative set's DMA starts, `repetitions` passes each.
    static func measure(_ events: [DeviceEvent], repetitions: Int) -> [Timing] {
        let (vmmEvents, coopStarts) = trapped(events)
        let reduced = ReducedModel()
        return [
            time("full model, every event", mode: .emulated, count: events.count, repetitions: repetitions) { sink in
                var model = FullModel()
                for event in events { sink &+= model.apply(event).count }
                sink &+= model.reusable ? 1 : 0
            },
            time("full model, vmm-model hooks", mode: .vmmModel, count: vmmEvents.count, repetitions: repetitions) { sink in
                var model = FullModel()
                for event in vmmEvents { sink &+= model.apply(event).count }
                sink &+= model.reusable ? 1 : 0
            },
            time("reduced model, DMA starts", mode: .cooperative, count: coopStarts.count, repetitions: repetitions) { sink in
                for (command, readback) in coopStarts {
                    let starts = reduced.decide(command: command, readback: readback)
                    sink &+= starts.count - starts.denials
                }
            },
        ]
    }

    /// The events the vmm-model monitor's full model gets, and the cooperative monitor's DMA starts with
    /// the readback values at each.
    static func trapped(_ events: [DeviceEvent]) -> ([DeviceEvent], [(UInt8, ReadbackValues)]) {
        let vmmHooks = HookSet(mode: .vmmModel), coopHooks = HookSet(mode: .cooperative)
        var model = FullModel()
        var readback = DeviceReadback()
        var vmm: [DeviceEvent] = [], coop: [(UInt8, ReadbackValues)] = []
        for event in events {
            if case .access(let access) = event {
                if vmmHooks.traps(access, page: model.state.page) {
                    vmm.append(event)
                    model.apply(event)
                }
                if coopHooks.traps(access, page: 0), coopHooks.actsOn(access) {
                    let command = UInt8(truncatingIfNeeded: access.value)
                    coop.append((command, readback.values(atCommand: command)))
                }
            } else {
                vmm.append(event)
                model.apply(event)
            }
            readback.apply(event)
        }
        return (vmm, coop)
    }

    /// Times `repetitions` passes (after one warm-up) of `body` over `count` events.
    static func time(_ label: String, mode: Mode, count: Int, repetitions: Int, _ body: (inout Int) -> Void) -> Timing {
        var sink = 0
        body(&sink)
        let clock = ContinuousClock()
        let ticks0 = vpio_cycle_counter()
        let elapsed = clock.measure { for _ in 0..<repetitions { body(&sink) } }
        let ticks = vpio_cycle_counter() &- ticks0
        let updates = Double(max(1, count * repetitions))
        let ns = (Double(elapsed.components.seconds) * 1e9 + Double(elapsed.components.attoseconds) / 1e9) / updates
        return Timing(label: label, mode: mode, events: count, nsPerEvent: ns,
                      ticksPerEvent: ticks > 0 ? Double(ticks) / updates : nil, checksum: sink)
    }
}
