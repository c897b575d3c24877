/// The dashboard: one page, no build step, no external assets.
enum Dashboard {
    static let page = "<!doctype html><title>Sluice</title>"
}
