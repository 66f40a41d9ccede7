"""The daemon's own parts in-process against both simulators and a fresh database (no subprocess).

The configuration is read through a holder, so a test can change settings or templates the way a
reload does and see what the running parts make of it.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from daemon.config.loading import Config, parse_config
from daemon.store.rows import Record, RecordKey
from daemon.wiring import Toolkit, open_toolkit
from tests.plugins.database import TENANT_ID
from tests.plugins.simulators import IntacctSim, ServiceTitanSim

LEASE = timedelta(seconds=30)


def make_config(dsn: str, st: ServiceTitanSim, ia: IntacctSim, **sections: Any) -> Config:
    return parse_config(config_data(dsn, st, ia, **sections), "test-config", env={})


def config_data(dsn: str, st: ServiceTitanSim, ia: IntacctSim, **sections: Any) -> dict[str, Any]:
    """The configuration file's content (sections given replace or extend the defaults key by key)."""
    data: dict[str, Any] = {
        "database": {"dsn": dsn},
        "servicetitan": {"tenant_id": TENANT_ID, "api_base_url": st.base_url, "auth_url": st.auth_url,
                         "app_key": "ak1.kit-app-key", "client_id": "cid.kit", "client_secret": "cs1.kit-secret"},
        "intacct": {"endpoint_url": ia.url, "sender_id": "sender", "sender_password": "sender-pass-kit",
                    "company_id": "company", "user_id": "user", "user_password": "user-pass-kit",
                    "request_timeout": "5s"},
        "sync": {"backoff_initial": "0.01s", "backoff_max": "0.02s", "max_attempts": 3},
        "reconcile": {"scope": "all", "repair": True},
    }
    for name, values in sections.items():
        data[name] = {**data.get(name, {}), **values}
    return data


@dataclass
class Kit:
    """A toolkit whose configuration the test may swap (what a reload does)."""

    tk: Toolkit
    holder: dict[str, Config]
    st: ServiceTitanSim
    ia: IntacctSim

    @property
    def config(self) -> Config:
        return self.holder["config"]

    def reconfigure(self, **sections: Any) -> None:
        self.holder["config"] = make_config(self.config.database.dsn, self.st, self.ia, **sections)

    async def sync_all(self) -> None:
        """Claim and sync until nothing is ready (what the workers do)."""
        for _ in range(50):
            batch = await self.tk.store.claim_batch(self.tk.engine.owner, 100, LEASE,
                                                    projects=self.config.settings.syncs("project"))
            if not batch:
                return
            await self.tk.engine.process(batch)
        raise AssertionError("the queue did not drain")

    async def read_new_job_of_a_new_project(self, customer_id: int, *, project_name: str = "Riverside",
                                            project_customer_id: int | None = None) -> tuple[int, int]:
        """The ids of a new project 1101 and its job 24001 in ServiceTitan, the job read as the jobs feed
        reads it (its untracked project fetched with it)."""
        project = self.st.create_project(name=project_name, number="1101",
                                         customerId=project_customer_id or customer_id).id
        job = self.st.create_job(customerId=customer_id, projectId=project, jobNumber="24001").id
        await self.tk.ingestor.ingest_jobs([await self.tk.servicetitan.get_job(job)])
        return project, job

    async def record(self, kind: str, st_id: int) -> Record:
        found = await self.tk.store.get(RecordKey(kind, st_id))
        assert found is not None, f"{kind} {st_id} is not tracked"
        return found


@contextlib.asynccontextmanager
async def open_kit(dsn: str, st: ServiceTitanSim, ia: IntacctSim, **sections: Any) -> AsyncIterator[Kit]:
    holder = {"config": make_config(dsn, st, ia, **sections)}
    async with open_toolkit(lambda: holder["config"], owner="test-kit", pool_size=6) as tk:
        yield Kit(tk, holder, st, ia)
