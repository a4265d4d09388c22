"""Tasks and their runs: definitions, history, liveness, retention and the feed store."""
