"""`intacct.api: xml|rest`: each API requires its own credentials, and only those."""

from __future__ import annotations

from pathlib import Path

from daemon.config import intacct_rest_credentials, intacct_settings
from tests.unit.test_config import DELETE, config, error

XML_KEYS = ("sender_id", "sender_password", "company_id", "user_id", "user_password")
REST = {"intacct.api": "rest", "intacct.client_id": "client-1", "intacct.client_secret": "rest-sekrit-5",
        "intacct.web_services_user": "wsuser@acme"}
WITHOUT_XML = {f"intacct.{k}": DELETE for k in XML_KEYS}


def test_xml_is_the_default_and_needs_no_rest_keys() -> None:
    cfg = config()
    assert cfg.intacct.api == "xml" and cfg.intacct.client_id is None and cfg.intacct.client_secret is None
    assert intacct_settings(cfg)[0] == "xml"


def test_rest_needs_no_xml_keys() -> None:
    cfg = config({**REST, **WITHOUT_XML})
    assert cfg.intacct.api == "rest" and cfg.intacct.sender_id is None
    creds = intacct_rest_credentials(cfg)
    assert (creds.base_url, creds.client_id, creds.username) == ("https://api.intacct.com/ia/api/v1", "client-1",
                                                                 "wsuser@acme")
    assert creds.client_secret == "rest-sekrit-5" and "rest-sekrit-5" not in repr(creds)
    assert "rest-sekrit-5" in cfg.secrets()
    assert cfg.public_dict()["intacct"]["client_secret"] == "***"


def rest_without(key: str) -> dict[str, object]:
    return {k: v for k, v in REST.items() if k != f"intacct.{key}"}


def test_each_api_requires_its_own_credentials() -> None:
    assert error({"intacct.api": "rest"}) == "config.yaml: intacct.client_id: required"
    assert error(rest_without("client_secret")) == "config.yaml: intacct.client_secret: required"
    assert error(rest_without("web_services_user")) == "config.yaml: intacct.web_services_user: required"
    assert error({"intacct.sender_id": DELETE}) == "config.yaml: intacct.sender_id: required"


def test_api_and_user_are_checked() -> None:
    assert "intacct.api: must be one of xml, rest" in error({"intacct.api": "soap"})
    assert "must be user@company" in error({**REST, "intacct.web_services_user": "wsuser"})
    assert config({**REST, "intacct.web_services_user": "ws@acme|E100"}).intacct.web_services_user == "ws@acme|E100"


def test_client_secret_from_a_file(tmp_path: Path) -> None:
    (tmp_path / "cs").write_text("from-file-sekrit\n")
    cfg = config({**rest_without("client_secret"), "intacct.client_secret_file": str(tmp_path / "cs")})
    assert intacct_rest_credentials(cfg).client_secret == "from-file-sekrit"
    assert "is given twice" in error({**REST, "intacct.client_secret_file": str(tmp_path / "cs")})
