"""Clients for the external systems: ServiceTitan, Sage Intacct and SMTP mail."""
