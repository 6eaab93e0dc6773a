"""Terminal tables, verdict tables, the ladder report, charts and asv history pages (no torch)."""
