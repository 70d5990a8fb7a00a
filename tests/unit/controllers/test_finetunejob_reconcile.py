"""FineTuneJob reconcile and its triggers against an in-memory API: which calls a job costs.

The integration level runs the same code against a real API server; these pin what the
operator benchmark depends on (a new job costs no reads, its own status write wakes nothing,
a pending preflight Job's updates wake nothing) and what must not be lost on the way (children
before the pods that need them, retries of a failed reconcile).
"""

from __future__ import annotations

import copy
import threading
import time
from typing import Any

import kopf
import pytest

from kubetune.api.contract import events
from kubetune.api.contract.result import Pushed, RunResult
from kubetune.api.v1alpha1 import names as apinames
from kubetune.clients import kube as kubeclient
from kubetune.controllers import serial
from kubetune.controllers.finetunejob import builders, handlers
from kubetune.controllers.finetunejob.reconcile import Reconciler
from kubetune.controllers.settings import Settings

Obj = dict[str, Any]
NS = "ml"
# the job's Jobs carry a hash of its uid (u-ft): see builders.names
PRE = f"ft-preflight-{apinames.instance_hash('ft', 'u-ft')}"
TRAIN_JOB = f"ft-train-{apinames.instance_hash('ft', 'u-ft')}"
URL = kubeclient.path("kubetune.io/v1alpha1", "FineTuneJob", NS, "ft")


class FakeKube:
    """Objects by URL path, each write bumping a resourceVersion; every call is recorded."""

    def __init__(self) -> None:
        self.objects: dict[str, Obj] = {}
        self.calls: list[tuple[str, str]] = []
        self.version = 100
        self._lock = threading.Lock()
        self.events: list[Obj] = []  # core/v1 Events the fake API server holds

    def _url(self, obj: Obj) -> str:
        meta = obj["metadata"]
        return kubeclient.path(obj["apiVersion"], obj["kind"], meta.get("namespace"), meta["name"])

    def _bump(self, obj: Obj) -> None:
        self.version += 1
        obj["metadata"]["resourceVersion"] = str(self.version)

    def get(self, url: str) -> Obj | None:
        self.calls.append(("GET", url))
        obj = self.objects.get(url)
        return copy.deepcopy(obj) if obj is not None else None

    def list(self, url: str, labelSelector: str = "", fieldSelector: str = "") -> list[Obj]:
        self.calls.append(("LIST", url))
        if not url.endswith("/events"):
            return []
        wanted = dict(kv.split("=", 1) for kv in fieldSelector.split(",") if kv)
        fields = {"involvedObject.uid": lambda e: e["involvedObject"]["uid"], "reason": lambda e: e["reason"]}
        return [copy.deepcopy(e) for e in self.events if all(fields[k](e) == v for k, v in wanted.items())]

    def delete(self, url: str) -> None:
        self.calls.append(("DELETE", url))
        self.objects.pop(url, None)

    def create(self, obj: Obj) -> Obj | None:
        url = self._url(obj)
        if obj["kind"] == "Role":
            time.sleep(0.02)  # a slow create: anything created concurrently with it overtakes it
        with self._lock:
            self.calls.append(("POST", url))
            if obj["kind"] == "RoleBinding":
                # without the `bind` verb (the Helm chart grants none) the Role must exist first
                role = kubeclient.path(obj["apiVersion"], "Role", NS, obj["roleRef"]["name"])
                assert role in self.objects, f"{url} created before its Role"
            if obj["kind"] == "Job":
                account = obj["spec"]["template"]["spec"].get("serviceAccountName")
                if account:
                    sa = kubeclient.path("v1", "ServiceAccount", NS, account)
                    assert sa in self.objects, f"{url} created before its ServiceAccount"
            if url in self.objects:
                return None
            stored = copy.deepcopy(obj)
            self._bump(stored)
            self.objects[url] = stored
            return copy.deepcopy(stored)

    def patch(self, url: str, body: Obj) -> Obj | None:
        self.calls.append(("PATCH", url))
        obj = self.objects.get(url.removesuffix("/status"))
        if obj is None:
            return None
        obj["status"] = {**(obj.get("status") or {}), **body["status"]}
        self._bump(obj)
        return copy.deepcopy(obj)

    def event(self, involved: Obj, type: str, reason: str, message: str, **_: Any) -> None:
        self.calls.append(("EVENT", reason))


