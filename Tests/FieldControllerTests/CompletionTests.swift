import Foundation
import LMCTestSupport
import Testing

/// The bash completion the package ships (`lmc --generate-completion-script bash`), driven as bash's
/// programmable completion drives it: subcommands by prefix, and scenario names from lmc simulate's
/// search path.
@Suite struct CompletionTests {
    static let harness = """
    shopt -s extglob
    lmc=$1; shift
    source <("$lmc" --generate-completion-script bash)
    COMP_WORDS=("$lmc" "$@")
    COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
    COMP_LINE="${COMP_WORDS[*]}"
    COMP_POINT=${#COMP_LINE}
    _lmc "${COMP_WORDS[0]}" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
    printf '%s\\n' "${COMPREPLY[@]}"
    """

    func complete(_ words: [String], environment: [String: String] = [:]) throws -> [String] {
        let r = try run("/bin/bash", ["-c", Self.harness, "complete", Repo.lmc] + words, environment: ["PATH": "/usr/bin:/bin"].merging(environment) { $1 })
        #expect(r.status == 0, "\(r.err)")
        return r.out.split(separator: "\n").map(String.init)
    }

    @Test func subcommandsAndScenarioNames() throws {
        #expect(try complete(["doc"]) == ["doctor"])
        #expect(try complete(["log", "a"]) == ["audit"])
        let dir = "/tmp/lmc-complete-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "time_s,background_kva,ev_demand_kva\n0,1,1\n".write(toFile: "\(dir)/substation-42.csv", atomically: true, encoding: .utf8)
        let names = try complete(["simulate", "--scenario", ""], environment: ["LMC_SCENARIOS": dir])
        #expect(names.contains("substation-42") && names.contains("seed-example-day") && names.contains("semiurban-january"), "\(names)")
        #expect(try complete(["simulate", "--scenario", "se"], environment: ["LMC_SCENARIOS": dir]) == ["seed-example-day", "semiurban-january"])
    }
}
