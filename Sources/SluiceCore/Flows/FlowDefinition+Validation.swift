extension FlowDefinition {
    /// Checks the graph: unique names, known dependencies, dead-letter targets, no cycles.
    /// Returns every problem found, in file order. `deferringUnknownDependencies` lets
    /// `depends_on` and asset `inputs` name tasks that are not in this definition (code assets
    /// it is combined with later, where the combined graph is checked again).
    public func graphErrors(deferringUnknownDependencies: Bool = false) -> [FlowError] {
        var errors: [FlowError] = []
        var firstByName: [String: TaskDefinition] = [:]
        for task in tasks {
            if let first = firstByName[task.name] {
                errors.append(FlowError(.duplicateName, "task name '\(task.name)' is already used at line \(first.location.line)", at: task.location))
            } else {
                firstByName[task.name] = task
            }
        }
        let names = Array(firstByName.keys)
        for task in tasks {
            for edge in task.inputs where firstByName[edge.from] == nil && !deferringUnknownDependencies {
                errors.append(FlowError(.missingDependency, "task '\(task.name)' depends on '\(edge.from)', which is not a task of this flow",
                                        at: edge.location ?? task.location, suggestion: Suggestion.closest(to: edge.from, in: names)))
            }
            if case .route(let target) = task.onError.kind {
                if firstByName[target] == nil {
                    errors.append(FlowError(.missingDependency, "on_error of task '\(task.name)' routes to '\(target)', which is not a task of this flow",
                                            at: task.location, suggestion: Suggestion.closest(to: target, in: names)))
                } else if target == task.name {
                    errors.append(FlowError(.invalidValue, "on_error of task '\(task.name)' routes to the task itself", at: task.location))
                }
            }
            if task.inputs.contains(where: { $0.from == task.name }) {
                errors.append(FlowError(.cycle, "task '\(task.name)' depends on itself", at: task.location))
            }
        }
        errors += assetErrors(deferringUnknownDependencies: deferringUnknownDependencies)
        if let cycle = findCycle(known: firstByName) {
            let task = firstByName[cycle[0]]!
            errors.append(FlowError(.cycle, "dependency cycle: \(cycle.joined(separator: " -> ")) -> \(cycle[0])", at: task.location))
        }
        return errors
    }

    /// A cycle through the dependencies (and dead-letter routes), if there is one, as task names.
    private func findCycle(known: [String: TaskDefinition]) -> [String]? {
        var edges: [String: [String]] = [:]  // parent -> children
        for task in tasks {
            for dep in task.dependencies where known[dep] != nil && dep != task.name { edges[dep, default: []].append(task.name) }
            if case .route(let target) = task.onError.kind, known[target] != nil, target != task.name {
                edges[task.name, default: []].append(target)
            }
        }
        var state: [String: Int] = [:]  // 1 visiting, 2 done
        var stack: [String] = []
        func visit(_ node: String) -> [String]? {
            state[node] = 1
            stack.append(node)
            for child in edges[node] ?? [] {
                if state[child] == 1, let start = stack.firstIndex(of: child) { return Array(stack[start...]) }
                if state[child] == nil, let found = visit(child) { return found }
            }
            stack.removeLast()
            state[node] = 2
            return nil
        }
        for task in tasks where state[task.name] == nil {
            if let found = visit(task.name) { return found }
        }
        return nil
    }
}
