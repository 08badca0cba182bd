extension BranchCondition {
    /// Whether the condition holds, given how each named task ended. AND of nothing holds.
    public func holds(_ progress: (String) -> TaskProgress) -> Bool {
        let checks = tasks.map { name, wanted in
            switch progress(name) {
            case .succeeded, .disabled: return wanted == .success
            case .failed, .skipped: return wanted == .failure
            default: return false
            }
        }
        return relation == .and ? checks.allSatisfy { $0 } : checks.contains(true)
    }
}