def ftj() -> Obj:
    return {
        "apiVersion": "kubetune.io/v1alpha1",
        "kind": "FineTuneJob",
        "metadata": {"name": "ft", "namespace": NS, "uid": "u-ft", "generation": 1, "resourceVersion": "7"},
        "spec": {
            "baseModel": {"uri": "pvc://data/model"},
            "dataset": {"uri": "pvc://data/train.jsonl"},
            "suspend": True,
        },
    }


def world() -> tuple[FakeKube, Reconciler]:
    kube = FakeKube()
    kube.objects[URL] = ftj()
    return kube, Reconciler(kube, Settings(default_registry="oci://registry.test/ml"))  # type: ignore[arg-type]


def test_a_job_from_its_added_event_costs_no_reads_and_creates_every_child() -> None:
    kube, rec = world()
    decision = rec.reconcile(NS, "ft", new_object=ftj())
    assert decision is not None and decision.status.phase == "Validating"
    assert [c for c in kube.calls if c[0] in ("GET", "LIST")] == []
    created = {url.rsplit("/", 1)[1] for verb, url in kube.calls if verb == "POST"}
    assert created == {"ft-spec", "ft-trainer", PRE}
    assert sum(1 for verb, _ in kube.calls if verb == "POST") == 5  # ConfigMap, SA, Role, binding, Job
    assert [url for verb, url in kube.calls if verb == "PATCH"] == [URL + "/status"]
    assert kube.objects[URL]["status"]["phase"] == "Validating"


def test_the_preflight_job_follows_its_service_account_and_the_binding_its_role() -> None:
    for _ in range(20):  # the RBAC objects are created concurrently; the Job always after them
        kube, rec = world()
        rec.reconcile(NS, "ft", new_object=ftj())
        posts = [url for verb, url in kube.calls if verb == "POST"]
        assert posts[-1].endswith(f"/jobs/{PRE}")


def test_the_watch_event_of_its_own_status_write_is_recognised() -> None:
    kube, rec = world()
    rec.reconcile(NS, "ft", new_object=ftj())
    written = kube.objects[URL]["metadata"]["resourceVersion"]
    assert rec.wrote(NS, "ft", written)
    assert not rec.wrote(NS, "ft", "7")  # the create event, or someone else's write
    assert not rec.wrote(NS, "other", written)
    rec.forget(NS, "ft")
    assert not rec.wrote(NS, "ft", written)


def test_a_stale_added_event_after_a_status_write_is_read_again_not_trusted() -> None:
    kube, rec = world()
    rec.reconcile(NS, "ft")  # e.g. a child's event got there first
    kube.calls.clear()
    decision = rec.reconcile(NS, "ft", new_object=ftj())
    assert ("GET", URL) in kube.calls
    assert decision is not None and decision.status.phase == "Validating"
    # It saw the status it wrote and the children it made: no status change, no new events.
    assert not any(verb in ("PATCH", "EVENT") for verb, _ in kube.calls)


def test_a_listed_or_updated_job_reads_its_children() -> None:
    kube, rec = world()
    rec.reconcile(NS, "ft", new_object=ftj())
    kube.calls.clear()
    rec.reconcile(NS, "ft")
    reads = {url.rsplit("/", 1)[1] for verb, url in kube.calls if verb == "GET"}
    assert reads == {"ft", TRAIN_JOB, PRE}


def _job(conditions: list[Obj], suspend: bool = False) -> Obj:
    return {"spec": {"suspend": suspend}, "status": {"conditions": conditions}}


def test_only_a_preflight_job_with_an_outcome_wakes_its_finetunejob() -> None:
    pending = handlers._preflight_pending
    assert pending(_job([]))  # type: ignore[arg-type]
    assert pending(_job([], suspend=True))  # type: ignore[arg-type]
    assert not pending(_job([{"type": "Complete", "status": "True"}]))  # type: ignore[arg-type]
    assert not pending(_job([{"type": "Failed", "status": "True"}]))  # type: ignore[arg-type]


class Flaky:
    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls: list[Obj | None] = []
        self.done = threading.Event()

    def reconcile(self, namespace: str, name: str, *, new_object: Obj | None = None) -> None:
        self.calls.append(new_object)
        if len(self.calls) <= self.failures:
            raise kubeclient.ApiError(0, "cannot reach the API server")
        self.done.set()


