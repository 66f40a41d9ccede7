"""The domain: record states and transitions, desired Intacct fields, naming and retry rules. No I/O."""

from statemachine.desired import Desired, JobFacts, ProjectFacts, desired_for_job, desired_for_project
from statemachine.machine import InvalidTransition, Lifecycle, next_state, source_values, sources
from statemachine.policy import RetryPolicy
from statemachine.settings import FieldMapping, Settings
from statemachine.states import STORED_STATES, TRANSITIONS, State, Trigger

__all__ = [
    "STORED_STATES",
    "TRANSITIONS",
    "Desired",
    "InvalidTransition",
    "JobFacts",
    "Lifecycle",
    "FieldMapping",
    "ProjectFacts",
    "RetryPolicy",
    "Settings",
    "State",
    "Trigger",
    "desired_for_job",
    "desired_for_project",
    "next_state",
    "source_values",
    "sources",
]
