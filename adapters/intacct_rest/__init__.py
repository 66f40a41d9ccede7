"""Sage Intacct REST API adapter: PROJECT create/update/read/query with OAuth2 client credentials."""

from adapters.intacct_rest.client import IntacctRestClient, like_filters
from adapters.intacct_rest.models import DEFAULT_BASE_URL, MAX_BATCH, RestCredentials

__all__ = ["DEFAULT_BASE_URL", "MAX_BATCH", "IntacctRestClient", "RestCredentials", "like_filters"]
