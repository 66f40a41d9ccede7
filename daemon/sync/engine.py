"""Turning claimed records into Intacct requests and their results into transitions (docs/architecture.md, "Data flow").

One claimed batch travels as few requests as possible: reads for records whose last outcome is
unknown, then one request of creates and updates (parents first), then follow-ups for creates that
met "already exists" (read, then update if it differs) and updates that met "non-existing" (create).
Every record ends its claim exactly once: synced, back to pending (with backoff), failed, or blocked.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from adapters.errors import AdapterError, ConnectionFailure, PermanentError, TransientError
from adapters.intacct import CreateProject, FunctionResult, IntacctProject, Outcome, UpdateProject
from adapters.port import IntacctPort
from daemon import logs
from daemon.store import Finished, Record, RecordError, RecordKey, Store, Synced, error_json
from daemon.sync.guards import TemplateOf, clear_refused, crash_error, refuse_bad_project_ids
from daemon.sync.health import ConnectionMonitor, safe_error
from statemachine import RetryPolicy, State, Trigger
from statemachine.desired import changed_fields
from statemachine.identity import same_project
from statemachine.order import Go, Parent, parent_verdict

log = logs.get("st_intacct_sync.sync")
PRIORITY = 10  # records an explicit request (ensure, sync) waits for: sent first, whoever claims them
MAX_ROUNDS = 5  # create → exists → read → update → confirm a clear: the longest legitimate chain
# Fields whose clearing by an empty element Intacct is not known to honour: confirmed by a read.
CLEARED_CONFIRMED = ("PARENTID", "CUSTOMERID")


def project_fields(p: IntacctProject) -> dict[str, str | None]:
    """An Intacct project as the field dict the desired fields are compared with."""
    return {"PROJECTID": p.project_id, "NAME": p.name, "PARENTID": p.parent_id, "CUSTOMERID": p.customer_id,
            "STATUS": p.status}


@dataclass
class _Plan:
    record: Record
    op: str  # "create" | "update" | "read" | "confirm" (read back after clearing a field)
    fields: dict[str, str | None] = field(default_factory=dict)

    @property
    def key(self) -> RecordKey:
        return self.record.key

    @property
    def project_id(self) -> str:
        return self.record.intacct_project_id


@dataclass
class _Outcomes:
    synced: list[Synced] = field(default_factory=list)
    finished: list[Finished] = field(default_factory=list)
    # The batch's projects by key: PROJECTID. A job claimed with its parent may be sent only once the
    # parent has landed, or in the same request behind it (claim_jobs relies on exactly that).
    projects: dict[RecordKey, str] = field(default_factory=dict)

    def unsettled_parents(self) -> set[str]:
        """PROJECTIDs of the batch's projects not (yet) known to exist in Intacct as desired."""
        landed = {s.key for s in self.synced}
        return {pid for key, pid in self.projects.items() if key not in landed}


