"""One idempotent reconcile of a FineTuneJob: observe the children, decide, act, write status.

Every trigger (create, update, resume, timer, a child Job or pod changing) calls
:meth:`Reconciler.reconcile` with the job's namespace and name; it reads the current object,
so what woke it up does not matter. Children have deterministic names and creating one that
exists is a no-op, so a restarted operator (or two overlapping calls) never makes a second Job.
A child is ours only when its owner reference carries the job's uid: an object of the same
name that is not ours (or pods that merely carry our labels) is never read or used, and such a
name clash ends the job (``ForeignChild``); a child the API server refuses (422: a name or value
built from the spec that Kubernetes does not accept) ends it as ``InvalidSpec``.
Decisions are in :mod:`decide`; manifests in :mod:`builders`; all I/O goes through
:mod:`kubetune.clients.kube`. Calls for one job are serialised by a per-job lock.
"""

from __future__ import annotations

import concurrent.futures
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from kubetune import logs
from kubetune.api.v1alpha1 import API_VERSION, FineTuneJob
from kubetune.api.v1alpha1.base import rfc3339, set_condition
from kubetune.api.v1alpha1.finetunejob import ConditionType, FineTuneJobStatus, Reason
from kubetune.clients import kube as kubeclient
from kubetune.controllers import objects, readiness, serial
from kubetune.controllers.finetunejob import builders, decide, observe, queueing
from kubetune.controllers.finetunejob.metrics import Metrics
from kubetune.controllers.settings import Settings

log = logging.getLogger(__name__)
COMPLETION_INDEX = "batch.kubernetes.io/job-completion-index"  # label the Job controller sets
Obj = dict[str, Any]
LOG_TAIL_LINES = 400


def _now() -> datetime:
    return datetime.now(UTC)


class ChildProblem(Exception):
    """Creating or reading a child showed that the job cannot go on (see :class:`decide.Observed`)."""

    def __init__(self, *, foreign: str | None = None, refused: str | None = None) -> None:
        super().__init__(foreign or refused)
        self.foreign = foreign
        self.refused = refused


class ChildGoingAway(Exception):
    """A child of the same name belongs to an earlier FineTuneJob of this name, deleted and now
    garbage-collected: a transient state, retried (the handlers back off)."""


