"""A ServiceTitan simulator: OAuth2 tokens, JPM export feeds and lists, CRM customers, faults."""

from simulators.servicetitan.app import create_app
from simulators.servicetitan.faults import Faults, Stats
from simulators.servicetitan.seed import demo_seed, load_seed_file
from simulators.servicetitan.state import STATE, ServiceTitanSimOptions, SimState
from simulators.servicetitan.tenant import InputError, TenantData

__all__ = [
    "STATE",
    "Faults",
    "InputError",
    "ServiceTitanSimOptions",
    "SimState",
    "Stats",
    "TenantData",
    "create_app",
    "demo_seed",
    "load_seed_file",
]
