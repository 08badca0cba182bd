import Foundation

/// `ds-context`: list the contexts of the contexts file, make one current, show what a tool
/// would use and where each value comes from.
public enum ContextTool {
    static let tool = "ds-context"

    /// One row per context; `*` marks the one in force (--context, DS_CONTEXT, else 'current').
    public static func list(flag: String?, json: Bool, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> ExitStatus {
        guard let file = try ContextFile.load(environment) else {
            Tool.warn(tool, "there is no contexts file \(ContextFile.path(environment)); every tool uses its flags, environment and defaults")
            return .success
        }
        let inForce = try ContextFile.selected(flag: flag, environment: environment)?.0.name
        if json {
            struct Row: Encodable { var name: String; var current: Bool; var settings: [String: String] }
            for c in file.contexts {
                var settings = c.values
                settings["db"] = settings["db"].map(DatabaseLocation.redacted)
                print(WireJSON.string(Row(name: c.name, current: c.name == inForce, settings: settings)))
            }
            return .success
        }
        var printer = TablePrinter(columns: ["CURRENT", "NAME", "ZK", "ZK_ROOT", "DB", "HOME"])
        for c in file.contexts {
            printer.add([c.name == inForce ? "*" : "", c.name, c.values["zk"] ?? "", c.values["zk_root"] ?? "",
                         c.values["db"].map(DatabaseLocation.redacted) ?? "", c.values["home"] ?? ""])
        }
        print(printer.render(), terminator: "")
        return .success
    }

    /// Makes `name` the file's 'current' context.
    public static func use(_ name: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> ExitStatus {
        guard let file = try ContextFile.load(environment) else {
            throw InputError.configuration("there is no contexts file \(ContextFile.path(environment)); write one with a [contexts.\(Limits.escaped(name))] table first")
        }
        try file.use(name)
        if let env = environment["DS_CONTEXT"], !env.isEmpty, env != name {
            Tool.warn(tool, "DS_CONTEXT=\(Limits.escaped(env)) is set in this shell: here it still beats 'current'")
        }
        return .success
    }

    /// Each setting a tool would use with `global`, and where it comes from: flag, environment,
    /// context or default. Credentials show as the files that hold them, never their contents.
    public static func show(_ global: GlobalOptions, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> ExitStatus {
        let configuration = try global.resolve(environment)
        let selected = try ContextFile.selected(flag: global.context, environment: environment)
        let contextSource: String = global.context != nil ? "--context"
            : environment["DS_CONTEXT"].map { $0.isEmpty ? "" : "DS_CONTEXT" } ?? ""
        var printer = TablePrinter(columns: ["SETTING", "VALUE", "FROM"])
        printer.add(["file", ContextFile.path(environment), selected == nil ? "(none used)" : ""])
        printer.add(["context", selected?.0.name ?? "", selected == nil ? "" : contextSource.isEmpty ? "'current'" : contextSource])
        // The flag that stands for each key, if it was given.
        let flags: [String: String] = [
            "zk": global.zk.map { _ in "--zk" }, "zk_root": global.zkRoot.map { _ in "--zk-root" },
            "zk_session_timeout": global.zkSessionTimeout.map { _ in "--zk-session-timeout" },
            "zk_auth_file": global.zkAuth.map { _ in "--zk-auth" }, "db": global.db.map { _ in "--db" }, "home": global.home.map { _ in "--home" },
        ].compactMapValues { $0 }
        let resolved: [String: String] = [
            "zk": configuration.zkConnect, "zk_root": configuration.zkRoot,
            "zk_session_timeout": "\(configuration.sessionTimeoutMillis)ms", "db": configuration.databasePath, "home": configuration.home,
        ]
        let applied = selected.map { ContextFile.apply($0.0, to: environment) } ?? environment
        for (key, variable) in ContextSettings.keys {
            var from = "default"
            if let flag = flags[key] { from = flag }
            else if environment[variable] != nil { from = variable }
            else if key == "zk_auth_file" && environment["DS_ZK_AUTH"] != nil { from = "DS_ZK_AUTH" }
            else if let (context, _) = selected, context.values[key] != nil { from = "context " + context.name }
            // A credential given directly (--zk-auth, DS_ZK_AUTH) is never shown.
            let value = ["--zk-auth", "DS_ZK_AUTH"].contains(from) ? "(given)" : resolved[key] ?? applied[variable] ?? ""
            printer.add([key, value, value.isEmpty ? "" : from])
        }
        print(printer.render(), terminator: "")
        return .success
    }
}
