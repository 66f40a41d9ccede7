"""Adapters from the configuration: credentials (the only place secrets are revealed to the adapters),
and the Intacct connection, which speaks the configured API (`intacct.api`) behind the one port."""

from __future__ import annotations

from adapters.intacct import IntacctCredentials
from adapters.intacct_rest import RestCredentials
from adapters.servicetitan import ServiceTitanCredentials
from daemon.config.loading import Config


def servicetitan_credentials(config: Config) -> ServiceTitanCredentials:
    st = config.servicetitan
    return ServiceTitanCredentials(
        api_base_url=st.api_base_url,
        auth_url=st.auth_url,
        tenant_id=st.tenant_id,
        app_key=st.app_key.reveal(),
        client_id=st.client_id,
        client_secret=st.client_secret.reveal(),
    )


def intacct_credentials(config: Config) -> IntacctCredentials:
    """The XML gateway's sender and user credentials (the loader requires them when `api: xml`)."""
    ia = config.intacct
    assert ia.sender_id and ia.sender_password and ia.company_id and ia.user_id and ia.user_password
    return IntacctCredentials(
        endpoint_url=ia.endpoint_url,
        sender_id=ia.sender_id,
        sender_password=ia.sender_password.reveal(),
        company_id=ia.company_id,
        user_id=ia.user_id,
        user_password=ia.user_password.reveal(),
        entity_id=ia.entity_id,
    )


def intacct_rest_credentials(config: Config) -> RestCredentials:
    """The REST API's OAuth2 client and Web Services user (required by the loader when `api: rest`)."""
    ia = config.intacct
    assert ia.client_id and ia.client_secret and ia.web_services_user
    return RestCredentials(
        base_url=ia.rest_url,
        client_id=ia.client_id,
        client_secret=ia.client_secret.reveal(),
        username=ia.web_services_user,
        entity_id=ia.entity_id,
    )


def intacct_settings(config: Config) -> tuple[str, IntacctCredentials | RestCredentials]:
    """The API in use and its credentials: what a reload compares to decide whether to reconnect."""
    if config.intacct.api == "rest":
        return "rest", intacct_rest_credentials(config)
    return "xml", intacct_credentials(config)
