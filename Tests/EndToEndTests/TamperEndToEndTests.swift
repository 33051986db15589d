import Testing
import VPIOLaunch

/// Issue 10 against the agent link, with a real guest and the real agent registered: vpio-tamper forges
/// intents into the agent's own ring map while it runs, re-announces the agent's ring, and registers a
/// ring whose counters sit at 2^64-1 and wrap. The host must stay up and deny nothing (safety never rests
/// on an intent), fall back from cooperative on the forgery, and not take the repeated registration as
/// the new ring the way back to cooperative needs (host-monitor/SECURITY.md).
///
/// One boot, in this order, because each tool needs what the one before leaves:
/// - `download`: the host reaches cooperative with the agent's ring (forge checks `mode_before` is 2).
/// - `tamper-forge`: needs the agent's ring registered; leaves it registered, and the host in vmm-model.
/// - `tamper-reregister`: repeats the registration the capability shows, which is the agent's only while
///   no other ring replaced it — so it runs before `overflow`. After the fallback, it is the case that
///   matters: a repeat that counted as a new ring would be a way back to cooperative.
/// - `download`: the agent's honest intents, read from the re-registered ring (which restarts the
///   intent matcher, dropping the forged ones), verify again: all the host still needs to return is a
///   new ring, so any return here would be the re-registration's doing.
/// - `tamper-overflow`: replaces the agent's registration with its own ring and unregisters it at exit
///   (as every own-ring mode does), so nothing the agent needs comes after it.
/// - `download`: the host keeps serving with no agent registered.
@Suite("End to end: a root process tampering with the agent link (issue 10)", .serialized)
struct TamperEndToEndTests {
    static let workloads = ["download", "tamper-forge", "tamper-reregister", "download", "tamper-overflow", "download"]

    static let boot: Result<EnforcementEndToEndTests.Run, EnforcementEndToEndTests.RunFailed> = {
        do {
            return .success(try EnforcementEndToEndTests.run(["--workloads", workloads.joined(separator: ","), "--size", "256K"]))
        } catch {
            return .failure(EnforcementEndToEndTests.RunFailed(description: "\(error)"))
        }
    }()

