"""Results files, baselines and machine classes: versioned JSON written atomically (no torch)."""
