"""What a run is made of: cases, workloads, the validated selection and the memory fit (no torch)."""
