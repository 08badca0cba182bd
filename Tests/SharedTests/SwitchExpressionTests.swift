import Shared
import XCTest

/// The SWITCH grammar (SwitchExpression) and the CONDITIONS rule (BranchCondition), as documented.
final class SwitchExpressionTests: XCTestCase {
    func value(_ text: String, _ values: [String: String] = [:]) throws -> Bool { try SwitchExpression.parse(text).evaluate(values) }

    func testComparisonsOfNumbersAndText() throws {
        let v = ["n": "10", "x": "a", "e": "", "f": "2.50", "neg": "-3", "sp": " 4 ", "big": "12345678901234567890", "accent": "e\u{301}"]
        let table: [(String, Bool)] = [
            ("${n} > 3", true), ("${n} > 30", false), ("${n} >= 10", true), ("${n} <= 9.99", false), ("${n} == 1e1", true),
            ("${n} == \"10.0\"", true), ("${f} == 2.5", true), ("${neg} < -2", true), ("${sp} == 4", true),
            ("${x} == \"a\"", true), ("${x} == 'a'", true), ("${x} != \"a\"", false), ("${x} == \"A\"", false),
            ("${e} == \"\"", true), ("${e} == 0", false), ("\"inf\" == \"inf\"", true),
            ("${x} == \"a\" && ${n} > 3", true), ("${x} == \"b\" || ${n} > 3", true), ("${x} == \"b\" || ${n} > 30", false),
            // && binds tighter than ||; ! and brackets.
            ("1 == 1 || 1 == 2 && 1 == 2", true), ("(1 == 1 || 1 == 2) && 1 == 2", false),
            ("!(${n} > 3)", false), ("! ${n} > 30", true), ("!!(1 == 1)", true),
            ("'it\\'s' == \"it's\"", true), ("\"a\\\\b\" == 'a\\\\b'", true),
            // Whole numbers compare exactly beyond 2^53; text byte for byte.
            ("${big} == \"12345678901234567891\"", false), ("${big} < 12345678901234567891", true), ("${big} == 12345678901234567890", true),
            ("-007 == -7", true), ("-0 == 0", true), ("+5 > -5", true), ("-12 < -3", true), ("-3 > -12", true), ("${big} > 1.5", true),
            ("${accent} == \"\u{E9}\"", false), ("${accent} != \"\u{E9}\"", true),
        ]
        for (text, expected) in table {
            XCTAssertEqual(try value(text, v), expected, text)
        }
    }

    /// Numbers compare as decimal strings of any length, as ds-submit(1) says: a 400-digit literal
    /// or parameter is no longer refused (a 64-bit float made it infinite), and decimals with a
    /// fraction compare exactly too.
    func testNumbersOfAnyLengthCompareExactly() throws {
        let long = String(repeating: "9", count: 400)
        let longer = "1" + String(repeating: "0", count: 400)
        let v = ["id": long, "half": "0." + String(repeating: "0", count: 300) + "5"]
        let table: [(String, Bool)] = [
            ("${id} == \(long)", true), ("${id} < \(longer)", true), ("\(longer) > ${id}", true), ("-\(longer) < -\(long)", true),
            ("${id} > 1e300", true), ("${id} != \(long).0", false), ("${half} > 0", true), ("${half} < 0.1", true),
            ("0.30 == .3", true), ("2.05 < 2.5", true), ("-0.5 < -0.25", true), ("10.01 > 10.001", true),
        ]
        for (text, expected) in table {
            XCTAssertEqual(try value(text, v), expected, text)
        }
    }

