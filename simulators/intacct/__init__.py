"""A wire-faithful Sage Intacct XML gateway simulator (aiohttp), for tests, demo and benchmarks.

Run alone with ``python -m simulators.intacct --port 9002``; see ``simulators/README.md``.
It never imports ``adapters``: it parses requests with its own code so the two cannot share a bug.
"""

from simulators.intacct.app import create_app
from simulators.intacct.faults import Faults
from simulators.intacct.gateway import GATEWAY_PATH, STATE
from simulators.intacct.projects import Project
from simulators.intacct.state import IntacctSimOptions, SimState

__all__ = ["GATEWAY_PATH", "STATE", "Faults", "IntacctSimOptions", "Project", "SimState", "create_app"]
