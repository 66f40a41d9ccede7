"""The ServiceTitan REST client: export feeds, lookups by id, list pages and customers.

One ``_get()`` applies the token, the rate and concurrency caps, the timeout, and the retries, and
turns every transport and HTTP failure into the shared error classes of ``adapters.errors``.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import quote

import aiohttp
from multidict import CIMultiDictProxy
from yarl import URL

from adapters.errors import ConnectionFailure, NotFoundError, TransientError
from adapters.servicetitan.auth import Observer, TokenManager
from adapters.servicetitan.customers import CustomerCache
from adapters.servicetitan.limits import TokenBucket, full_jitter
from adapters.servicetitan.models import (
    Customer,
    ExportPage,
    Job,
    Project,
    RejectedRow,
    ServiceTitanCredentials,
    format_time,
)
from adapters.servicetitan.wire import (
    body_field,
    decode_json,
    error_for_status,
    log,
    outcome_for_status,
    parse_rows,
)
from adapters.transport import BodyTooLarge, read_capped

__all__ = ["ServiceTitanClient"]

T = TypeVar("T")

IDS_PER_CALL = 50  # ServiceTitan's limit on `ids=`
MAX_PAGE_SIZE = 5000
# A Retry-After longer than this is handed to the caller (TransientError.retry_after) instead of
# holding a worker asleep inside one call.
MAX_INLINE_RETRY_AFTER = 60.0
# The largest page read: 5,000 rows of a list are a few MB; more is not ServiceTitan.
MAX_PAGE_BYTES = 32 * 1024 * 1024
# List paging stops this many pages beyond the total announced on the first page.
_LIST_MARGIN_PAGES = 2


class ServiceTitanClient:
    """Reads jobs, projects and customers of one ServiceTitan tenant.

    ``observer(outcome, seconds)`` is called once per HTTP request, token requests included, with
    the class of that one answer before any retry: ``ok``; ``connection_error`` (host unreachable,
    credentials, token or app key refused: 400/401/403 from the token endpoint, 401/403 from the
    API); ``transient_error`` (timeout, 5xx, 408); ``rate_limited`` (429); ``not_found`` (404);
    ``permanent_error`` (other 4xx). A 200 whose body is not JSON counts ``ok`` and is retried.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        credentials: ServiceTitanCredentials,
        *,
        request_timeout: float = 100.0,
        max_concurrent: int = 4,
        max_requests_per_second: float = 40.0,
        max_retries: int = 5,
        observer: Observer | None = None,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        customer_cache_size: int = 50_000,
        customer_cache_ttl: float = 3600.0,
        rng: random.Random | None = None,
        max_page_bytes: int = MAX_PAGE_BYTES,
        retry_after_max: float = 600.0,
    ) -> None:
        self._session = session
        self._credentials = credentials
        self._timeout = aiohttp.ClientTimeout(total=request_timeout)
        self._max_retries = max_retries
        self._observer = observer
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._rng = rng or random.Random()
        self._max_page_bytes = max_page_bytes
        # A Retry-After is clamped to this (the daemon's sync.backoff_max): no upstream parks us longer.
        self.retry_after_max = retry_after_max
        self._tokens = TokenManager(session, credentials, request_timeout=request_timeout, observer=observer)
        self._semaphore = asyncio.Semaphore(max_concurrent)
        self._bucket = TokenBucket(max_requests_per_second)
        self._customers = CustomerCache(customer_cache_size, customer_cache_ttl)

    # ----------------------------------------------------------------- connection

    @property
    def tenant_id(self) -> int:
        """The tenant this client reads."""
        return self._credentials.tenant_id

    def update_credentials(self, credentials: ServiceTitanCredentials) -> None:
        """Switch to new credentials (config reload); the next call fetches a new token."""
        if (credentials.api_base_url, credentials.tenant_id) != (
            self._credentials.api_base_url,
            self._credentials.tenant_id,
        ):
            self._customers.clear()
        self._credentials = credentials
        self._tokens.set_credentials(credentials)

    async def describe(self) -> dict[str, object]:
        """What the connection is, for an operator's check (after a successful probe)."""
        c = self._credentials
        return {"tenant": c.tenant_id, "api_base_url": c.api_base_url, "token_expires_in_s": self._tokens.lifetime}

    async def probe(self) -> None:
        """Fetch a new token and make one minimal call: raises unless the connection works."""
        await self._tokens.fetch_now()
        # A token alone proves neither the app key nor that the app is connected to the tenant.
        try:
            await self._get("jpm", "jobs", {"page": "1", "pageSize": "1"})
        except NotFoundError:
            # A list endpoint never answers 404 by itself: the base URL or tenant is wrong.
            raise ConnectionFailure(
                "ServiceTitan's jobs list answered HTTP 404: check servicetitan.api_base_url and tenant_id",
                status=404,
            ) from None

    # ----------------------------------------------------------------- export feeds

    async def export_jobs(self, start: str, *, include_recent_changes: bool = True) -> AsyncIterator[ExportPage[Job]]:
        """Follow the jobs export feed from ``start`` (continueFrom token or ISO time) to its end."""
        async for page in self._export("jobs", start, include_recent_changes, Job.from_json):
            yield page

    async def export_projects(
        self, start: str, *, include_recent_changes: bool = True
    ) -> AsyncIterator[ExportPage[Project]]:
        """Follow the projects export feed from ``start`` (continueFrom token or ISO time) to its end."""
        async for page in self._export("projects", start, include_recent_changes, Project.from_json):
            yield page

    async def _export(
        self, feed: str, start: str, include_recent: bool, parse: Callable[[Mapping[str, Any]], T]
    ) -> AsyncIterator[ExportPage[T]]:
        position = start
        while True:
            params = {"from": position, "includeRecentChanges": "true" if include_recent else "false"}
            body = await self._get("jpm", f"export/{feed}", params)
            data = body_field(body, "data", list, f"export/{feed}")
            has_more = body_field(body, "hasMore", bool, f"export/{feed}")
            continue_from = body_field(body, "continueFrom", str, f"export/{feed}")
            rows, rejected = parse_rows(data, parse, feed)
            yield ExportPage(rows=rows, continue_from=continue_from, has_more=has_more, rejected=rejected)
            if not has_more or (not data and continue_from == position):
                return  # an empty page that does not move on is the end
            if continue_from == position:
                # Rows, "more", and the same token again: following it would read this page for ever.
                raise TransientError(f"ServiceTitan's export/{feed} makes no progress (continueFrom did not move)")
            position = continue_from

    # ----------------------------------------------------------------- jobs and projects

    async def get_job(self, job_id: int) -> Job:
        """One job by id (NotFoundError when ServiceTitan does not know it)."""
        return Job.from_json(await self._get("jpm", f"jobs/{int(job_id)}"))

    async def get_project(self, project_id: int) -> Project:
        """One project by id (NotFoundError when ServiceTitan does not know it)."""
        return Project.from_json(await self._get("jpm", f"projects/{int(project_id)}"))

    async def get_jobs(self, ids: Iterable[int]) -> list[Job]:
        """The jobs with these ids that exist, fetched 50 ids per call."""
        return await self._by_ids("jpm", "jobs", ids, Job.from_json)

    async def get_projects(self, ids: Iterable[int]) -> list[Project]:
        """The projects with these ids that exist, fetched 50 ids per call."""
        return await self._by_ids("jpm", "projects", ids, Project.from_json)

    def iter_jobs(
        self,
        *,
        modified_on_or_after: datetime | None = None,
        created_on_or_after: datetime | None = None,
        page_size: int = MAX_PAGE_SIZE,
    ) -> AsyncIterator[list[Job]]:
        """All jobs matching the filters, one list per page, in id order."""
        return self._pages("jobs", Job.from_json, modified_on_or_after, created_on_or_after, page_size)

    def iter_projects(
        self,
        *,
        modified_on_or_after: datetime | None = None,
        created_on_or_after: datetime | None = None,
        page_size: int = MAX_PAGE_SIZE,
    ) -> AsyncIterator[list[Project]]:
        """All projects matching the filters, one list per page, in id order."""
        return self._pages("projects", Project.from_json, modified_on_or_after, created_on_or_after, page_size)

    async def _pages(
        self,
        resource: str,
        parse: Callable[[Mapping[str, Any]], T],
        modified_on_or_after: datetime | None,
        created_on_or_after: datetime | None,
        page_size: int,
    ) -> AsyncIterator[list[T]]:
        # Sorting by id keeps page boundaries stable while records change between pages.
        size = max(1, min(MAX_PAGE_SIZE, page_size))
        params = {"pageSize": str(size), "sort": "+Id", "includeTotal": "true"}
        if modified_on_or_after is not None:
            params["modifiedOnOrAfter"] = format_time(modified_on_or_after)
        if created_on_or_after is not None:
            params["createdOnOrAfter"] = format_time(created_on_or_after)
        page = 1
        received = 0
        limit: int | None = None
        while True:
            body = await self._get("jpm", resource, {**params, "page": str(page)})
            data = body_field(body, "data", list, resource)
            has_more = body_field(body, "hasMore", bool, resource)
            if page == 1:
                total = body.get("totalCount")
                if isinstance(total, int) and not isinstance(total, bool) and total >= 0:
                    # Records created while paging may add a little; an upstream that never ends may not.
                    limit = total + _LIST_MARGIN_PAGES * size
            rows, rejected = parse_rows(data, parse, resource)
            self._log_rejected(rejected)
            yield rows
            if not has_more:
                return
            if not data:
                raise TransientError(f"ServiceTitan's {resource} page {page} is empty yet announces more")
            received += len(data)
            if limit is not None and received >= limit:
                return
            page += 1

    async def _by_ids(
        self,
        module: str,
        resource: str,
        ids: Iterable[int],
        parse: Callable[[Mapping[str, Any]], T],
        extra: Mapping[str, str] | None = None,
    ) -> list[T]:
        unique = list(dict.fromkeys(int(i) for i in ids))
        found: list[T] = []
        for chunk_start in range(0, len(unique), IDS_PER_CALL):
            chunk = unique[chunk_start : chunk_start + IDS_PER_CALL]
            params = {"ids": ",".join(str(i) for i in chunk), "page": "1", "pageSize": str(IDS_PER_CALL)}
            body = await self._get(module, resource, {**params, **(extra or {})})
            rows, rejected = parse_rows(body_field(body, "data", list, resource), parse, resource)
            self._log_rejected(rejected)
            found.extend(rows)
        return found

    @staticmethod
    def _log_rejected(rejected: Iterable[RejectedRow]) -> None:
        # Export callers get them in the page; lists and lookups only log what they skip.
        for row in rejected:
            log.warning("servicetitan_row_rejected: %s %s: %s", row.feed, row.id, row.reason)

    # ----------------------------------------------------------------- customers

    async def get_customers(self, ids: Iterable[int]) -> dict[int, Customer]:
        """The customers with these ids that exist (inactive ones included), cached."""
        wanted = list(dict.fromkeys(int(i) for i in ids))
        result: dict[int, Customer] = {}
        missing: list[int] = []
        for cid in wanted:
            cached = self._customers.get(cid)
            if cached is None:
                missing.append(cid)
            else:
                result[cid] = cached
        if missing:
            # The customers list returns active customers only unless asked for `Any`.
            fetched = await self._by_ids("crm", "customers", missing, Customer.from_json, {"active": "Any"})
            for customer in fetched:
                self._customers.put(customer)
                result[customer.id] = customer
        return result

    async def get_customer(self, customer_id: int) -> Customer:
        """One customer by id, cached (NotFoundError when ServiceTitan does not know it)."""
        cached = self._customers.get(int(customer_id))
        if cached is not None:
            return cached
        customer = Customer.from_json(await self._get("crm", f"customers/{int(customer_id)}"))
        self._customers.put(customer)
        return customer

    # ----------------------------------------------------------------- HTTP

    def _url(self, module: str, path: str, params: Mapping[str, str] | None) -> URL:
        base = self._credentials.api_base_url.rstrip("/")
        url = f"{base}/{module}/v2/tenant/{self._credentials.tenant_id}/{path}"
        if params:
            # Encoded here rather than by yarl so that `+` (ISO offsets, sort=+Id) is always %2B.
            url += "?" + "&".join(f"{quote(k, safe='')}={quote(v, safe=',')}" for k, v in params.items())
        return URL(url, encoded=True)

    async def _get(self, module: str, path: str, params: Mapping[str, str] | None = None) -> Any:
        """GET one API resource as JSON, with token, caps, retries and error classification."""
        url = self._url(module, path, params)
        what = f"GET {module}/{path}"
        failures = 0
        renewed_after_401 = False
        token: str | None = None
        stale: str | None = None  # the token to replace before the next attempt, if any
        renew = False
        while True:
            try:
                token = await (self._tokens.renew(stale) if renew else self._tokens.get())
                renew = False
                status, headers, body = await self._send(url, token, what)
                if 200 <= status < 300:
                    return decode_json(body, what)
                if status == 401 and not renewed_after_401:
                    renewed_after_401, stale, renew = True, token, True
                    continue
                raise error_for_status(status, headers, body, what, self.tenant_id, self.retry_after_max)
            except TransientError as exc:
                failures += 1
                wait = exc.retry_after
                if failures > self._max_retries or (wait is not None and wait > MAX_INLINE_RETRY_AFTER):
                    raise TransientError(
                        f"{exc.message} (gave up after {failures} attempts)",
                        retry_after=wait,
                        status=exc.status,
                    ) from None
                if wait is None:
                    wait = full_jitter(failures, self._backoff_initial, self._backoff_max, self._rng)
                await asyncio.sleep(wait)
                # A long backoff can outlive the token (the MeltanoLabs tap's bug #146): renew first.
                stale, renew = token, True

    async def _send(self, url: URL, token: str, what: str) -> tuple[int, CIMultiDictProxy[str], bytes]:
        headers = {
            "Authorization": f"Bearer {token}",
            "ST-App-Key": self._credentials.app_key,
            "Accept": "application/json",
        }
        async with self._semaphore:
            await self._bucket.acquire()
            started = time.monotonic()
            try:
                async with self._session.get(
                    url, headers=headers, timeout=self._timeout, allow_redirects=False
                ) as resp:
                    status, resp_headers = resp.status, resp.headers
                    body = await read_capped(resp, self._max_page_bytes)
            except BodyTooLarge as exc:
                self._observe("transient_error", started)
                raise TransientError(f"ServiceTitan's answer was refused ({what}): {exc}") from None
            except TimeoutError:
                self._observe("transient_error", started)
                raise TransientError(f"ServiceTitan did not answer in time ({what})") from None
            except aiohttp.ClientError as exc:
                self._observe("connection_error", started)
                raise TransientError(f"ServiceTitan is unreachable ({what}: {type(exc).__name__})") from None
        self._observe(outcome_for_status(status), started)
        return status, resp_headers, body

    def _observe(self, outcome: str, started: float) -> None:
        if self._observer is not None:
            self._observer(outcome, time.monotonic() - started)
