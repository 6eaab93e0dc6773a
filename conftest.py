"""Root conftest: loads the harness plugin, which registers --benchmark and the harness options."""

pytest_plugins = ("harness.pytest_plugin",)
