"""Sage Intacct XML gateway adapter: PROJECT create/update/read/query over one session."""

from adapters.intacct.client import IntacctClient, Observer
from adapters.intacct.models import (
    CreateProject,
    ErrorDetail,
    Function,
    FunctionResult,
    IntacctCredentials,
    IntacctProject,
    Outcome,
    QueryProjects,
    ReadProjects,
    UpdateProject,
    project_id_problem,
)
from adapters.intacct.xml import (
    ParsedResponse,
    build_request,
    build_session_request,
    classify_result,
    parse_response,
)

__all__ = [
    "CreateProject",
    "ErrorDetail",
    "Function",
    "FunctionResult",
    "IntacctClient",
    "IntacctCredentials",
    "IntacctProject",
    "Observer",
    "Outcome",
    "ParsedResponse",
    "QueryProjects",
    "ReadProjects",
    "UpdateProject",
    "build_request",
    "build_session_request",
    "classify_result",
    "parse_response",
    "project_id_problem",
]
