"""The A/B gate: two versions of the code (two revisions, or two Python environments) measured in
one job, case by case in interleaved ABBA rounds, judged on per-round paired ratios (docs/ab.md).

Driver side (`driver`, `sides`, `protocol`, `schedule`, `decide`, `report`) imports no torch;
`worker` runs inside each side's own interpreter and imports that side's harness.
"""
