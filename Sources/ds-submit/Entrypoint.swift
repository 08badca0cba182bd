import ArgumentParser
import Shared

@main
struct SubmitCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ds-submit",
        abstract: "Validate a workflow JSON, store it as a versioned definition and start an instance.",
        discussion: """
            Prints the new instance id (or, with --json, an object) and returns at once. With --wait it \
            blocks until the instance ends: exit 0 on SUCCESS, 1 otherwise; Ctrl-C (or SIGTERM) stops only \
            the waiting, exits 130 (143) and names the instance, which goes on. Invalid input exits 65 \
            and writes nothing. --dry-run --dot prints the workflow's DAG as Graphviz DOT \
            (ds-submit --dry-run --dot etl.json | dot -Tsvg > etl.svg). A workflow or task may name a "tenant", \
            the OS user its tasks run as (the worker must list it in --tenants); a task's "outputs" lists the \
            output parameters it may set besides the workflow's params (others are ignored). See ds-submit(1).

            """ + exitStatusHelp,
        version: dsVersion)

    @OptionGroup var global: GlobalOptions
    @Argument(help: "Workflow JSON file, or - for standard input.")
    var file: String
    @Option(name: .customLong("param"), help: "Override a parameter, k=v; repeatable.")
    var params: [String] = []
    @Option(help: "Workflow priority: HIGHEST, HIGH, MEDIUM, LOW or LOWEST (overrides the file).")
    var priority: String?
    @Option(help: "Store and run under this name instead of the file's.")
    var name: String?
    @Flag(name: .customLong("dry-run"), help: "Validate and print the normalised workflow; write nothing.")
    var dryRun = false
    @Flag(help: "With --dry-run: print the workflow's DAG as Graphviz DOT instead of JSON.")
    var dot = false
    @Flag(name: .customLong("no-start"), help: "Store the definition (a new version if it changed) and start nothing: for ds-schedule.")
    var noStart = false
    @Flag(help: "Block until the instance ends; exit 0 on SUCCESS, 1 otherwise.")
    var wait = false
    @Flag(help: "Machine-readable output (snake_case JSON).")
    var json = false
    @Option(help: "Time zone of the instance's dates (system.biz.date, DEPENDENT windows), an IANA name such as Europe/Berlin; default: TZ, else the local zone. Stored with the instance.")
    var tz: String?

    func validate() throws {
        var seen: Set<String> = []
        for p in params {
            guard let (name, _) = Submitter.parseParam(p) else { throw ValidationError("--param '\(p)' is not of the form name=value") }
            // As with duplicate keys in the JSON: two values for one name is a mistake, not "the last wins".
            guard seen.insert(name).inserted else { throw ValidationError("--param '\(name)' is given twice") }
        }
        if dot && !dryRun {
            throw ValidationError("--dot only draws a workflow, it submits nothing: use it with --dry-run")
        }
        if dot && json {
            throw ValidationError("--dot and --json are two output formats: pass one of them")
        }
        if noStart && (wait || dryRun) {
            throw ValidationError("--no-start stores the workflow without running it: it cannot be used with \(wait ? "--wait" : "--dry-run")")
        }
        if noStart && !params.isEmpty {
            throw ValidationError("--no-start starts no instance for --param to apply to; give a schedule its parameters: ds-schedule add --param")
        }
        try Priority.checkFlag(priority)
    }

    func run() async throws {
        var request = SubmitRequest(input: file)
        for p in params { let (k, v) = Submitter.parseParam(p)!; request.params[k] = v }
        request.priority = priority.flatMap(Priority.init(rawValue:))
        request.name = name
        request.dryRun = dryRun
        request.dot = dot
        request.wait = wait
        request.noStart = noStart
        request.json = json
        request.timeZone = tz
        do {
            let status = try await Submitter.run(request, configuration: try global.resolve())
            Tool.exit(status)
        } catch {
            Tool.fail("ds-submit", error)
        }
    }
}
