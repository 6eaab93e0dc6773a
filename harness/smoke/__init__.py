"""`harness smoke`: every CUDA path of the harness run once, with its evidence checked, in one short
run (docs/smoke.md). A table of named checks (harness.smoke.checks, harness.smoke.suites); the
command (harness.smoke.command) runs them and writes one JSON verdict."""
