/// Plain aligned columns for humans; `--json` output never goes through here. Every cell is
/// escaped (`Limits.escaped`): a value holding a newline or an escape sequence cannot forge a row
/// or colour the terminal, and a name with spaces stays in its column.
public struct TablePrinter: Sendable {
    public var columns: [String]
    public private(set) var rows: [[String]] = []
    /// The least width of each column: what a table that streams (`line`) pads to, since its
    /// widths cannot come from rows not yet read. A longer cell widens its own line only.
    public var widths: [Int]

    public init(columns: [String], widths: [Int] = []) {
        self.columns = columns
        self.widths = widths
    }

    public mutating func add(_ row: [String]) { rows.append(row.map { Limits.escaped($0) }) }

    /// The header and every row added, each column as wide as its widest cell.
    public func render() -> String {
        var widths = columns.indices.map { max($0 < self.widths.count ? self.widths[$0] : 0, Self.displayWidth(columns[$0])) }
        for row in rows { for (i, cell) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], Self.displayWidth(cell)) } }
        return ([Self.join(columns, widths)] + rows.map { Self.join($0, widths) }).joined(separator: "\n") + "\n"
    }

    /// The header of a table that streams, without its newline.
    public func header() -> String { Self.join(columns, widths) }

    /// One row of a table that streams, escaped and padded to `widths`, without its newline.
    public func line(_ cells: [String]) -> String { Self.join(cells.map { Limits.escaped($0) }, widths) }

    private static func join(_ cells: [String], _ widths: [Int]) -> String {
        cells.enumerated().map { i, c in
            i == cells.count - 1 || i >= widths.count ? c : c + String(repeating: " ", count: max(0, widths[i] - displayWidth(c)))
        }.joined(separator: "  ")
    }

    /// The columns a terminal gives `text`: two for each wide character (CJK, Hangul, full-width
    /// forms, emoji), one for any other character, so that such names keep the columns aligned.
    static func displayWidth(_ text: String) -> Int {
        text.reduce(0) { sum, c in
            guard let s = c.unicodeScalars.first else { return sum }
            let wide = s.properties.isEmojiPresentation || [0x1100...0x115F, 0x2E80...0x303E, 0x3041...0x33FF, 0x3400...0x4DBF,
                0x4E00...0x9FFF, 0xA000...0xA4CF, 0xAC00...0xD7A3, 0xF900...0xFAFF, 0xFE30...0xFE4F, 0xFF00...0xFF60,
                0xFFE0...0xFFE6, 0x20000...0x3FFFD].contains { $0.contains(s.value) }
            return sum + (wide ? 2 : 1)
        }
    }
}

extension TablePrinter {
    /// Parameters as one line, `KEY=value KEY2=value2` sorted by key, escaped as a cell is.
    public static func pairs(_ values: [String: String]) -> String {
        Limits.escaped(values.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))
    }
}