def test_a_failed_reconcile_is_retried_with_a_fresh_read_until_it_succeeds() -> None:
    flaky = Flaky(failures=2)
    retry = serial.Retry(flaky.reconcile, kind="FineTuneJob", first=0.01, most=0.02)
    retry.call(NS, "ft", new_object=ftj())
    assert flaky.done.wait(5)
    assert len(flaky.calls) == 3
    assert flaky.calls[0] is not None and flaky.calls[1:] == [None, None]
    assert retry.scheduler.pending() == set() and retry._delays == {}


def _handler(reconciler: Any, name: str) -> Any:
    registry = kopf.OperatorRegistry()
    handlers.register(registry, reconciler, resync_seconds=30)
    (found,) = [h for h in registry._watching.get_all_handlers() if h.fn.__name__ == name]
    return found.fn


def test_a_late_deleted_event_of_an_earlier_job_never_strands_the_new_one(monkeypatch: Any) -> None:
    # kopf handles each uid's events apart: the DELETED event of a job deleted and applied again
    # may come after the new job's first (failed) pass. It cancelled that pass's retry before,
    # and the new job waited for an event that might never come.
    monkeypatch.setattr(
        serial.Retry.__init__,
        "__kwdefaults__",
        {"first": 0.05, "most": 0.1, "requeue": handlers.requeue_after},
    )
    flaky = Flaky(failures=1)
    forgotten: list[tuple[str, str | None]] = []
    flaky.forget = lambda namespace, name, uid=None: forgotten.append((name, uid))  # type: ignore[attr-defined]
    flaky.wrote = lambda *_: False  # type: ignore[attr-defined]
    changed = _handler(flaky, "changed")
    new = ftj()
    changed(namespace=NS, name="ft", type="ADDED", event={"object": new}, body=kopf.Body(new))
    old = kopf.Body({"metadata": {"name": "ft", "uid": "u-old"}})
    changed(namespace=NS, name="ft", type="DELETED", event={"object": dict(old)}, body=old)
    assert flaky.done.wait(5)
    assert len(flaky.calls) == 2 and forgotten == [("ft", "u-old")]


def test_a_job_waiting_on_its_children_is_reconciled_again_after_a_minute_without_reconciles(
    monkeypatch: Any,
) -> None:
    # a lost or mis-ordered child event must not leave a job in Validating or Pending forever
    _, rec = world()
    decision = rec.reconcile(NS, "ft", new_object=ftj())
    assert decision is not None and decision.status.phase == "Validating"
    assert handlers.requeue_after(decision) == handlers.IDLE_RESYNC_SECONDS == 60.0
    for phase in ("Training", "Succeeded", "Failed", "Suspended"):
        decision.status.phase = phase  # type: ignore[assignment]
        assert handlers.requeue_after(decision) is None, phase
    assert handlers.requeue_after(None) is None  # the job is gone

    calls: list[str] = []
    done = threading.Event()

    def reconcile(namespace: str, name: str, **_: Any) -> str:
        calls.append(name)
        if len(calls) == 3:
            done.set()
        return "waiting" if len(calls) < 3 else "done"

    retry = serial.Retry(reconcile, kind="FineTuneJob", requeue=lambda r: 0.05 if r == "waiting" else None)
    retry.call(NS, "ft")
    assert done.wait(5) and calls == ["ft", "ft", "ft"]
    time.sleep(0.2)
    assert len(calls) == 3 and retry.scheduler.pending() == set()  # not requeued once it moved on
    # a kopf timer would do the same, but kopf adds a finalizer (a PATCH) for any timer
    registry = kopf.OperatorRegistry()
    handlers.register(registry, rec, resync_seconds=1)
    (timer,) = registry._spawning.get_all_handlers()
    assert timer.fn.__name__ == "resync"  # only the running jobs' timer


def test_forgetting_a_deleted_job_keeps_what_a_new_job_of_its_name_needs() -> None:
    kube, rec = world()
    rec.reconcile(NS, "ft", new_object=ftj())  # the new job (u-ft) holds the name
    written = dict(rec._written)
    rec.forget(NS, "ft", "u-old")  # the earlier job's late DELETED
    assert rec._written == written and rec.wrote(NS, "ft", kube.objects[URL]["metadata"]["resourceVersion"])
    rec.forget(NS, "ft", "u-ft")
    assert rec._written == {}


class VanishingKube(FakeKube):
    """A child of an earlier job exists when the create is sent and is gone when it is read."""

    def create(self, obj: Obj) -> Obj | None:
        if obj["kind"] == "ConfigMap":
            self.calls.append(("POST", self._url(obj)))
            return None  # 409 AlreadyExists: the earlier job's ConfigMap, being garbage-collected
        return super().create(obj)


