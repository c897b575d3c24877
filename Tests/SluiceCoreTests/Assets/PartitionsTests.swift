import Foundation
import SluiceCore
import Testing

func partitions(_ json: String) throws -> Partitions { try Partitions(config: try Value.parseJSON(json)) }

let utc = TimeZone(identifier: "UTC")!
func date(_ text: String) -> Date { ISO8601DateFormatter().date(from: text)! }

@Suite("Partitions")
struct PartitionsTests {
    @Test("Daily partitions cross months and leap days; the end is exclusive")
    func daily() throws {
        let p = try partitions(#"{"daily": {"start": "2024-02-27", "end": "2024-03-02"}}"#)
        #expect(p.keys(now: date("2030-01-01T00:00:00Z")) == ["2024-02-27", "2024-02-28", "2024-02-29", "2024-03-01"])
        #expect(try p.keys(from: "2024-02-28", to: "2024-03-01", now: Date()) == ["2024-02-28", "2024-02-29", "2024-03-01"])
        #expect(throws: PartitionError.self) { try p.validate("2024-03-02") }
        #expect(throws: PartitionError.self) { try p.validate("2024-02-30") }
        #expect(throws: PartitionError.self) { try p.validate("2024-2-28") }
        #expect(throws: PartitionError.self) { try p.keys(from: "2024-03-01", to: "2024-02-28", now: Date()) }
    }

    @Test("An open-ended partitioning runs up to the window holding now")
    func openEnded() throws {
        let p = try partitions(#"{"monthly": {"start": "2024-11"}}"#)
        #expect(p.keys(now: date("2025-02-10T12:00:00Z")) == ["2024-11", "2024-12", "2025-01", "2025-02"])
        let d = try partitions(#"{"daily": {"start": "2025-01-30"}}"#)
        #expect(d.keys(now: date("2025-02-01T00:00:00Z")) == ["2025-01-30", "2025-01-31", "2025-02-01"])
    }

    @Test("Daily windows follow the time zone; hourly keys carry the offset across a DST change")
    func timeZones() throws {
        let berlin = try partitions(#"{"daily": {"start": "2025-03-29", "end": "2025-04-01", "timezone": "Europe/Berlin"}}"#)
        guard case .time(let t) = berlin else { Issue.record("not time partitions"); return }
        let w = try t.window(of: "2025-03-30")
        #expect(w.start == date("2025-03-29T23:00:00Z"))
        #expect(w.end.timeIntervalSince(w.start) == 23 * 3600, "the spring-forward day has 23 hours")
        let hourly = try partitions(#"{"hourly": {"start": "2025-10-26T01:00", "end": "2025-10-26T04:00", "timezone": "Europe/Berlin"}}"#)
        let keys = hourly.keys(now: Date())
        #expect(keys == ["2025-10-26T01:00+02:00", "2025-10-26T02:00+02:00", "2025-10-26T02:00+01:00", "2025-10-26T03:00+01:00"],
                "the repeated hour appears twice, told apart by its offset")
        for k in keys { try hourly.validate(k) }
        let plain = try partitions(#"{"hourly": {"start": "2025-01-15T22:00", "end": "2025-01-16T01:00"}}"#)
        #expect(plain.keys(now: Date()) == ["2025-01-15T22:00", "2025-01-15T23:00", "2025-01-16T00:00"])
    }

    @Test("Static and multi-dimensional partitions")
    func staticAndMulti() throws {
        let regions = try partitions(#"{"static": ["us-east", "eu-west"]}"#)
        #expect(regions.keys(now: Date()) == ["us-east", "eu-west"])
        let multi = try partitions(#"{"multi": {"date": {"daily": {"start": "2025-01-01", "end": "2025-01-03"}}, "region": {"static": ["us", "eu"]}}}"#)
        #expect(multi.keys(now: Date()) == ["2025-01-01|us", "2025-01-01|eu", "2025-01-02|us", "2025-01-02|eu"])
        try multi.validate("2025-01-02|eu")
        #expect(multi.timeWindows?.unit == .daily)
        do {
            try multi.validate("2025-01-02|asia")
            Issue.record("an unknown region should not validate")
        } catch {
            #expect(error.message == "region: 'asia' is not one of the partitions (us, eu)")
        }
        #expect(throws: PartitionError.self) { try multi.validate("2025-01-02") }
    }

    @Test("Definitions that are wrong say what and how to write them")
    func badDefinitions() throws {
        func message(_ json: String) -> String {
            do {
                _ = try partitions(json)
                return "accepted"
            } catch let error as PartitionError {
                return error.message
            } catch {
                return "\(error)"
            }
        }
        #expect(message(#"{"weekly": {"start": "2025-01-01"}}"#).contains("unknown partitions 'weekly'"))
        #expect(message(#"{"daily": {}}"#).contains("need a start"))
        #expect(message(#"{"daily": {"start": "2025-13-01"}}"#).contains("'start' must be a daily window start"))
        #expect(message(#"{"monthly": {"start": "2025-01-15"}}"#).contains("'start' must be a monthly window start"))
        #expect(message(#"{"daily": {"start": "2025-01-05", "end": "2025-01-01"}}"#).contains("the end comes before the start"))
        #expect(message(#"{"daily": {"start": "2025-01-01", "timezone": "Mars/Base"}}"#).contains("unknown time zone 'Mars/Base'"))
        #expect(message(#"{"daily": {"start": "2025-01-01", "every": 2}}"#).contains("unknown field 'every'"))
        #expect(message(#"{"static": ["a", "a"]}"#).contains("listed twice"))
        #expect(message(#"{"static": ["a|b"]}"#).contains("without '|'"))
        #expect(message(#"{"multi": {"only": {"static": ["a"]}}}"#).contains("two or more dimensions"))
    }

    @Test("Mappings: identity, previous window, all of a window, all")
    func mappings() throws {
        let days = try partitions(#"{"daily": {"start": "2024-01-01", "end": "2024-04-01"}}"#)
        let months = try partitions(#"{"monthly": {"start": "2024-01", "end": "2024-04"}}"#)
        let now = Date()
        #expect(try PartitionMapping.identity.upstreamKeys(of: "2024-02-10", downstream: days, upstream: days, now: now) == ["2024-02-10"])
        #expect(try PartitionMapping.previous(1).upstreamKeys(of: "2024-03-01", downstream: days, upstream: days, now: now) == ["2024-02-29"])
        #expect(try PartitionMapping.previous(1).upstreamKeys(of: "2024-01-01", downstream: days, upstream: days, now: now) == [],
                "the first window has no previous one")
        let february = try PartitionMapping.allOfWindow.upstreamKeys(of: "2024-02", downstream: months, upstream: days, now: now)
        #expect(february.count == 29 && february.first == "2024-02-01" && february.last == "2024-02-29")
        #expect(try PartitionMapping.all.upstreamKeys(of: "2024-02", downstream: months, upstream: months, now: now).count == 3)
        #expect(try PartitionMapping.identity.upstreamKeys(of: "x", downstream: nil, upstream: months, now: now).count == 3,
                "an unpartitioned asset reads all of its upstream")
        #expect(throws: PartitionError.self) { try PartitionMapping.identity.upstreamKeys(of: "2024-07-01", downstream: days, upstream: days, now: now) }
        #expect(try PartitionMapping(config: ["previous": 2]) == .previous(2))
        #expect(try PartitionMapping(config: "all_of_window") == .allOfWindow)
        #expect(throws: PartitionError.self) { try PartitionMapping(config: "sideways") }
    }
}
