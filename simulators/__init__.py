"""Fake ServiceTitan and Sage Intacct servers (aiohttp) that speak the real wire formats; see README.md."""
