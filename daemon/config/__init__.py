"""The configuration file, read once into frozen dataclasses, and the credentials it reveals to the adapters."""

from __future__ import annotations

from daemon.config.credentials import (
    intacct_credentials,
    intacct_rest_credentials,
    intacct_settings,
    servicetitan_credentials,
)
from daemon.config.dsn import mask_dsn
from daemon.config.loading import Config, ConfigError, load_config, parse_config, restart_needed

__all__ = [
    "Config",
    "ConfigError",
    "intacct_credentials",
    "intacct_rest_credentials",
    "intacct_settings",
    "load_config",
    "mask_dsn",
    "parse_config",
    "restart_needed",
    "servicetitan_credentials",
]