def test_a_child_deleted_between_create_and_read_is_retried_not_taken_as_created() -> None:
    from kubetune.controllers.finetunejob import reconcile

    kube = VanishingKube()
    kube.objects[URL] = ftj()
    rec = Reconciler(kube, Settings(default_registry="oci://registry.test/ml"))  # type: ignore[arg-type]
    # before, it went on without its ConfigMap, and nothing would wake the job again
    with pytest.raises(reconcile.ChildGoingAway, match="was being deleted"):
        rec.reconcile(NS, "ft", new_object=ftj())
    assert "status" not in kube.objects[URL]


def test_children_carry_the_labels_the_triggers_filter_on() -> None:
    kube, rec = world()
    rec.reconcile(NS, "ft", new_object=ftj())
    job = kube.objects[kubeclient.path("batch/v1", "Job", NS, PRE)]
    labels = job["metadata"]["labels"]
    assert labels[builders.LABEL_JOB] == "ft" and labels[builders.LABEL_COMPONENT] == "preflight"


def test_a_multi_node_jobs_result_is_read_from_the_pod_of_completion_index_0() -> None:
    from kubetune.controllers.finetunejob import reconcile

    def pod(name: str, created: str, index: str | None) -> Obj:
        labels = {reconcile.COMPLETION_INDEX: index} if index is not None else {}
        return {"metadata": {"name": name, "creationTimestamp": created, "labels": labels}}

    indexed = [pod("w-1", "2026-01-01T00:00:02Z", "1"), pod("w-0", "2026-01-01T00:00:01Z", "0")]
    assert reconcile._newest(reconcile._rank_zero(indexed)) == "w-0"  # not the newer rank-1 pod
    retried = [*indexed, pod("w-0-again", "2026-01-01T00:00:03Z", "0")]
    assert reconcile._newest(reconcile._rank_zero(retried)) == "w-0-again"
    single = [pod("s-a", "2026-01-01T00:00:01Z", None), pod("s-b", "2026-01-01T00:00:02Z", None)]
    assert reconcile._newest(reconcile._rank_zero(single)) == "s-b"


# --- children that are not ours ------------------------------------------------------------

CONFIGMAP = kubeclient.path("v1", "ConfigMap", NS, "ft-spec")
PREFLIGHT = kubeclient.path("batch/v1", "Job", NS, PRE)
TRAIN = kubeclient.path("batch/v1", "Job", NS, TRAIN_JOB)


def _foreign_configmap(owner: Obj | None = None) -> Obj:
    meta: Obj = {"name": "ft-spec", "namespace": NS, "resourceVersion": "1"}
    if owner is not None:
        meta["ownerReferences"] = [owner]
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"spec.yaml": "forged"}}


def test_a_child_name_taken_by_someone_elses_object_ends_the_job_naming_it() -> None:
    kube, rec = world()
    kube.objects[CONFIGMAP] = _foreign_configmap()
    decision = rec.reconcile(NS, "ft", new_object=ftj())
    assert decision is not None and decision.status.phase == "Failed"
    failed = next(c for c in decision.status.conditions if c.type == "Failed")
    assert failed.reason == "ForeignChild"
    assert failed.message.startswith("ConfigMap ml/ft-spec exists and is not owned by this FineTuneJob")
    assert PREFLIGHT not in kube.objects  # no pod ever mounts the foreign spec
    assert kube.objects[CONFIGMAP]["data"] == {"spec.yaml": "forged"}  # and it is left alone
    assert kube.objects[URL]["status"]["phase"] == "Failed"
    assert ("EVENT", "ForeignChild") in kube.calls


def test_a_child_of_an_earlier_job_of_the_same_name_is_waited_for_not_blamed() -> None:
    from kubetune.controllers.finetunejob import reconcile

    kube, rec = world()
    old = {"apiVersion": "kubetune.io/v1alpha1", "kind": "FineTuneJob", "name": "ft", "uid": "u-old"}
    kube.objects[CONFIGMAP] = _foreign_configmap(old)
    # retried while the garbage collector deletes the old child
    with pytest.raises(reconcile.ChildGoingAway, match="earlier FineTuneJob"):
        rec.reconcile(NS, "ft", new_object=ftj())
    assert "status" not in kube.objects[URL]


