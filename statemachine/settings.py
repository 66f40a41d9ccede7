"""The Intacct settings card of ServiceTitan and the naming rules, as plain values.

These are domain values, not configuration plumbing: `daemon.config` builds them from the YAML file
and everything that decides what a record should look like in Intacct takes them explicitly.
"""

from __future__ import annotations

from dataclasses import dataclass

# The sub-settings of the card, each of which is meaningless (and refused) without the master switch.
SUB_SETTINGS: tuple[str, ...] = (
    "enable_customer_project_linkage",
    "enable_project_automatic_synchronization",
    "enable_parent_project_mapping",
    "use_project_name_for_intacct_project_name",
)
MASTER_SETTING = "enable_intacct_projects"

JOB_PLACEHOLDERS = frozenset(
    {"job_id", "job_number", "project_id", "project_number", "project_name", "customer_id", "customer_name"}
)
PROJECT_PLACEHOLDERS = frozenset(
    {"project_id", "project_number", "project_name", "customer_id", "customer_name"}
)


@dataclass(frozen=True)
class Settings:
    """The toggles of the Intacct settings card, with the card's hierarchy."""

    enable_intacct_projects: bool = True
    enable_customer_project_linkage: bool = False
    enable_project_automatic_synchronization: bool = True
    enable_parent_project_mapping: bool = True
    use_project_name_for_intacct_project_name: bool = True

    def hierarchy_violations(self) -> list[str]:
        """Sub-settings switched on while the master switch is off, by name."""
        if self.enable_intacct_projects:
            return []
        return [name for name in SUB_SETTINGS if getattr(self, name)]

    @property
    def auto_sync(self) -> bool:
        """Whether ST changes are followed in the background."""
        return self.enable_intacct_projects and self.enable_project_automatic_synchronization

    @property
    def parent_mapping(self) -> bool:
        return self.enable_intacct_projects and self.enable_parent_project_mapping

    def syncs(self, kind: str) -> bool:
        """Whether records of `kind` go to Intacct at all.

        ServiceTitan projects exist in Intacct only as the parents of jobs: with parent mapping off
        nothing is sent for them (no create, update or read-back), and jobs carry no PARENTID.
        """
        if not self.enable_intacct_projects:
            return False
        return kind == "job" or self.parent_mapping

    @property
    def customer_linkage(self) -> bool:
        return self.enable_intacct_projects and self.enable_customer_project_linkage

    @property
    def project_names(self) -> bool:
        return self.enable_intacct_projects and self.use_project_name_for_intacct_project_name


@dataclass(frozen=True)
class FieldMapping:
    """How ST values become Intacct PROJECT fields (templates use str.format placeholders)."""

    job_project_id: str = "J-{job_number}"
    job_project_name: str = "{job_number} {customer_name}"
    project_project_id: str = "P-{project_number}"
    project_name_fallback: str = "Project {project_number}"
    customer_id: str = "{customer_id}"
    project_category: str = "Contract"
    name_max_length: int = 200
