import SluiceEngine

/// Every task type that ships with Sluice. A new type is one file and one line here.
public enum BuiltinTasks {
    public static let all: [TaskRegistration] = [
        GenerateTask.registration,
        LogTask.registration,
        DelayTask.registration,
        ConvertTask.registration,
        IterateTask.registration,
    ] + EngineOperators.all + [
        ScriptTask.registration,
        ShellTask.registration,
        HTTPRequestTask.registration,
        HTTPEndpointTask.registration,
    ]

    /// Kills every child process a `shell` task started, with what they started in turn: for
    /// a process that is about to exit without waiting for its runs.
    public static func killChildProcesses() { ProcessRegistry.shared.killAll() }

    /// A registry holding every built-in task type.
    public static var registry: TaskRegistry {
        var registry = TaskRegistry()
        for registration in all { registry.register(registration) }
        return registry
    }
}
