import ArgumentParser
import Foundation
import SluiceConfig
import SluiceCore
import SluiceEngine
import SluiceServer
import SluiceTasks

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve flows: webhooks and sources, the HTTP API, live events, the dashboard, and worker duty.",
        discussion: """
            Loads every flow under the flows path (a flow's id is its path without the extension) and keeps them running; \
            edits, new files and deletions take effect within a second. Settings come from sluice.yaml (--config, else \
            ./sluice.yaml when present), each overridable by SLUICE_* variables (server.port: SLUICE_SERVER_PORT), and \
            by the options here. Stops on SIGTERM or SIGINT: no new requests, runs in flight finish within the grace period.
            """
    )

    @Argument(help: "The flows folder (default: the config's `flows`, else ./flows).")
    var flows: String?

    @Option(name: .long, help: "The config file (default: ./sluice.yaml when it exists).")
    var config: String?

    @Option(name: .long, help: "Address to listen on (default 127.0.0.1).")
    var host: String?

    @Option(name: .long, help: "Port to listen on (default 8080; 0 picks a free one).")
    var port: Int?

    @Option(name: .long, help: "Where runs are recorded: a SQLite path, a postgres:// URL, or memory.")
    var store: String?

    func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        let file = config ?? (FileManager.default.fileExists(atPath: "sluice.yaml") ? "sluice.yaml" : nil)
        var settings: ServeConfig
        do {
            settings = try ServeConfig.load(file: file, environment: environment)
        } catch {
            printErrors(error)
            throw ExitCode(ExitStatus.invalidInput)
        }
        if let flows { settings.flows = flows.hasPrefix("/") ? flows : FileManager.default.currentDirectoryPath + "/" + flows }
        if let host { settings.host = host }
        if let port {
            guard (0...65535).contains(port) else { throw ValidationError("--port must be from 0 to 65535") }
            settings.port = port
        }
        if let store { settings.store = store }
        // Without a config file, the default store sits beside the flows.
        let storeLocation = file == nil && store == nil && environment["SLUICE_STORE"] == nil
            ? ((settings.flows as NSString).appendingPathComponent(".sluice/sluice.db"))
            : settings.resolve(settings.store)
        let opened = try await StoreOptions.open(location: storeLocation)
        do {
            let server = try SluiceServer(config: settings, store: opened.store, storeName: storeLocation, registry: BuiltinTasks.registry,
                                          loader: makeLoader(), tables: opened.tables.manager)
            try await server.run()
            BuiltinTasks.killChildProcesses()
            await opened.close()
        } catch let error as SluiceServer.ConfigError {
            await opened.close()
            Console.error("error: \(error)")
            throw ExitCode(ExitStatus.invalidInput)
        } catch {
            await opened.close()
            Console.error("error: \(error)")
            throw ExitCode(ExitStatus.runFailed)
        }
    }
}
