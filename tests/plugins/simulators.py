"""Simulator fixtures: both simulators on loopback, in-process."""