def test_our_own_existing_children_are_reused() -> None:
    kube, rec = world()
    rec.reconcile(NS, "ft", new_object=ftj())
    del kube.objects[PREFLIGHT]  # e.g. deleted by hand: created again, the rest found as ours
    rec.reconcile(NS, "ft")
    assert PREFLIGHT in kube.objects
    assert kube.objects[URL]["status"]["phase"] == "Validating"


def test_a_foreign_job_under_the_preflight_name_is_never_read_as_our_preflight() -> None:
    kube, rec = world()
    kube.objects[PREFLIGHT] = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": PRE, "namespace": NS},
        "status": {"conditions": [{"type": "Complete", "status": "True"}]},
    }
    rec.reconcile(NS, "ft")
    status = kube.objects[URL]["status"]
    assert status["phase"] == "Failed"
    assert [c["reason"] for c in status["conditions"] if c["type"] == "Failed"] == ["ForeignChild"]
    assert not any(c["type"] == "PreflightPassed" and c["status"] == "True" for c in status["conditions"])


class RefusingKube(FakeKube):
    """An API server that refuses Jobs as a real one refuses an invalid secretKeyRef name."""

    def create(self, obj: Obj) -> Obj | None:
        if obj["kind"] == "Job":
            self.calls.append(("POST", self._url(obj)))
            raise kubeclient.ApiError(
                422,
                f'Job.batch "{PRE}" is invalid: spec.template.spec.containers[0].env[9].valueFrom'
                '.secretKeyRef.name: Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain must ...',
            )
        return super().create(obj)


def test_a_child_the_api_server_refuses_fails_the_job_with_its_message_instead_of_retrying() -> None:
    kube = RefusingKube()
    kube.objects[URL] = ftj()
    rec = Reconciler(kube, Settings(default_registry="oci://registry.test/ml"))  # type: ignore[arg-type]
    decision = rec.reconcile(NS, "ft", new_object=ftj())  # raised (and was retried forever) before
    assert decision is not None and decision.status.phase == "Failed"
    failed = next(c for c in decision.status.conditions if c.type == "Failed")
    assert failed.reason == "InvalidSpec"
    assert failed.message.startswith(f"the API server refused Job ml/{PRE}: ")
    assert "secretKeyRef.name: Invalid value" in failed.message
    assert kube.objects[URL]["status"]["phase"] == "Failed"


class PodsKube(FakeKube):
    """Lists pods (by label only, as the API server does) and serves their logs."""

    def __init__(self) -> None:
        super().__init__()
        self.pods: list[Obj] = []
        self.logs_read: list[str] = []

    def list(self, url: str, labelSelector: str = "", fieldSelector: str = "") -> list[Obj]:
        self.calls.append(("LIST", url))
        if not url.endswith("/pods"):
            return []
        wanted = dict(kv.split("=", 1) for kv in labelSelector.split(",") if kv)
        found = [p for p in self.pods if wanted.items() <= p["metadata"]["labels"].items()]
        return copy.deepcopy(found)

    def pod_log(self, namespace: str, pod: str, container: str, tail_lines: int | None = None) -> str:
        self.logs_read.append(pod)
        ref = "oci://evil.example/x@sha256:" + "e" * 64
        run = RunResult(job="bot", outcome="Succeeded", exit_code=0, pushed=Pushed(ref=ref, tag="t"))
        return events.to_line(events.result(run)) + "\n"


def test_only_pods_owned_by_our_job_are_read_never_a_pod_that_only_carries_our_labels() -> None:
    kube = PodsKube()
    job = ftj()
    job["spec"]["suspend"] = False
    job["status"] = {"phase": "Training"}
    kube.objects[URL] = job
    kube.objects[PREFLIGHT] = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": PRE,
            "namespace": NS,
            "uid": "j-pre",
            "ownerReferences": [{"uid": "u-ft"}],
        },
        "status": {"conditions": [{"type": "Complete", "status": "True"}]},
    }
    kube.objects[TRAIN] = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": TRAIN_JOB,
            "namespace": NS,
            "uid": "j-train",
            "ownerReferences": [{"uid": "u-ft"}],
        },
        "spec": {"suspend": False},
        "status": {"active": 1},
    }
    labels = {builders.LABEL_JOB: "ft", builders.LABEL_COMPONENT: "trainer"}
    forged = {
        "metadata": {
            "name": "forged",
            "namespace": NS,
            "labels": labels,
            "creationTimestamp": "2030-01-01T00:00:00Z",
        },
        "status": {"phase": "Succeeded"},
    }
    kube.pods = [forged]
    rec = Reconciler(kube, Settings(default_registry="oci://registry.test/ml"))  # type: ignore[arg-type]
    decision = rec.reconcile(NS, "ft")
    assert decision is not None
    assert kube.logs_read == []
    assert decision.adapter_ref is None and decision.status.phase != "Succeeded"
    ours = copy.deepcopy(forged)
    ours["metadata"].update(name=f"{TRAIN_JOB}-abcde", ownerReferences=[{"kind": "Job", "uid": "j-train"}])
    kube.pods = [forged, ours]
    rec.reconcile(NS, "ft")
    assert kube.logs_read == [f"{TRAIN_JOB}-abcde"]


