"""Statistics, verdicts, attribution and the lever ladder: pure functions over records (no torch)."""