class Reconciler:
    """Reconciles FineTuneJobs through one Kubernetes client."""

    def __init__(
        self,
        kube: kubeclient.Kube,
        settings: Settings,
        metrics: Metrics | None = None,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self.kube = kube
        self.settings = settings
        self.metrics = metrics or Metrics()
        self.clock = clock
        self._objects = serial.PerObject()
        # resourceVersion of each job's last status write by this process: the watch event it
        # causes carries nothing that reconcile did not already see (see :meth:`wrote`).
        self._written: dict[tuple[str, str], str] = {}  # guarded by self._objects.guard
        # Children that do not depend on each other are created concurrently.
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=8, thread_name_prefix="kubetune-create"
        )

    def forget(self, namespace: str, name: str, uid: str | None = None) -> None:
        """Drop what is kept about a deleted job, unless a new job of its name (another uid) is
        already being reconciled (see :class:`serial.PerObject`)."""
        if not self._objects.forget(namespace, name, uid):
            return
        with self._objects.guard:
            self._written.pop((namespace, name), None)
        self.metrics.forget(namespace, name)

    def wrote(self, namespace: str, name: str, resource_version: str | None) -> bool:
        """Whether ``resource_version`` of the job is the one this reconciler's last status
        write produced (its watch event needs no reconcile: children changing wake us up)."""
        with self._objects.guard:
            return resource_version is not None and self._written.get((namespace, name)) == resource_version

    def reconcile(
        self, namespace: str, name: str, *, new_object: Obj | None = None
    ) -> decide.Decision | None:
        """Bring one job's children and status up to date; None when the job is gone.

        ``new_object``: the job as its ADDED watch event carried it, without status. It is
        used instead of reading the job and its children, which cannot exist yet, unless this
        reconciler already wrote the job's status (then it reads, as for any other trigger).
        """
        with (
            serial.measured(self.metrics.errors, self.metrics.reconcile_seconds),
            self._objects.lock(namespace, name),
        ):
            with self._objects.guard:
                if (namespace, name) in self._written:
                    new_object = None
            return self._reconcile(namespace, name, new_object)

    def _reconcile(self, namespace: str, name: str, new_object: Obj | None) -> decide.Decision | None:
        url = kubeclient.path(API_VERSION, "FineTuneJob", namespace, name)
        obj = new_object if new_object is not None else self.kube.get(url)
        if obj is None or (obj.get("metadata") or {}).get("deletionTimestamp"):
            return None
        self._objects.seen(namespace, name, (obj.get("metadata") or {}).get("uid"))
        try:
            job = FineTuneJob.model_validate(objects.without_kopf(obj))
        except ValidationError as exc:
            self._invalid(obj, url, exc)
            return None
        try:
            seen = decide.Observed() if new_object is not None else self._observe(job)
        except ChildProblem as problem:
            seen = decide.Observed(foreign=problem.foreign, refused=problem.refused)
        decision = decide.decide(job, seen, self.settings, self.clock())
        try:
            self._act(job, decision, seen)
        except ChildProblem as problem:
            seen.foreign, seen.refused = problem.foreign, problem.refused
            decision = decide.decide(job, seen, self.settings, self.clock())
        patch = objects.status_patch(obj, decision.status.to_wire())
        if patch is not None:
            written = self.kube.patch(url + "/status", patch)
            version = ((written or {}).get("metadata") or {}).get("resourceVersion")
            if version:
                with self._objects.guard:
                    self._written[(namespace, name)] = str(version)
        for event in decision.events:
            try:
                self.kube.event(obj, event.type, event.reason, event.message, now=self.clock())
            except kubeclient.ApiError as err:
                log.warning("cannot record an event", extra=logs.fields(job=name, error=str(err)))
        for event in decision.events:
            log.info(
                event.message,
                extra=logs.fields(
                    namespace=namespace, job=name, reason=event.reason, phase=decision.status.phase
                ),
            )
        team = (job.metadata.labels or {}).get(self.settings.team_label, "")
        self.metrics.observe(namespace, name, decision.status, job.spec.budget, team=team)
        return decision

    def _invalid(self, obj: Obj, url: str, exc: ValidationError) -> None:
        """A stored object the models reject (e.g. a cross-field rule CEL does not cover)."""
        message = "; ".join(str(e.get("msg", "")) for e in exc.errors())[:900]
        raw_status = obj.get("status") or {}
        try:
            status = FineTuneJobStatus.model_validate(raw_status)
        except ValidationError:
            status = FineTuneJobStatus()
        if status.phase == "Failed":
            return
        now = self.clock()
        generation = (obj.get("metadata") or {}).get("generation")
        status.conditions = set_condition(
            status.conditions,
            ConditionType.FAILED,
            "True",
            Reason.INVALID_SPEC,
            message,
            now=now,
            generation=generation,
        )
        status.phase = "Failed"
        status.observed_generation = generation
        status.completion_time = rfc3339(now)
        status.conditions = readiness.finetunejob_conditions(status, now=now, generation=generation)
        self.kube.patch(url + "/status", {"status": status.to_wire()})
        self.kube.event(obj, "Warning", Reason.INVALID_SPEC, message, now=now)

    # --- observation ------------------------------------------------------------------------

    def _observe(self, job: FineTuneJob) -> decide.Observed:
        ns = job.metadata.namespace or "default"
        names = builders.names(job)
        seen = decide.Observed()
        terminal = decide.is_terminal(job.status)
        # A terminal job only looks for a training Job to stop: never someone else's.
        seen.training_job = self._own(
            job, self.kube.get(kubeclient.path("batch/v1", "Job", ns, names["train"])), terminal
        )
        if terminal:
            return seen
        status = job.status
        seen.preflight_job = self._own(
            job, self.kube.get(kubeclient.path("batch/v1", "Job", ns, names["preflight"]))
        )
        outcome, _, _ = observe.job_outcome(seen.preflight_job)
        if outcome == "active" and not observe.has_pods(seen.preflight_job):
            seen.preflight_pods_refused = self._pods_refused(ns, seen.preflight_job)
        if outcome in ("complete", "failed") and (
            status is None or status.preflight is None or outcome == "failed"
        ):
            seen.preflight_pods = self._pods(ns, job, "preflight", seen.preflight_job)
            if status is None or status.preflight is None:
                pod = _newest(seen.preflight_pods)
                if pod is not None:
                    text = self.kube.pod_log(ns, pod, "preflight", tail_lines=LOG_TAIL_LINES)
                    seen.preflight_log = observe.parse_log(text)
        training, _, _ = observe.job_outcome(seen.training_job)
        if (training == "missing" and outcome == "complete") or training == "complete":
            # before training starts and when it ends: is the Adapter's name taken by another job?
            seen.adapter = self.kube.get(
                kubeclient.path(API_VERSION, "Adapter", ns, builders.adapter_name(job))
            )
        if seen.training_job is not None:
            seen.training_pods = self._pods(ns, job, "trainer", seen.training_job)
            # rank 0 (completion index 0 of a multi-node Job) reports progress and the result
            pod = _newest(_rank_zero(seen.training_pods))
            if pod is not None:
                text = self.kube.pod_log(ns, pod, "trainer", tail_lines=LOG_TAIL_LINES)
                seen.training_log = observe.parse_log(text)
            if training == "active" and observe.missing_pods(seen.training_job, seen.training_pods):
                seen.training_pods_refused = self._pods_refused(ns, seen.training_job)
            if queueing.job_queue(seen.training_job) is not None and training not in ("complete", "failed"):
                seen.workload = self._workload(ns, seen.training_job)
                if not queueing.read(seen.workload).cluster_queue:
                    seen.local_cluster_queue = self._local_cluster_queue(ns, seen.training_job)
        return seen

    def _local_cluster_queue(self, namespace: str, job: Obj | None) -> str | None:
        """The ClusterQueue that the training Job's LocalQueue points at; None when it is missing."""
        local = queueing.job_queue(job)
        try:
            found = self.kube.get(kubeclient.path(queueing.API_VERSION, "LocalQueue", namespace, str(local)))
        except kubeclient.ApiError as exc:
            if exc.status in (403, 404):
                return None
            raise
        return str(((found or {}).get("spec") or {}).get("clusterQueue") or "") or None

    def _workload(self, namespace: str, job: Obj | None) -> Obj | None:
        """Kueue's Workload for the training Job ``job`` (found by the Job's uid label); None
        while there is none, or when Kueue's API is not installed."""
        uid = ((job or {}).get("metadata") or {}).get("uid")
        if not uid:
            return None
        try:
            found = self.kube.list(
                kubeclient.path(queueing.API_VERSION, "Workload", namespace),
                labelSelector=f"{queueing.LABEL_JOB_UID}={uid}",
            )
        except kubeclient.ApiError as exc:
            if exc.status == 404:
                return None
            raise
        return queueing.newest(found)

    def _pods_refused(self, namespace: str, job: Obj | None) -> str | None:
        """Why the API server refuses ``job``'s pods: the message of the Job controller's newest
        FailedCreate Event about it (it retries for ever, and the Job itself says nothing)."""
        uid = ((job or {}).get("metadata") or {}).get("uid")
        if not uid:
            return None
        events = self.kube.list(
            kubeclient.path("v1", "Event", namespace),
            fieldSelector=f"involvedObject.uid={uid},reason=FailedCreate",
        )
        return observe.newest_message(events)

    def _pods(self, namespace: str, job: FineTuneJob, component: str, owner: Obj | None) -> list[Obj]:
        """The pods of our Job ``owner``: labels find them, the Job's uid says they are its own
        (anyone may create a pod with our labels and a forged log)."""
        uid = ((owner or {}).get("metadata") or {}).get("uid")
        if not uid:
            return []
        selector = f"{builders.LABEL_JOB}={job.metadata.name},{builders.LABEL_COMPONENT}={component}"
        found = self.kube.list(kubeclient.path("v1", "Pod", namespace), labelSelector=selector)
        return [pod for pod in found if objects.owned_by(pod, str(uid))]

    def _own(self, job: FineTuneJob, child: Obj | None, quiet: bool = False) -> Obj | None:
        """``child`` when it is the job's; None when there is none. Someone else's raises
        :class:`ChildProblem` (None when ``quiet``); an earlier same-named job's is going away."""
        if child is None or objects.owned_by(child, job.metadata.uid):
            return child
        if quiet:
            return None
        raise self._not_ours(job, child)

    def _not_ours(self, job: FineTuneJob, child: Obj) -> Exception:
        meta = child.get("metadata") or {}
        what = f"{child.get('kind', 'object')} {meta.get('namespace')}/{meta.get('name')}"
        earlier = objects.owner_named(child, "FineTuneJob", str(job.metadata.name))
        if earlier is not None and earlier.get("uid") != job.metadata.uid:
            # a child of a deleted job of this name: the garbage collector removes it soon
            return ChildGoingAway(
                f"{what} belongs to an earlier FineTuneJob of this name; waiting for its deletion"
            )
        return ChildProblem(foreign=what)

    def _create(self, job: FineTuneJob, manifest: Obj) -> None:
        """Create one child; an existing one must be ours (:meth:`_own`), a refused one ends the job."""
        meta = manifest["metadata"]
        what = f"{manifest['kind']} {meta.get('namespace')}/{meta['name']}"
        try:
            created = self.kube.create(manifest)
        except kubeclient.ApiError as exc:
            if exc.status == 422:
                raise ChildProblem(refused=f"the API server refused {what}: {exc.message}") from None
            raise
        if created is not None:
            return
        url = kubeclient.path(manifest["apiVersion"], manifest["kind"], meta.get("namespace"), meta["name"])
        stored = self.kube.get(url)
        if stored is None:
            # it existed a moment ago: an earlier job's child, deleted by now. Not created, so
            # this pass must not go on as if it were (nothing else may wake this job up).
            raise ChildGoingAway(f"{what} was being deleted when this job created it; creating it again")
        stored.setdefault("kind", manifest["kind"])
        self._own(job, stored)

    # --- actions ----------------------------------------------------------------------------

    def _act(self, job: FineTuneJob, decision: decide.Decision, seen: decide.Observed) -> None:
        ns = job.metadata.namespace or "default"
        names = builders.names(job)
        train_url = kubeclient.path("batch/v1", "Job", ns, names["train"])
        for action in decision.actions:
            if action == "create_children":
                # The spec ConfigMap, ServiceAccount and Role first, concurrently; then the
                # RoleBinding (an operator without the `bind` verb may bind only a Role that
                # exists, holding its rules itself); then the Jobs and Service, whose pods need
                # all of them (a pod naming a missing ServiceAccount is refused).
                manifests = builders.children(job, self.settings)
                later = ("RoleBinding", "Job", "Service")
                first = [m for m in manifests if m["kind"] not in later]
                list(self._pool.map(lambda m: self._create(job, m), first))
                for child in manifests:
                    if child["kind"] in later:
                        self._create(job, child)
            elif action == "create_training":
                if job.spec.resources.num_nodes > 1:
                    self._create(job, builders.workers_service(job, self.settings))
                self._create(job, builders.training_job(job, self.settings))
            elif action in ("suspend_training", "resume_training"):
                self.kube.patch(train_url, {"spec": {"suspend": action == "suspend_training"}})
            elif action in ("deactivate_workload", "activate_workload") and seen.workload is not None:
                wl = seen.workload["metadata"]
                url = kubeclient.path(queueing.API_VERSION, "Workload", ns, wl["name"])
                self.kube.patch(url, {"spec": {"active": action == "activate_workload"}})
            elif action == "stop_training":
                self.kube.delete(train_url)
            elif action == "stop_preflight":
                self.kube.delete(kubeclient.path("batch/v1", "Job", ns, names["preflight"]))
            elif action == "create_adapter" and decision.adapter_ref:
                result = seen.training_log.result if seen.training_log is not None else None
                try:
                    manifest = builders.adapter(
                        job, decision.adapter_ref, result, self.settings.trainer_image
                    )
                except ValueError as exc:
                    decide.refuse_registration(job, decision, Reason.NOT_REGISTERED, str(exc), self.clock())
                    continue
                created = self.kube.create(manifest)
                meta = manifest["metadata"]
                url = kubeclient.path(
                    manifest["apiVersion"], manifest["kind"], meta.get("namespace"), meta["name"]
                )
                stored = created or self.kube.get(url)
                taken = decide.foreign_adapter(job, stored)
                if taken is not None:
                    # created by another job between this pass's read and the create
                    decide.refuse_registration(job, decision, Reason.ADAPTER_NAME_TAKEN, taken, self.clock())
                    continue
                # status is a subresource: the state is written separately, and level-based
                # (an operator stopped between the two calls writes it on the next pass).
                stored_status = (stored or {}).get("status") or {}
                if stored is not None and not stored_status.get("conditions"):
                    status = readiness.adapter_registered(
                        decision.adapter_ref,
                        job.metadata.name or "",
                        now=self.clock(),
                        generation=(stored.get("metadata") or {}).get("generation"),
                    )
                    if stored_status.get("state"):  # a ModelDeployment may already serve it
                        del status["state"]
                    self.kube.patch(url + "/status", {"status": status})


def _rank_zero(pods: list[Obj]) -> list[Obj]:
    """The pods of completion index 0 when the Job is Indexed; else every pod."""
    indexed = [p for p in pods if COMPLETION_INDEX in ((p.get("metadata") or {}).get("labels") or {})]
    if not indexed:
        return pods
    return [p for p in indexed if p["metadata"]["labels"][COMPLETION_INDEX] == "0"]


def _newest(pods: list[Obj]) -> str | None:
    if not pods:
        return None
    best = max(pods, key=lambda p: str((p.get("metadata") or {}).get("creationTimestamp", "")))
    name = (best.get("metadata") or {}).get("name")
    return str(name) if name else None