    func testErrorsAreErrorsNeverFalse() {
        XCTAssertThrowsError(try value("${nope} == 1")) { XCTAssertEqual("\($0)", "parameter 'nope' is not defined") }
        XCTAssertThrowsError(try value("${x} > 1", ["x": "abc"])) { XCTAssertEqual("\($0)", "> orders numbers, and 'abc' is not a number") }
        XCTAssertThrowsError(try value("\"inf\" < 1")) { XCTAssertTrue("\($0)".contains("'inf' is not a number")) }
        // The right side of || is read only when needed: an undefined parameter there is no error.
        XCTAssertEqual(try value("1 == 1 || ${nope} == 1"), true)
        for bad in ["", "   ", "1", "${x}", "${x} =", "${x} === 1", "1 == 1 &&", "(1 == 1", "1 == 1)", "$x == 1", "${x == 1",
                    "0x10 == 16", "nan == nan", "1 == 1 junk", "& 1 == 1", "\u{0} == 1"] {
            XCTAssertThrowsError(try SwitchExpression.parse(bad), "\(bad) parses")
        }
        XCTAssertThrowsError(try SwitchExpression.parse(String(repeating: "!", count: 100) + "1 == 1"))
        XCTAssertThrowsError(try SwitchExpression.parse(String(repeating: "1 == 1 && ", count: 500) + "1 == 1")) {
            XCTAssertTrue("\($0)".contains("a condition may be at most 4096"))
        }
        XCTAssertEqual(try SwitchExpression.parse("${a} == ${b} || ${c} != 1").parameters, ["a", "b", "c"])
    }

    /// `"${x}"` inside quotes means x's value, as DolphinScheduler users write it; the value is
    /// text, never read as syntax, whatever quotes or backslashes it holds. `\$` is a plain `$`.
    func testParametersInsideQuotesMeanTheirValues() throws {
        let v = ["region": "us", "quote": #"a"b"#, "apostrophe": "it's", "backslash": #"a\b"#, "syntax": #"" == ""#, "n": "10", "empty": ""]
        let table: [(String, Bool)] = [
            (#""${region}" == "us""#, true), (#"'${region}' == 'us'"#, true), (#""${region}" == "eu""#, false),
            (#""${region}" != "us""#, false), (#""x-${region}-${n}" == "x-us-10""#, true), (#""${region}" == ${region}"#, true),
            (#""${quote}" == 'a"b'"#, true), (#"'${apostrophe}' == "it's""#, true), (#""${backslash}" == 'a\b'"#, true),
            (#""${syntax}" == '" == "'"#, true), (#""${syntax}" == """#, false),
            (#""${n}" > 3"#, true), (#""${n}" == 10.0"#, true), (#""${empty}" == """#, true),
        ]
        for (text, expected) in table {
            XCTAssertEqual(try value(text, v), expected, text)
        }
        XCTAssertEqual(try value(#""\${region}" == '\${region}'"#, v), true, "both the literal text ${region}")
        XCTAssertEqual(try value(#""\${region}" != "us""#, v), true, "an escaped $ is no parameter")
        XCTAssertEqual(try value(#""cost: \$5" == 'cost: $5'"#, v), true)
        XCTAssertThrowsError(try value(#""${nope}" == "us""#, v)) { XCTAssertEqual("\($0)", "parameter 'nope' is not defined") }
        XCTAssertThrowsError(try SwitchExpression.parse(#""${region" == "us""#))
        XCTAssertEqual(try SwitchExpression.parse(#""${a}-${b}" == '${c}' || ${d} == 1"#).parameters, ["a", "b", "c", "d"])
    }

    func testDurationsShowAsTyped() {
        XCTAssertEqual(DurationText.format(0.001), "1ms")
        XCTAssertEqual(DurationText.format(0.5), "500ms")
        XCTAssertEqual(DurationText.format(2), "2s")
        XCTAssertEqual(DurationText.format(1.5), "1.5s")
        XCTAssertEqual(DurationText.format(0), "0s")
    }

    func testConditionOutcomes() {
        let states: [String: TaskProgress] = ["ok": .succeeded, "off": .disabled, "bad": .failed, "below": .skipped, "gone": .notTaken]
        func holds(_ relation: BranchCondition.Relation, _ tasks: [String: BranchCondition.Outcome]) -> Bool {
            BranchCondition(relation: relation, tasks: tasks).holds { states[$0]! }
        }
        XCTAssertTrue(holds(.and, ["ok": .success, "off": .success, "bad": .failure, "below": .failure]))
        XCTAssertFalse(holds(.and, ["ok": .success, "bad": .success]))
        XCTAssertTrue(holds(.or, ["ok": .failure, "bad": .failure]))
        XCTAssertFalse(holds(.or, ["gone": .success]), "a task not taken is neither")
        XCTAssertFalse(holds(.or, ["gone": .failure]), "a task not taken is neither")
    }
}
