"""Benchmark and regression harness for multimodal generation model inference.

The library never imports pytest: `harness.pytest_plugin` is the only bridge.
"""

__version__ = "0.1.0"
