"""Running cases on the device: the case run, the record schema, clocks, memory, profiling."""
