#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

#if FUZZING
import CLibFuzzer

// Built with -sanitize=fuzzer,address -DFUZZING (make fuzz): SwiftPM's main hands over to libFuzzer's
// driver, which calls back with each input; the target is chosen by LMC_FUZZ_TARGET.
let fuzzTarget: String = getenv("LMC_FUZZ_TARGET").map { String(cString: $0) } ?? "config"

@main
struct Fuzz {
    static func main() {
        var argc = CommandLine.argc
        var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
        exit(LLVMFuzzerRunDriver(&argc, &argv) { data, size in
            FuzzTargets.run(fuzzTarget, data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? [])
            return 0
        })
    }
}
#else
/// Without the fuzzer: `lmc-fuzz TARGET FILE|DIR…` runs every file through the target — how the
/// committed corpus and every past finding (Fuzz/) are replayed in make test.
@main
struct Replay {
    static func main() throws {
        let args = Array(CommandLine.arguments.dropFirst())
        guard let target = args.first, FuzzTargets.names.contains(target), args.count >= 2 else {
            print("usage: lmc-fuzz TARGET FILE|DIR…  (targets: \(FuzzTargets.names.joined(separator: ", ")))")
            exit(2)
        }
        var count = 0
        for path in args.dropFirst() {
            var st = stat()
            guard stat(path, &st) == 0 else { print("lmc-fuzz: no such file \(path)"); exit(2) }
            let files = (st.st_mode & S_IFMT) == S_IFDIR ? ((try? listDirectory(path)) ?? []).filter { !$0.hasPrefix(".") }.sorted().map { "\(path)/\($0)" } : [path]
            for f in files {
                FuzzTargets.run(target, readAll(f))
                count += 1
            }
        }
        print("lmc-fuzz \(target): \(count) inputs, no crash")
    }
}
#endif