    /// The tool's result line, printed, with whether it said ok.
    static func check(_ workload: String, in run: EnforcementEndToEndTests.Run) throws -> RunResult.Check {
        let check = try #require(run.result.checks[workload], "no \(workload) result")
        print("issue 10: \(workload) \(check.ok ? "ok" : "FAILED"): "
              + check.fields.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))
        return check
    }

    static func describe(_ switches: [EnforcementEndToEndTests.Run.Stats.Switch]) -> String {
        switches.map { "@\($0.access) \($0.from)→\($0.to) (\($0.reason))" }.joined(separator: "; ")
    }

    @Test("the host survives: statistics written, no host error, every download intact, nothing denied",
          EnforcementEndToEndTests.enabled, .timeLimit(.minutes(8)))
    func hostSurvives() throws {
        let run = try Self.boot.get()
        #expect(run.result.hostErrors.isEmpty, "\(run.result.hostErrors)")
        #expect(run.status == 0, "\(run.result.failures)")
        let downloads = run.output.split(separator: "\n").compactMap { ResultLine.parse(String($0)) }.filter { $0.kind == "download" }
        #expect(downloads.count == 3 && downloads.allSatisfy { $0.status == "ok" }, "\(downloads)")
        let enforcement = run.stats.enforcement
        #expect(enforcement.configured == "cooperative")
        // Forged, repeated and wrapping rings can only cost the guest exits: the models judge every start
        // from the device's registers, and the driver's DMAs all keep to the grant.
        #expect(enforcement.denied == 0 && enforcement.violations.isEmpty,
                "denied: \(enforcement.violations.map { "\($0.kind) at \($0.start) in \($0.mode): \($0.reason)" })")
    }

    @Test("forge: intents written into the agent's ring map make the host fall back from cooperative, and deny nothing",
          EnforcementEndToEndTests.enabled, .timeLimit(.minutes(8)))
    func forgedIntents() throws {
        let run = try Self.boot.get()
        // Its ok: it found the registered ring's map, the host was cooperative before, in fallback after.
        let forge = try Self.check("tamper-forge", in: run)
        #expect(forge.ok && forge.fields["registered_ring"] == "1" && forge.fields["mode_before"] == "2", "\(forge.fields)")
        let switches = run.stats.enforcement.switches
        // The tool waits (at most 60 s, with traffic) for the host to be back in cooperative mode; in
        // one CI run the first download ended before the 64-intent return had happened.
        print("issue 10: forge waited \(forge.fields["waited_s"] ?? "?") s for cooperative; switches \(Self.describe(switches))")
        // The first return to cooperative is the agent's ring verifying during the first download; the
        // first fall back after it is the forgery's: the agent is honest, and the forge line says the
        // fallback happened while it ran (the tool lines carry no access numbers, so this is the link).
        let back = try #require(run.returnToCooperative, "the host never reached cooperative: \(Self.describe(switches))")
        let fallback = try #require(switches.first { $0.from == "cooperative" && $0.access > back.access },
                                    "no fallback after cooperative: \(Self.describe(switches))")
        #expect(fallback.to == "vmm-model", "\(Self.describe(switches))")
        #expect(fallback.reason.contains("intent mismatch") || fallback.reason.contains("inconsistent"), "\(fallback.reason)")
        #expect(run.stats.agentChecks.intents.mismatches >= 1)
    }

    @Test("reregister: the agent's ring announced again is accepted but is no new ring — cooperative does not come back",
          EnforcementEndToEndTests.enabled, .timeLimit(.minutes(8)))
    func repeatedRegistration() throws {
        let run = try Self.boot.get()
        let reregister = try Self.check("tamper-reregister", in: run)
        #expect(reregister.ok && reregister.fields["accepted"] == "1", "\(reregister.fields)")
        // Still in fallback right after it (mode 1, vmm-model): the forgery ran just before.
        #expect(reregister.fields["mode"] == "1" && reregister.fields["fallback"] == "1", "\(reregister.fields)")
        let enforcement = run.stats.enforcement
        // The one return is the agent's first ring; none after the forgery's fallback, though the download
        // after the re-registration gave the host a long run of verified intents (below).
        #expect(enforcement.returnsToCooperative == 1, "\(Self.describe(enforcement.switches))")
        let back = try #require(run.returnToCooperative)
        let fallback = try #require(enforcement.switches.first { $0.from == "cooperative" && $0.access > back.access })
        #expect(!enforcement.switches.contains { $0.to == "cooperative" && $0.access > fallback.access },
                "cooperative came back after the fallback: \(Self.describe(enforcement.switches))")
        #expect(enforcement.current == "vmm-model")
        // The registrations: the agent's at boot, the repeat, and the overflow ring's — the repeat counted
        // as one (accepted), only not as a new ring (which the stats do not show: no return says it).
        let agent = run.stats.agent
        #expect(agent.registrations == 3 && agent.rejections == 0, "registrations \(agent.registrations), rejections \(agent.rejections)")
        // That the intents after the repeat verified (so the missing new ring was all that kept
        // cooperative away) is not in the stats per phase; the totals tell: the second download is as
        // large as the first, so had its starts not verified, misses and mismatches would be about as many
        // as the first download's hits. The forgery and the overflow ring add a few dozen at most.
        let intents = run.stats.agentChecks.intents
        print("issue 10: intents hits=\(intents.hits) misses=\(intents.misses) mismatches=\(intents.mismatches); "
              + "returns to cooperative \(enforcement.returnsToCooperative)")
        #expect((intents.misses + intents.mismatches) * 2 < intents.hits,
                "hits \(intents.hits), misses \(intents.misses), mismatches \(intents.mismatches): the intents after the re-registration did not verify")
    }

    @Test("overflow: a ring with head, intents_written and accesses_seen at 2^64-1 is read through the wrap; the host keeps serving",
          EnforcementEndToEndTests.enabled, .timeLimit(.minutes(8)))
    func countersAtTheTop() throws {
        let run = try Self.boot.get()
        // Its ok: the capability still answered and showed its ring registered after its DMA starts.
        let overflow = try Self.check("tamper-overflow", in: run)
        #expect(overflow.ok && overflow.fields["alive"] == "1", "\(overflow.fields)")
        let agent = run.stats.agent
        print("issue 10: agent link counters registrations=\(agent.registrations) unregistrations=\(agent.unregistrations) "
              + "sequenceWraps=\(agent.sequenceWraps) recordsLost=\(agent.recordsLost) recordsMalformed=\(agent.recordsMalformed)")
        // The reader starts at claim 2^64-1, whose commit word would be 0 (the empty mark), steps over it
        // to 0 — one wrap — and reads the record there. No honest agent wraps, so this one is the
        // overflow ring's, read at the starts its datagrams caused; a second would be a reader that lost
        // its place.
        #expect(agent.sequenceWraps == 1, "sequenceWraps \(agent.sequenceWraps)")
        // Taken back at its exit: the agent's own unregistration at shutdown then finds nothing registered.
        #expect(agent.unregistrations == 1, "unregistrations \(agent.unregistrations)")
        // The download after it: the last download line.
        let tamperLine = try #require(run.output.range(of: "VPIO-RESULT tamper-overflow "))
        let lastDownload = try #require(run.output.range(of: "VPIO-RESULT download ", options: .backwards))
        #expect(tamperLine.upperBound < lastDownload.lowerBound)
        #expect(run.result.download?.checksumOK == true)
    }
}
