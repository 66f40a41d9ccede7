"""Shared fixtures live in tests/plugins/ so that each concern has one module."""

pytest_plugins = [
    "tests.plugins.database", "tests.plugins.private_postgres", "tests.plugins.simulators",
    "tests.plugins.intacct_rest", "tests.plugins.pages", "tests.plugins.stack",
]
