import Foundation

/// Stops the run when a property does not hold: libFuzzer keeps the input as a crash file and
/// `scripts/fuzz.sh` prints `message` with the stack.
func fuzzRequire(_ condition: Bool, _ message: @autoclosure () -> String, file: StaticString = #file, line: UInt = #line) {
    if !condition { fatalError(message(), file: file, line: line) }
}

/// The fuzzer's bytes as text. Invalid UTF-8 becomes U+FFFD, as it does where ds reads text.
func fuzzText(_ bytes: UnsafePointer<UInt8>?, _ count: Int) -> String {
    guard let bytes, count > 0 else { return "" }
    return String(decoding: UnsafeBufferPointer(start: bytes, count: count), as: UTF8.self)
}
