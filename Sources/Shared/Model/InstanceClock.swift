import Foundation

/// The clock of one workflow instance: the instant its built-ins (`system.biz.date`) and
/// DEPENDENT windows count from, and the zone they are read in, both from what the instance
/// stores. Its zone is fixed when the instance is made (ds-submit's --tz or TZ, a schedule's or
/// backfill's zone, a parent's) and never a master's own: masters in two zones, and a takeover
/// between them, give every task of an instance the same business date.
public struct InstanceClock: Sendable {
    public let runTime: Date
    public let zone: TimeZone

    /// The zone of an instance stored without one (made before instances stored their zone):
    /// UTC, the same for every master and tool.
    public static let unzonedName = "UTC"

    /// A stored zone this host's time zone database does not know: its instance cannot resolve
    /// its dates, and fails saying so rather than reading them in another zone.
    public struct UnknownZone: Error, CustomStringConvertible {
        public var name: String
        public var description: String {
            "time zone \(Limits.quoted(name)) is not in this host's time zone database; install tzdata on the master, or resubmit the instance with a known --tz"
        }
    }

    /// The zone a stored name names (nil: the unzoned default), or UnknownZone.
    public static func zone(named name: String?) throws -> TimeZone {
        let name = name ?? unzonedName
        guard let zone = TimeZone(identifier: name) else { throw UnknownZone(name: name) }
        return zone
    }

    /// A scheduled or backfilled instance counts from the fire time it stands for, any other from
    /// when it first started (`now` if it has not).
    public init(scheduleTime: Double?, startTime: Double?, timeZone: String?, now: Double) throws {
        runTime = Date(timeIntervalSince1970: scheduleTime ?? startTime ?? now)
        zone = try Self.zone(named: timeZone)
    }

    public init(runTime: Date, zone: TimeZone) { (self.runTime, self.zone) = (runTime, zone) }

    /// The resolver of the instance's parameters.
    public var resolver: ParameterResolver { ParameterResolver(runTime: runTime, timeZone: zone) }
}
