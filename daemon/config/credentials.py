"""Adapter credentials from the configuration (the only place secrets are revealed to the adapters)."""

from __future__ import annotations

from adapters.intacct import IntacctCredentials
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
    ia = config.intacct
    return IntacctCredentials(
        endpoint_url=ia.endpoint_url,
        sender_id=ia.sender_id,
        sender_password=ia.sender_password.reveal(),
        company_id=ia.company_id,
        user_id=ia.user_id,
        user_password=ia.user_password.reveal(),
        entity_id=ia.entity_id,
    )
