"""The `settings:` and `mapping:` sections, read into statemachine's domain values.

The hierarchy of the settings card and the naming templates are checked here, before a wrong
PROJECTID can reach Intacct.
"""

from __future__ import annotations

import string
from dataclasses import fields

from daemon.config.reader import ConfigError, Section
from statemachine.settings import (
    JOB_PLACEHOLDERS,
    MASTER_SETTING,
    PROJECT_PLACEHOLDERS,
    SUB_SETTINGS,
    FieldMapping,
    Settings,
)

# A PROJECTID must never change for the life of its record (creates are idempotent by it, and a job
# moved to another project keeps its Intacct project), so ID templates may use stable ids only.
_JOB_ID_PLACEHOLDERS = frozenset({"job_id", "job_number"})
_PROJECT_ID_PLACEHOLDERS = frozenset({"project_id", "project_number"})
_CUSTOMER_PLACEHOLDERS = frozenset({"customer_id", "customer_name"})


def _braced(names: frozenset[str]) -> str:
    return " ".join(f"{{{name}}}" for name in sorted(names))


def check_template(section: Section, key: str, template: str, allowed: frozenset[str]) -> tuple[str, list[str]]:
    """The literal prefix and the placeholders of a str.format template, or a ConfigError."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise section.error(key, f"bad template: {exc} (write {{{{ or }}}} for a literal brace)") from None
    prefix: list[str] = []
    names: list[str] = []
    for literal, name, spec, conversion in parsed:
        if not names:
            prefix.append(literal)
        if name is None:
            continue
        if name not in allowed:
            raise section.error(key, f"placeholder {{{name}}} is not allowed here (allowed: {_braced(allowed)})")
        if spec or conversion:
            # Values are rendered as plain text; a format spec would be ignored silently.
            raise section.error(key, f"placeholder {{{name}}} takes no format spec or conversion")
        names.append(name)
    return "".join(prefix), names


def _id_template(section: Section, key: str, default: str, ids: frozenset[str], kind: str) -> tuple[str, str]:
    template = _text(section, key, default)
    prefix, names = check_template(section, key, template, ids)
    if not names:
        raise section.error(
            key,
            f"must contain {' or '.join(f'{{{n}}}' for n in sorted(ids))}, "
            f"or every {kind} would get the same PROJECTID",
        )
    if not prefix:
        raise section.error(
            key,
            f"must start with literal text (like {default!r}) so that reconciliation "
            "can tell this daemon's projects from the others in Intacct",
        )
    return template, prefix


def _text(section: Section, key: str, default: str) -> str:
    value = section.string(key, default)
    assert value is not None
    if not value.strip():
        raise section.error(key, "must not be empty")
    return value


def read_settings(top: Section) -> Settings:
    """`settings:`; a sub-setting turned on under a master switch that is off is refused."""
    section = top.section("settings", [MASTER_SETTING, *SUB_SETTINGS])
    master = section.boolean(MASTER_SETTING, Settings.enable_intacct_projects)
    # With the master switch off, a sub-setting the file does not mention is off too (the card
    # greys them out); only one that the file turns on explicitly is refused.
    subs = {name: section.boolean(name, getattr(Settings, name) and master) for name in SUB_SETTINGS}
    settings = Settings(enable_intacct_projects=master, **subs)
    offenders = [section.key(name) for name in settings.hierarchy_violations()]
    if offenders:
        parent = section.key(MASTER_SETTING)
        verb, their, these = ("is", "its", "this") if len(offenders) == 1 else ("are", "their", "these")
        raise ConfigError(
            section.source,
            ", ".join(offenders),
            f"{verb} true while {their} parent {parent} is false (turn the parent on or {these} off)",
        )
    return settings


def read_mapping(top: Section) -> FieldMapping:
    """`mapping:`; each template is checked against the placeholders it may use."""
    section = top.section("mapping", [f.name for f in fields(FieldMapping)])
    d = FieldMapping()
    job_id, job_prefix = _id_template(section, "job_project_id", d.job_project_id, _JOB_ID_PLACEHOLDERS, "job")
    project_id, project_prefix = _id_template(
        section, "project_project_id", d.project_project_id, _PROJECT_ID_PLACEHOLDERS, "project"
    )
    if job_prefix.startswith(project_prefix) or project_prefix.startswith(job_prefix):
        keys = f"{section.key('job_project_id')}, {section.key('project_project_id')}"
        raise ConfigError(
            section.source,
            keys,
            f"literal prefixes {job_prefix!r} and {project_prefix!r} overlap; give each its own "
            "(like 'J-' and 'P-') so that reconciliation can tell job projects from project projects",
        )
    templates = {
        "job_project_name": JOB_PLACEHOLDERS,
        "project_name_fallback": PROJECT_PLACEHOLDERS,
        "customer_id": _CUSTOMER_PLACEHOLDERS,
    }
    values = {key: _text(section, key, getattr(d, key)) for key in templates}
    for key, allowed in templates.items():
        check_template(section, key, values[key], allowed)
    return FieldMapping(
        job_project_id=job_id,
        project_project_id=project_id,
        **values,
        project_category=_text(section, "project_category", d.project_category),
        name_max_length=section.integer("name_max_length", d.name_max_length, low=1, high=4000),
    )
