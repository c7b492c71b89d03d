"""Stand-ins for demos, tests and the conformance suite: sample data, never a node's own."""