def test_a_job_is_just_created_while_its_status_is_absent_or_the_crd_default() -> None:
    from kubetune.controllers.finetunejob import handlers

    body = ftj()
    assert handlers.just_created("ADDED", body) == body
    assert handlers.just_created("ADDED", {**body, "status": {"observedGeneration": 0, "phase": "Pending"}})
    # listed after a restart: the operator has written its status, children may exist
    assert handlers.just_created("ADDED", {**body, "status": {"observedGeneration": 1}}) is None
    assert handlers.just_created("MODIFIED", body) is None


PREFLIGHT_JOB = kubeclient.path("batch/v1", "Job", NS, PRE)
QUOTA_TOO_SMALL = (
    'Error creating: pods "ft-preflight-abcde" is forbidden: exceeded quota: team, requested: '
    "requests.cpu=1, used: requests.cpu=0, limited: requests.cpu=500m"
)


def _refused_preflight(kube: FakeKube, message: str, *, active: int = 0) -> None:
    """The preflight Job exists and the Job controller recorded a FailedCreate Event on it."""
    kube.objects[URL]["spec"]["suspend"] = False
    kube.objects[URL]["status"] = {"phase": "Validating"}
    kube.objects[PREFLIGHT_JOB] = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": PRE,
            "namespace": NS,
            "uid": "j-pre",
            "ownerReferences": [{"uid": "u-ft"}],
        },
        "spec": {},
        "status": {"active": active} if active else {},
    }
    kube.events.append(
        {
            "involvedObject": {"kind": "Job", "name": PRE, "uid": "j-pre"},
            "reason": "FailedCreate",
            "message": message,
            "lastTimestamp": "2026-12-07T22:00:00Z",
        }
    )


def test_a_quota_below_what_the_preflight_needs_fails_the_job_and_deletes_the_preflight() -> None:
    kube, rec = world()
    _refused_preflight(kube, QUOTA_TOO_SMALL)
    decision = rec.reconcile(NS, "ft")
    assert decision is not None and decision.status.phase == "Failed"
    failed = next(c for c in decision.status.conditions if c.type == "Failed")
    assert failed.reason == "QuotaExceeded"
    assert "ResourceQuota team in namespace ml allows requests.cpu=500m" in failed.message
    assert "resourceDefaults.preflight.cpu" in failed.message
    assert ("DELETE", PREFLIGHT_JOB) in kube.calls and PREFLIGHT_JOB not in kube.objects


def test_a_quota_used_up_by_others_is_a_condition_while_the_job_waits() -> None:
    kube, rec = world()
    _refused_preflight(
        kube, QUOTA_TOO_SMALL.replace("used: requests.cpu=0", "used: requests.cpu=2").replace("500m", "2")
    )
    decision = rec.reconcile(NS, "ft")
    assert decision is not None and decision.status.phase == "Validating"
    scheduled = next(c for c in decision.status.conditions if c.type == "Scheduled")
    assert (scheduled.status, scheduled.reason) == ("False", "QuotaExceeded")
    assert scheduled.message.startswith("waiting for ResourceQuota team in namespace ml")
    assert PREFLIGHT_JOB in kube.objects


def test_events_are_not_read_once_the_job_has_its_pods() -> None:
    """An old FailedCreate Event outlives the refusal by an hour; a Job with pods ignores it."""
    kube, rec = world()
    _refused_preflight(kube, QUOTA_TOO_SMALL, active=1)
    decision = rec.reconcile(NS, "ft")
    assert decision is not None and decision.status.phase == "Validating"
    assert not [url for verb, url in kube.calls if verb == "LIST" and url.endswith("/events")]
