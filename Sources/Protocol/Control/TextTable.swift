/// Left-aligned columns for the human output of control commands.
public struct TextTable: Sendable {
    public let headers: [String]
    public private(set) var rows: [[String]] = []

    public init(_ headers: [String]) {
        self.headers = headers
    }

    public mutating func add(_ row: [String]) {
        rows.append(row)
    }

    public func render() -> String {
        let all = [headers] + rows
        var widths = headers.map(\.count)
        for row in all {
            for (i, cell) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], cell.count) }
        }
        var out = ""
        for row in all {
            var line = ""
            for (i, cell) in row.enumerated() {
                if i == row.count - 1 {
                    line += cell
                } else {
                    line += cell + String(repeating: " ", count: widths[i] - cell.count + 2)
                }
            }
            while line.hasSuffix(" ") { line.removeLast() }
            out += line + "\n"
        }
        return out
    }
}
