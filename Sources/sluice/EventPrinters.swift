import Foundation
import SluiceCore
import SluiceEngine

/// Prints engine events as one JSON object per line on stderr.
struct JSONEventPrinter: EngineEventSink {
    func receive(_ event: EngineEvent) {
        Console.error(event.json.jsonString())
    }
}

/// Prints engine events for people: one short line each, colored on a terminal.
struct HumanEventPrinter: EngineEventSink {
    let color: Bool

    private func paint(_ text: String, _ code: String) -> String { color ? "\u{1B}[\(code)m\(text)\u{1B}[0m" : text }

    func receive(_ event: EngineEvent) {
        let task = event.task ?? ""
        let took = event.duration.map { " (\($0.shortDescription))" } ?? ""
        let line: String?
        switch event.kind {
        case .runStarted:
            line = paint("▶ run \(event.runID)", "1") + (event.task.map { " from \($0)" } ?? "")
        case .runCompleted:
            line = paint("✔ run \(event.runID) completed", "32") + took
        case .runFailed:
            var text = paint("✘ run \(event.runID) \(event.message == "cancelled" ? "cancelled" : "failed")", "31") + took
            if let message = event.message, message != "cancelled" { text += ": \(message)" }
            if let interrupted = event.interrupted, !interrupted.isEmpty { text += " (interrupted: \(interrupted.joined(separator: ", ")))" }
            line = text
        case .runSuspended:
            line = paint("⏸ run \(event.runID) suspended", "33") + took + ": \(event.message ?? "")"
        case .taskStarted:
            line = nil
        case .taskCompleted:
            line = "  " + paint("✓", "32") + " \(task)\(took)"
        case .taskSkipped:
            line = "  " + paint("–", "2") + " \(task) skipped: \(event.message ?? "")"
        case .taskCancelled:
            line = "  " + paint("⊘", "33") + " \(task) cancelled: \(event.message ?? "")"
        case .taskRetrying:
            let delay = event.delay.map { " retrying in \($0.shortDescription)" } ?? ""
            line = "  " + paint("↻", "33") + " \(task) attempt \(event.attempt ?? 1) failed: \(event.message ?? "");\(delay)"
        case .taskFailed:
            line = "  " + paint("✗", "31") + " \(task) failed\(event.attempt.map { " after \($0) attempt\($0 == 1 ? "" : "s")" } ?? ""): \(event.message ?? "")"
        case .log:
            let level = event.level ?? "info"
            let tag = level == "error" ? paint(level, "31") : level == "warn" ? paint(level, "33") : level
            line = "  [\(task)] \(tag): \(event.message ?? "")"
        case .stdout:
            line = "  [\(task)] " + (event.message ?? "")
        case .stderr:
            line = "  [\(task)] " + paint(event.message ?? "", "2")
        case .progress:
            line = "  [\(task)] \(Int(event.percent ?? 0))% \(event.message ?? "")"
        default:
            line = event.description
        }
        if let line { Console.error(line) }
    }
}