class SyncEngine:
    """Syncs claimed records with Intacct; used by the workers and by export gating."""

    def __init__(
        self,
        store: Store,
        intacct: IntacctPort,
        monitor: ConnectionMonitor,
        *,
        owner: str,
        policy: Callable[[], RetryPolicy],
        max_functions: Callable[[], int],
        rng: random.Random | None = None,
        template_of: TemplateOf | None = None,
    ) -> None:
        self.store = store
        self.intacct = intacct
        self.monitor = monitor
        self.owner = owner
        self._policy = policy
        self._max_functions = max_functions
        self._rng = rng or random.Random()
        self._template_of = template_of
        self._working: set[RecordKey] = set()  # claims inside process(): the heartbeat renews these only

    def working_on(self) -> list[RecordKey]:
        """The claimed records this engine is syncing right now (workers and export gating alike)."""
        return sorted(self._working)

    async def process(self, records: Sequence[Record], *, priority: bool = False) -> dict[RecordKey, State]:
        """Sync a claimed batch; returns the state each record landed in."""
        priority = priority or any(r.priority >= PRIORITY for r in records)
        keys = {r.key for r in records}
        self._working |= keys
        try:
            out = _Outcomes(projects={r.key: r.intacct_project_id for r in records if r.kind == "project"})
            try:
                await self._sync(records, out, priority)
            except Exception as exc:
                # A bug, or an answer nobody foresaw: a transient failure, counted (max_attempts ends it).
                log.exception("sync_batch_crashed", records=len(records), error=f"{type(exc).__name__}: {exc}")
                ended = {s.key for s in out.synced} | {f.key for f in out.finished}
                for r in records:
                    if r.key not in ended:
                        self._transient(out, _Plan(r, "create"), crash_error(exc), verify=True)
            claims = {r.key: r.claim_id for r in records}
            landed = await self.store.mark_synced(self.owner, out.synced, claims)
            landed.update(await self.store.finish(self.owner, out.finished, claims))
        finally:
            self._working -= keys
        lost = {r.key for r in records} - set(landed)
        if lost:
            log.warning("claims_lost", count=len(lost), records=[str(k) for k in sorted(lost)][:20],
                        reason="lease expired or record changed hands before the result was stored")
        return landed

    async def settle_crash(self, records: Sequence[Record], exc: BaseException) -> None:
        """End a batch whose processing raised outside the engine's own guard: transient, attempt counted."""
        out = _Outcomes()
        for r in records:
            self._transient(out, _Plan(r, "create"), crash_error(exc), verify=True)
        await self.store.finish(self.owner, out.finished, {r.key: r.claim_id for r in records})

    async def _sync(self, records: Sequence[Record], out: _Outcomes, priority: bool) -> None:
        out.finished += refuse_bad_project_ids(records, self._template_of)
        refused = {f.key for f in out.finished}
        ready = await self._in_order([r for r in records if r.key not in refused], out)
        plans = await self._initial_plans(ready, out, priority)
        for _ in range(MAX_ROUNDS):
            if not plans:
                break
            plans = await self._round(plans, out, priority)
        for plan in plans:  # a chain longer than any legitimate one: try again later
            self._transient(out, plan, RecordError("transient", "no stable answer from Intacct"))

    # ---- planning ------------------------------------------------------------------------------

    async def _in_order(self, records: list[Record], out: _Outcomes) -> list[Record]:
        """The records that may go now; jobs whose parent (not in this batch) cannot come fail for it.

        The claim hands out jobs whose parent is in Intacct, and also those whose parent is
        `failed` or settled outside Intacct: these must not wait silently, so they end here with
        an error that names the parent (and go back to pending by themselves when it syncs).
        """
        in_batch = set(out.projects.values())
        outside = [r for r in records if r.kind == "job" and r.parent_project_id is not None
                   and r.parent_project_id not in in_batch]
        if not outside:
            return records
        parents = await self.store.projects(sorted({r.st_project_id for r in outside if r.st_project_id is not None}))
        held = set()
        for r in outside:
            p = parents.get(r.st_project_id) if r.st_project_id is not None else None
            have = (p.synced_fields or {}).get("PROJECTID") if p is not None else None
            verdict = parent_verdict(r.parent_project_id, None if p is None else Parent(
                have or p.intacct_project_id, p.state, in_intacct=have is not None, active=p.st_active,
                error=error_json(p.last_error)))
            if verdict.go is Go.FAIL:
                out.finished.append(Finished(r.key, State.FAILED, verdict.reason, r.desired_hash,
                                             error=RecordError.from_json(verdict.error)))
            elif verdict.go is Go.WAIT:  # the parent moved since the claim picked the job: it waits again
                out.finished.append(Finished(r.key, State.PENDING, verdict.reason, r.desired_hash, delay_s=1.0,
                                             refund_attempt=True))
            else:
                continue
            held.add(r.key)
        return [r for r in records if r.key not in held]

    async def _initial_plans(self, records: list[Record], out: _Outcomes, priority: bool) -> list[_Plan]:
        # Read first: an outcome unknown, an inactive record that may not be in Intacct, or a record
        # last seen under another PROJECTID (Intacct has not confirmed the one it is to have).
        to_read = [r for r in records if r.verify_first or (self._inactive(r) and r.synced_fields is None)
                   or (r.synced_fields is not None and not same_project(r.desired, r.synced_fields))]
        plans: list[_Plan] = []
        if to_read:
            plans += await self._plans_after_read([_Plan(r, "read") for r in to_read], out, priority)
        read_keys = {r.key for r in to_read}
        for r in records:
            if r.key in read_keys:
                continue
            if r.synced_fields is None:
                plans.append(self._create(r))
            else:
                plans += self._update_or_done(r, r.synced_fields, r.intacct_record_no, "Intacct already matches", out)
        return plans

    @staticmethod
    def _update_or_done(r: Record, have: dict[str, str | None], record_no: int | None, agreed: str,
                        out: _Outcomes) -> list[_Plan]:
        """An update of what differs between the desired fields and Intacct's `have`; none if they agree."""
        if not same_project(r.desired, have):  # another project: never "in sync" under its PROJECTID
            return [SyncEngine._create(r)]
        diff = changed_fields(r.desired, have)
        if diff:
            return [_Plan(r, "update", diff)]
        out.synced.append(Synced(r.key, r.desired_hash, r.desired, record_no, agreed))
        return []

    @staticmethod
    def _inactive(r: Record) -> bool:
        return r.desired.get("STATUS") == "inactive"

    @staticmethod
    def _create(r: Record) -> _Plan:
        return _Plan(r, "create", {k: v for k, v in r.desired.items() if v is not None})

    async def _plans_after_read(self, reads: list[_Plan], out: _Outcomes, priority: bool) -> list[_Plan]:
        """Read these records' projects; plan a create, an update, or nothing."""
        try:
            found = await self.intacct.read_projects([p.project_id for p in reads], priority=priority)
        except AdapterError as exc:
            await self._request_failed(reads, exc, out)
            return []
        await self.monitor.succeeded()
        plans: list[_Plan] = []
        for plan in reads:
            r = plan.record
            actual = found.get(plan.project_id)
            if actual is not None and plan.op == "confirm":
                kept = {f: v for f, v in project_fields(actual).items() if f in plan.fields and v is not None}
                if kept:
                    out.finished.append(clear_refused(r, kept))
                    continue
            if actual is None:
                if self._inactive(r):
                    # Settled, but not recorded as existing: Intacct never said it has it.
                    out.synced.append(Synced(r.key, r.desired_hash, r.desired, None,
                                             "inactive in ServiceTitan: not created in Intacct", in_intacct=False))
                else:
                    plans.append(self._create(r))
                continue
            plans += self._update_or_done(r, project_fields(actual), actual.record_no, "found in Intacct as desired",
                                          out)
        return plans

    # ---- one round of requests -----------------------------------------------------------------

    async def _round(self, plans: list[_Plan], out: _Outcomes, priority: bool) -> list[_Plan]:
        reads = [p for p in plans if p.op in ("read", "confirm")]
        writes = [p for p in plans if p.op not in ("read", "confirm")]
        follow: list[_Plan] = []
        if reads:
            follow += await self._plans_after_read(reads, out, priority)
        # Parents first: a job may travel with its project, and Intacct runs functions in order.
        writes.sort(key=lambda p: (p.record.kind != "project", p.record.st_id))
        size = max(1, self._max_functions())
        for start in range(0, len(writes), size):
            ready = self._parents_ready(writes[start : start + size], out, follow)
            if ready:
                follow += await self._send(ready, out, priority)
        return follow

    def _parents_ready(self, chunk: list[_Plan], out: _Outcomes, follow: list[_Plan]) -> list[_Plan]:
        """The plans of `chunk` that may go now; jobs whose parent (of this batch) has not landed wait.

        Such a job travels on with its parent when the parent still has a step to go (a read, or a
        create after "non-existing"), else it goes back to pending until the parent is synced: sent
        now, Intacct would refuse its PARENTID and the record would fail for nothing.
        """
        unsettled = out.unsettled_parents()
        if not unsettled:
            return chunk
        in_chunk = {p.project_id for p in chunk if p.record.kind == "project"}
        in_play = {p.project_id for p in follow if p.record.kind == "project"}
        ready: list[_Plan] = []
        for plan in chunk:
            r = plan.record
            parent = r.parent_project_id if r.kind == "job" else None
            if parent is None or parent not in unsettled or parent in in_chunk:
                ready.append(plan)
            elif parent in in_play:
                follow.append(plan)
            else:
                self._parent_unsettled(out, r)
        return ready

    @staticmethod
    def _parent_unsettled(out: _Outcomes, r: Record, error: RecordError | None = None) -> None:
        """A job whose parent travelled in this batch and did not land: it fails with the parent if the
        parent failed (never a silent wait), else waits for it."""
        keys = {pid: key for key, pid in out.projects.items()}
        parent_key = keys.get(r.parent_project_id or "")
        failed = next((f for f in out.finished if f.key == parent_key and f.to_state is State.FAILED), None)
        if failed is not None and r.parent_project_id is not None:
            verdict = parent_verdict(r.parent_project_id, Parent(r.parent_project_id, State.FAILED, in_intacct=False,
                                                                 error=error_json(failed.error)))
            out.finished.append(Finished(r.key, State.FAILED, verdict.reason, r.desired_hash,
                                         error=RecordError.from_json(verdict.error)))
            return
        out.finished.append(Finished(r.key, State.PENDING, f"waiting for parent project {r.parent_project_id}",
                                     r.desired_hash, error=error, delay_s=1.0, refund_attempt=True))

    async def _send(self, plans: list[_Plan], out: _Outcomes, priority: bool) -> list[_Plan]:
        functions = [self._function(p, i) for i, p in enumerate(plans)]
        try:
            results = await self.intacct.execute(functions, priority=priority)
        except PermanentError as exc:
            if len(plans) > 1:
                # The whole request was refused: find the record that poisons it by halving.
                half = len(plans) // 2
                return await self._send(plans[:half], out, priority) + await self._send(plans[half:], out, priority)
            await self._request_failed(plans, exc, out)
            return []
        except AdapterError as exc:
            await self._request_failed(plans, exc, out)
            return []
        await self.monitor.succeeded()
        follow: list[_Plan] = []
        unsettled_parents = set()
        for plan, result in zip(plans, results, strict=True):
            if plan.record.kind == "project" and result.outcome is not Outcome.SUCCESS:
                unsettled_parents.add(plan.project_id)
            follow += self._apply(plan, result, out, unsettled_parents)
        return follow

    def _function(self, plan: _Plan, index: int) -> CreateProject | UpdateProject:
        r = plan.record
        controlid = f"{r.kind}-{r.st_id}-a{r.attempts}-{plan.op}-{index}"
        if plan.op == "create":
            return CreateProject(controlid, plan.fields)
        return UpdateProject(controlid, plan.project_id, plan.fields)

    def _apply(self, plan: _Plan, result: FunctionResult, out: _Outcomes, unsettled_parents: set[str]) -> list[_Plan]:
        r = plan.record
        cleared: dict[str, str | None] = {f: None for f in CLEARED_CONFIRMED if f in plan.fields
                                          and plan.fields[f] is None}
        if result.outcome is Outcome.SUCCESS and plan.op == "update" and cleared:
            # An empty element is not known to clear the field in the real gateway: read it back.
            return [_Plan(r, "confirm", cleared)]
        if result.outcome is Outcome.SUCCESS:
            record_no = result.projects[0].record_no if result.projects else r.intacct_record_no
            out.synced.append(Synced(r.key, r.desired_hash, r.desired, record_no,
                                     "created in Intacct" if plan.op == "create" else "updated in Intacct"))
            return []
        if result.outcome is Outcome.ALREADY_EXISTS and plan.op == "create":
            return [_Plan(r, "read")]
        if result.outcome is Outcome.NOT_EXISTING and plan.op == "update":
            return [self._create(r)]
        error = RecordError.from_json(result.error_fields)
        if result.outcome is Outcome.TRANSIENT:
            self._transient(out, plan, error)
        elif r.kind == "job" and r.parent_project_id in unsettled_parents:
            # Its parent travelled in the same request and did not land: the refusal says nothing
            # about the job itself, which follows its parent (failed with it, or waiting for it).
            self._parent_unsettled(out, r, error)
        else:
            out.finished.append(Finished(r.key, State.FAILED, "refused by Intacct", r.desired_hash, error=error))
        return []

    # ---- failures --------------------------------------------------------------------------------

    def _transient(self, out: _Outcomes, plan: _Plan, error: RecordError | None, *, verify: bool = False,
                   retry_after: float | None = None, charge: bool = True) -> None:
        """Back to pending after a backoff, or failed once the attempts are spent.

        `charge=False` is for a whole request Intacct turned away before running anything (rate or
        concurrency limits): the record was not attempted, so it keeps its budget; if Intacct keeps
        refusing, the connection monitor calls it an outage and the queue waits blocked instead.
        """
        r = plan.record
        policy = self._policy()
        if charge and policy.after_transient(r.attempts) is Trigger.FAIL:
            out.finished.append(Finished(r.key, State.FAILED, f"transient errors: {r.attempts} attempts exhausted",
                                         r.desired_hash, error=error, verify_first=verify))
            return
        delay = max(policy.delay(r.attempts, self._rng), retry_after or 0.0)
        reason = "transient error, will retry" if charge else "turned away by Intacct (nothing ran), will retry"
        out.finished.append(Finished(r.key, State.PENDING, reason, r.desired_hash, error=error, delay_s=delay,
                                     verify_first=verify, refund_attempt=not charge))

    async def _request_failed(self, plans: Sequence[_Plan], exc: AdapterError, out: _Outcomes) -> None:
        """A whole request failed: classify once, end every record it carried accordingly."""
        error = safe_error(exc)
        await self.monitor.failed(exc)
        # All the texts: "too many operations" comes with an empty description and the words in description2.
        log.warning("intacct_request_failed", error_class=error.error_class, error=error.text(), records=len(plans))
        for plan in plans:
            r = plan.record
            if isinstance(exc, ConnectionFailure) or not self.monitor.usable:
                # Not the record's fault: it waits, without spending an attempt, for the connection.
                out.finished.append(Finished(r.key, State.BLOCKED, "connection error", r.desired_hash,
                                             error=error, refund_attempt=True,
                                             verify_first=getattr(exc, "outcome_unknown", False)))
            elif isinstance(exc, TransientError):
                # A lost answer may hide a write that landed: read back before writing (or declaring
                # the record in sync) again; a create may exist, an update may hold the other value.
                self._transient(out, plan, error, verify=exc.outcome_unknown,
                                retry_after=exc.retry_after, charge=exc.outcome_unknown)
            else:
                out.finished.append(Finished(r.key, State.FAILED, "refused by Intacct", r.desired_hash,
                                             error=error))
