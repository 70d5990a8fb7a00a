"""One idempotent reconcile of a ModelDeployment: resolve adapters, observe, advance the canary, act.

Every trigger (any change of the ModelDeployment, of its Deployments or pods, of an Adapter in
its namespace, and a timer while a rollout is under way) calls :meth:`Reconciler.reconcile`;
it reads the current objects, so what woke it does not matter.

A pass: resolve each served adapter to its digest-pinned reference (an ``Adapter`` resource's
``spec.ref``, or a literal ``ref``) and hash the serving spec into the desired revision; look
at the Deployments of the stable and canary revisions and at the canary's pods (a verifier or
container that keeps failing means the canary cannot start); when :func:`canary.analysis_due`,
ask Prometheus through :func:`observe.analysis_outcome` (only a Prometheus the operator's
settings allow, custom queries only through the tenant proxy: :mod:`tenancy`; one client per
URL, kept across passes, bounds every query by a total deadline); let :func:`canary.advance` decide;
then make the cluster match: one Deployment per revision scaled for the weight
(:func:`builders.replicas`), Services and an HTTPRoute, old revisions removed, Adapter
promotion states (canary, stable, retired) updated; finally status, Events and metrics.
Decisions live in :mod:`canary`; manifests in :mod:`builders`; I/O only through ``clients``.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from kubetune import logs
from kubetune.api.v1alpha1 import API_VERSION, ModelDeployment
from kubetune.api.v1alpha1.base import get_condition, set_condition
from kubetune.api.v1alpha1.modeldeployment import ConditionType, ModelDeploymentStatus, Reason
from kubetune.clients import kube as kubeclient
from kubetune.clients import prometheus
from kubetune.controllers import objects, readiness, refusals, serial
from kubetune.controllers.modeldeployment import builders, canary, observe, tenancy
from kubetune.controllers.modeldeployment.metrics import Metrics
from kubetune.controllers.settings import Settings

log = logging.getLogger(__name__)
Obj = dict[str, Any]

# A container of a canary pod restarting this often means the revision cannot run (a crash
# loop, an adapter pull that keeps failing). One verifier restart is enough: the kubelet only
# restarts it when the startup probe gave up after verification.timeout.
RESTART_LIMIT = 3
# How long to wait before looking again when nothing else will wake us (missing Adapter).
RETRY_SECONDS = 10.0


def _now() -> datetime:
    return datetime.now(UTC)


PrometheusFactory = Callable[[str], prometheus.Client]


@dataclass
class Resolved:
    """The adapters of the spec resolved to digest references, or why they could not be."""

    refs: dict[str, str] = field(default_factory=dict)  # adapter name -> oci://...@sha256:...
    resources: dict[str, str] = field(default_factory=dict)  # adapter name -> Adapter resource
    objects: dict[str, Obj] = field(default_factory=dict)  # Adapter resource -> as read this pass
    problem: str | None = None


class Reconciler:
    """Reconciles ModelDeployments through one Kubernetes client."""

    def __init__(
        self,
        kube: kubeclient.Kube,
        settings: Settings,
        metrics: Metrics | None = None,
        clock: Callable[[], datetime] = _now,
        prometheus_client: PrometheusFactory | None = None,
    ) -> None:
        self.kube = kube
        self.settings = settings
        self.metrics = metrics or Metrics()
        self.clock = clock
        self.prometheus_client = prometheus_client or (
            lambda url: prometheus.Client(url, timeout_s=settings.prometheus_timeout_s)
        )
        # one client per URL for the operator's life: its worker threads are what bound the
        # threads a slow Prometheus can hold (see clients.prometheus)
        self._prometheus: dict[str, prometheus.Client] = {}
        self._objects = serial.PerObject()

    def forget(self, namespace: str, name: str, uid: str | None = None) -> None:
        """Drop what is kept about a deleted ModelDeployment, unless a new one of its name
        (another uid) is already being reconciled (see :class:`serial.PerObject`)."""
        if self._objects.forget(namespace, name, uid):
            self.metrics.forget(namespace, name)

    def reconcile(self, namespace: str, name: str) -> canary.Decision | None:
        """Bring one ModelDeployment's children and status up to date; None when it is gone."""
        with (
            serial.measured(self.metrics.errors, self.metrics.reconcile_seconds),
            self._objects.lock(namespace, name),
        ):
            return self._reconcile(namespace, name)

    def serving(self, namespace: str, adapter: str) -> list[str]:
        """Names of the ModelDeployments in ``namespace`` whose spec names Adapter ``adapter``."""
        out = []
        for obj in self.kube.list(kubeclient.path(API_VERSION, "ModelDeployment", namespace)):
            adapters = ((obj.get("spec") or {}).get("adapters")) or []
            if any(a.get("adapter") == adapter for a in adapters if isinstance(a, dict)):
                out.append(str(obj["metadata"]["name"]))
        return out

    # --- one pass ---------------------------------------------------------------------------

    def _reconcile(self, namespace: str, name: str) -> canary.Decision | None:
        url = kubeclient.path(API_VERSION, "ModelDeployment", namespace, name)
        obj = self.kube.get(url)
        if obj is None or (obj.get("metadata") or {}).get("deletionTimestamp"):
            return None
        self._objects.seen(namespace, name, (obj.get("metadata") or {}).get("uid"))
        now = self.clock()
        generation = (obj.get("metadata") or {}).get("generation")
        try:
            mdep = ModelDeployment.model_validate(objects.without_kopf(obj))
        except ValidationError as exc:
            message = "; ".join(str(e.get("msg", "")) for e in exc.errors())[:900]
            status = _stored_status(obj)
            events = [] if status.phase == "Failed" else [canary.Event("InvalidSpec", message, "Warning")]
            self._write(obj, url, status, _failed(status, message, now, generation), events)
            return None
        status = mdep.status or ModelDeploymentStatus()
        resolved = self._resolve(mdep)
        if resolved.problem is not None:
            new = status.model_copy(deep=True)
            new.conditions = set_condition(
                new.conditions,
                ConditionType.PROGRESSING,
                "False",
                Reason.ADAPTER_NOT_FOUND,
                resolved.problem,
                now=now,
                generation=generation,
            )
            if new.stable_revision is None:
                new.phase = "Pending"
            events = []
            if _reason(status, ConditionType.PROGRESSING) != Reason.ADAPTER_NOT_FOUND:
                events.append(canary.Event(Reason.ADAPTER_NOT_FOUND, resolved.problem, "Warning"))
            self._write(obj, url, status, new, events)
            return canary.Decision(new, events, requeue_after=RETRY_SECONDS)

        desired = builders.revision(mdep, resolved.refs)
        deployments = self._deployments(mdep)
        annotations = (obj.get("metadata") or {}).get("annotations") or {}
        observed = self._observe(mdep, status, desired, deployments, annotations)
        outcome = None
        if status.canary_revision == desired and canary.analysis_due(mdep.spec.rollout, status, now):
            outcome = self._analyse(mdep, status, now)
            self.metrics.analysed(namespace, name, outcome)
        closing = None
        window = canary.experiment_due(mdep.spec.rollout, status, now)
        if status.canary_revision == desired and window is not None:
            closing = self._analyse(mdep, status, now, window=window)
        decision = canary.advance(mdep.spec.rollout, status, observed, now, outcome, experiment=closing)
        new = decision.status
        try:
            route_problem = self._act(mdep, new, desired, resolved, deployments)
        except ForeignChild as exc:
            # Level-based: once the foreign object is deleted or renamed, the next pass goes on.
            message = (
                f"{exc} exists and is not owned by this ModelDeployment, so kubetune leaves it "
                "alone and cannot route traffic; delete or rename it"
            )
            events = (
                []
                if _reason(status, ConditionType.PROGRESSING) == Reason.FOREIGN_CHILD
                else [canary.Event(Reason.FOREIGN_CHILD, message, "Warning")]
            )
            held = status.model_copy(deep=True)
            held.conditions = set_condition(
                held.conditions,
                ConditionType.PROGRESSING,
                "False",
                Reason.FOREIGN_CHILD,
                message,
                now=now,
                generation=generation,
            )
            self._write(obj, url, status, held, events)
            return canary.Decision(held, events, requeue_after=RETRY_SECONDS)
        except kubeclient.ApiError as exc:
            if exc.status != 422:
                raise  # transient: the handlers retry with backoff
            # A child built from the spec that the API server refuses (a value no CEL rule
            # covers): retrying cannot help; say so, as for a spec the models reject.
            message = f"the API server refused a child of this ModelDeployment: {exc.message}"[:900]
            events = (
                []
                if _reason(status, ConditionType.PROGRESSING) == "InvalidSpec"
                else [canary.Event("InvalidSpec", message, "Warning")]
            )
            self._write(obj, url, status, _failed(status, message, now, generation), events)
            return None
        self._conditions(mdep, new, deployments, now, generation)
        events = list(decision.events)
        routed = get_condition(status.conditions, ConditionType.ROUTED)
        if route_problem is not None and (routed is None or routed.status != "False"):
            events.append(canary.Event(Reason.GATEWAY_API_MISSING, route_problem, "Warning"))
        if mdep.spec.rollout.traffic_routing.gateway is not None:
            new.conditions = set_condition(
                new.conditions,
                ConditionType.ROUTED,
                "False" if route_problem else "True",
                Reason.GATEWAY_API_MISSING if route_problem else Reason.ROUTE_WRITTEN,
                route_problem or "HTTPRoute weights follow the canary weight",
                now=now,
                generation=generation,
            )
        elif routed is not None:  # routing by replica ratio again: no route to report on
            new.conditions = [c for c in new.conditions if c.type != ConditionType.ROUTED]
        stalled = get_condition(new.conditions, ConditionType.ROLLOUT_STALLED)
        if decision.stalled is not None:
            new.conditions = set_condition(
                new.conditions,
                ConditionType.ROLLOUT_STALLED,
                "True",
                decision.stalled[0],
                decision.stalled[1],
                now=now,
                generation=generation,
            )
        elif stalled is not None and stalled.status == "True":
            new.conditions = set_condition(
                new.conditions,
                ConditionType.ROLLOUT_STALLED,
                "False",
                Reason.RESUMED,
                "the rollout is no longer stalled",
                now=now,
                generation=generation,
            )
        new.observed_generation = generation
        if decision.clear_annotations:
            # under the operator's own field manager: never as the GitOps tool that applied the spec
            self.kube.patch(
                url,
                {"metadata": {"annotations": dict.fromkeys(decision.clear_annotations)}},
                field_manager=FIELD_MANAGER,
            )
        # Adapters first: whoever sees the new status sees Adapters that agree with it.
        self._adapter_states(mdep, new, desired, resolved, deployments)
        self._write(obj, url, status, new, events, desired)
        self.metrics.observe(namespace, name, new)
        return decision

    def _write(
        self,
        obj: Obj,
        url: str,
        old: ModelDeploymentStatus,
        new: ModelDeploymentStatus,
        events: list[canary.Event],
        desired: str | None = None,
    ) -> None:
        """Write ``new`` (with its kstatus summary for the revision the spec asks for, when this
        pass knew it) and record ``events``."""
        meta = obj.get("metadata") or {}
        generation = meta.get("generation")
        new.observed_generation = generation
        new.conditions = readiness.modeldeployment_conditions(
            new, desired, now=self.clock(), generation=generation
        )
        patch = objects.status_patch(obj, new.to_wire())
        if patch is not None:
            self.kube.patch(url + "/status", patch)
        for event in events:
            try:
                self.kube.event(obj, event.type, event.reason, event.message, now=self.clock())
            except kubeclient.ApiError as err:
                log.warning("cannot record an event", extra=logs.fields(error=str(err)))
            log.info(
                event.message,
                extra=logs.fields(
                    namespace=meta.get("namespace"),
                    modeldeployment=meta.get("name"),
                    reason=event.reason,
                    phase=new.phase,
                    stable=new.stable_revision,
                    canary=new.canary_revision,
                    weight=new.canary_weight,
                ),
            )

    # --- observation ------------------------------------------------------------------------

    def _resolve(self, mdep: ModelDeployment) -> Resolved:
        ns = mdep.metadata.namespace or "default"
        out = Resolved()
        for served in mdep.spec.adapters:
            if served.ref is not None:
                out.refs[served.name] = served.ref
                continue
            assert served.adapter is not None  # the model requires exactly one of the two
            adapter = self.kube.get(kubeclient.path(API_VERSION, "Adapter", ns, served.adapter))
            ref = ((adapter or {}).get("spec") or {}).get("ref")
            if not ref:
                out.problem = (
                    f"spec.adapters[{served.name}].adapter: Adapter {served.adapter!r} not found in "
                    f"namespace {ns}; create it (a FineTuneJob does on success) or set ref instead. "
                    "The stable revision keeps serving."
                )
                return out
            out.refs[served.name] = str(ref)
            out.resources[served.name] = served.adapter
            out.objects[served.adapter] = adapter or {}
        return out

    def _deployments(self, mdep: ModelDeployment) -> dict[str, Obj]:
        """This ModelDeployment's revision Deployments: labelled for it *and* owned by its uid
        (anyone may copy the labels; a Deployment we do not own is never scaled or deleted)."""
        found = self.kube.list(
            kubeclient.path("apps/v1", "Deployment", mdep.metadata.namespace or "default"),
            labelSelector=f"{builders.LABEL_MDEP}={mdep.metadata.name}",
        )
        return {
            str(d["metadata"]["labels"][builders.LABEL_REVISION]): d
            for d in found
            if builders.LABEL_REVISION in ((d.get("metadata") or {}).get("labels") or {})
            and objects.owned_by(d, mdep.metadata.uid)
        }

    def _observe(
        self,
        mdep: ModelDeployment,
        status: ModelDeploymentStatus,
        desired: str,
        deployments: dict[str, Obj],
        annotations: dict[str, str],
    ) -> canary.Observed:
        promote = annotations.get(canary.PROMOTE_ANNOTATION)
        abort = (annotations.get(canary.ABORT_ANNOTATION) or "").lower() in ("true", "1", "yes")
        canary_dep = deployments.get(desired) if desired != status.stable_revision else None
        if canary_dep is None:
            return canary.Observed(desired, promote=promote, abort=abort)
        gateway = mdep.spec.rollout.traffic_routing.gateway is not None
        available = int((canary_dep.get("status") or {}).get("availableReplicas") or 0)
        ready_weight = max(
            (
                w
                for w in range(0, 101)
                if builders.replicas(mdep.spec.replicas, w, gateway=gateway)[1] <= available
            ),
            default=0,
        )
        return canary.Observed(
            desired,
            canary_ready=available > 0,
            ready_weight=ready_weight,
            canary_failed=self._canary_failure(mdep, desired),
            promote=promote,
            abort=abort,
        )

    def _canary_failure(self, mdep: ModelDeployment, rev: str) -> str | None:
        """Why the canary revision's pods cannot start, if one of them shows it."""
        ns = mdep.metadata.namespace or "default"
        pods = self.kube.list(
            kubeclient.path("v1", "Pod", ns),
            labelSelector=f"{builders.LABEL_MDEP}={mdep.metadata.name},{builders.LABEL_REVISION}={rev}",
        )
        for pod in pods:
            pod_name = pod["metadata"]["name"]
            st = pod.get("status") or {}
            if st.get("phase") == "Failed":
                return f"pod {pod_name} failed: {st.get('message') or st.get('reason') or 'no reason given'}"
            for cs in [*(st.get("initContainerStatuses") or []), *(st.get("containerStatuses") or [])]:
                restarts = int(cs.get("restartCount") or 0)
                limit = 1 if cs.get("name") == "verifier" else RESTART_LIMIT
                if restarts < limit:
                    continue
                last = (cs.get("lastState") or {}).get("terminated") or {}
                why = (last.get("message") or last.get("reason") or "").strip()
                if cs.get("name") == "verifier":
                    return f"pod {pod_name}: adapter verification failed: {why or 'startup probe timed out'}"
                return f"pod {pod_name}: container {cs.get('name')} restarted {restarts} times: {why or 'exit ' + str(last.get('exitCode'))}"
        return None

    def _analyse(
        self, mdep: ModelDeployment, status: ModelDeploymentStatus, now: datetime, window: str | None = None
    ) -> canary.AnalysisOutcome:
        """One analysis; ``window`` replaces the spec's (an experiment's closing analysis)."""
        spec = mdep.spec.rollout.analysis
        if window is not None:
            spec = spec.model_copy(update={"window": window})
        plan = tenancy.plan(
            spec.prometheus_url,
            operator_url=self.settings.prometheus_url,
            allowed_urls=self.settings.prometheus_allowed_urls,
            tenant_url=self.settings.prometheus_tenant_url,
        )
        if plan.url is None:
            return canary.AnalysisOutcome("Inconclusive", reachable=False, message=plan.problem or "")
        assert status.canary_revision is not None and status.stable_revision is not None
        namespace = mdep.metadata.namespace or "default"
        at = now.timestamp()
        tenant_query = None
        if plan.tenant_url is not None:
            tenant_query = functools.partial(
                self._client(plan.tenant_url).query, at=at, params={tenancy.TENANT_PARAM: namespace}
            )
        return observe.analysis_outcome(
            spec,
            namespace=namespace,
            canary=status.canary_revision,
            stable=status.stable_revision,
            query=functools.partial(self._client(plan.url).query, at=at),
            buckets_query=functools.partial(self._client(plan.url).query_by, label="le", at=at),
            tenant_query=tenant_query,
            custom_problem=plan.custom_problem or "",
            engine=mdep.spec.runtime.engine,
        )

    def _client(self, url: str) -> prometheus.Client:
        with self._objects.guard:
            client = self._prometheus.get(url)
            if client is None:
                client = self._prometheus[url] = self.prometheus_client(url)
            return client

    # --- actions ----------------------------------------------------------------------------

    def _act(
        self,
        mdep: ModelDeployment,
        new: ModelDeploymentStatus,
        desired: str,
        resolved: Resolved,
        deployments: dict[str, Obj],
    ) -> str | None:
        """Make the children match ``new``; returns why traffic routing failed, if it did."""
        ns = mdep.metadata.namespace or "default"
        gateway = mdep.spec.rollout.traffic_routing.gateway is not None
        canary_rev = new.canary_revision if new.phase != "RolledBack" else None
        weight = new.canary_weight if canary_rev else 0
        stable_n, canary_n = builders.replicas(mdep.spec.replicas, weight, gateway=gateway)
        wanted: dict[str, tuple[builders.Track, int]] = {}
        if new.stable_revision:
            wanted[new.stable_revision] = ("stable", stable_n)
        if new.canary_revision and new.canary_revision != new.stable_revision:
            # a rolled-back canary stays, scaled to zero, until the spec changes
            wanted[new.canary_revision] = ("canary", canary_n if canary_rev else 0)
        for rev, (track, count) in wanted.items():
            current = deployments.get(rev)
            if current is None:
                if rev != desired:
                    # Only the desired revision's adapters are known; an older one whose
                    # Deployment was deleted by hand cannot be rebuilt. Say so in the conditions.
                    continue
                manifest = builders.deployment(
                    mdep,
                    rev,
                    track,
                    count,
                    resolved.refs,
                    kubetune_image=self.settings.kubetune_image,
                    insecure_registries=self.settings.insecure_registries,
                    adapter_resources=resolved.resources,
                    serving_compute=self.settings.serving_compute,
                    pull_compute=self.settings.pull_compute,
                    verifier_compute=self.settings.verifier_compute,
                )
                if self.kube.create(manifest) is None:
                    # its name exists but no Deployment of ours has it (see _deployments)
                    meta = manifest["metadata"]
                    raise ForeignChild(f"Deployment {meta.get('namespace')}/{meta['name']}")
                continue
            patch: Obj = {}
            if (current.get("spec") or {}).get("replicas") != count:
                patch["spec"] = {"replicas": count}
            if ((current.get("metadata") or {}).get("labels") or {}).get(builders.LABEL_TRACK) != track:
                patch["metadata"] = {"labels": {builders.LABEL_TRACK: track}}
            if patch:
                self.kube.patch(
                    kubeclient.path("apps/v1", "Deployment", ns, current["metadata"]["name"]), patch
                )
        # After a promotion the old stable keeps serving until the new stable carries the full
        # load: promoted from a last step below 100%, it still has only the canary's share of pods.
        stable_dep = deployments.get(new.stable_revision or "")
        handed_over = stable_dep is not None and fully_available(stable_dep, stable_n)
        retiring: str | None = None
        for rev, dep in deployments.items():
            if rev in wanted:
                continue
            if not handed_over and int((dep.get("spec") or {}).get("replicas") or 0) > 0:
                retiring = rev
                continue
            self.kube.delete(kubeclient.path("apps/v1", "Deployment", ns, dep["metadata"]["name"]))
        if gateway and retiring is not None and canary_rev is None and new.stable_revision:
            # Until then the route keeps sending the old stable the share the new one cannot carry.
            available = int(((stable_dep or {}).get("status") or {}).get("availableReplicas") or 0)
            share = 100 if stable_n <= 0 else min(100, available * 100 // stable_n)
            return self._routing(mdep, new, gateway, new.stable_revision, share, stable_rev=retiring)
        return self._routing(mdep, new, gateway, canary_rev, weight)

    def _routing(
        self,
        mdep: ModelDeployment,
        new: ModelDeploymentStatus,
        gateway: bool,
        canary_rev: str | None,
        weight: int,
        stable_rev: str | None = None,
    ) -> str | None:
        """Services and route; why the route could not be written, if it could not.

        ``stable_rev`` overrides the revision the stable Service selects (the old stable, while
        a promoted revision scales up to full size).
        """
        self._apply(builders.service(mdep))
        self._apply(builders.pod_disruption_budget(mdep))
        if not gateway or new.stable_revision is None:
            return None
        self._apply(builders.service(mdep, "stable", stable_rev or new.stable_revision))
        self._apply(builders.service(mdep, "canary", canary_rev or new.stable_revision))
        try:
            self._apply(builders.http_route(mdep, weight))
        except kubeclient.ApiError as exc:
            if exc.status != 404:
                raise
            return (
                "spec.rollout.trafficRouting.gateway is set but this cluster has no Gateway API "
                "(HTTPRoute gateway.networking.k8s.io/v1 not found): install the Gateway API CRDs, "
                "or remove trafficRouting.gateway to split traffic by replica ratio"
            )
        return None

    def _apply(self, manifest: Obj) -> None:
        """Create, or merge-patch the spec of, one child."""
        meta = manifest["metadata"]
        url = kubeclient.path(manifest["apiVersion"], manifest["kind"], meta.get("namespace"), meta["name"])
        current = self.kube.get(url)
        if current is None:
            self.kube.create(manifest)
            return
        owner: Obj = next(iter(meta.get("ownerReferences") or []), {})
        if not objects.owned_by(current, owner.get("uid")):
            # a Service or HTTPRoute of that name that someone else made: never take it over
            raise ForeignChild(f"{manifest['kind']} {meta.get('namespace')}/{meta['name']}")
        # defaults the API server added are not differences: patch only what the manifest changes
        if not objects.covers(current.get("spec") or {}, manifest["spec"]):
            self.kube.patch(url, {"spec": manifest["spec"]})

    def _conditions(
        self,
        mdep: ModelDeployment,
        new: ModelDeploymentStatus,
        deployments: dict[str, Obj],
        now: datetime,
        generation: int | None,
    ) -> None:
        stable = deployments.get(new.stable_revision or "")
        available = int(((stable or {}).get("status") or {}).get("availableReplicas") or 0)
        ok = available > 0 or mdep.spec.replicas == 0
        reason = Reason.AVAILABLE if ok else "Unavailable"
        if stable is None:
            message = f"the Deployment of stable revision {new.stable_revision} does not exist yet"
        else:
            message = f"{available}/{mdep.spec.replicas} pods of revision {new.stable_revision} available"
            refused = None if ok else observe.replica_failure(stable)
            if refused is not None:
                # the ReplicaSet cannot create the pods (a quota, a LimitRange, Pod Security)
                said = refusals.read(
                    refused,
                    pods=f"the pods of revision {new.stable_revision}",
                    count=1,
                    namespace=mdep.metadata.namespace or "default",
                    fields=_serving_fields(mdep),
                )
                reason, message = said.kind, f"{message}: {said.message}"
        was_available = get_condition(new.conditions, ConditionType.AVAILABLE)
        new.conditions = set_condition(
            new.conditions,
            ConditionType.AVAILABLE,
            "True" if ok else "False",
            reason,
            message,
            now=now,
            generation=generation,
        )
        if new.phase == "Healthy" and not ok:
            # before the first pods are up it is pending; after, the stable pods are lost
            ever = was_available is not None and was_available.status == "True"
            new.phase = "Degraded" if ever else "Pending"
        progressing = new.phase in ("Progressing", "Paused")
        new.conditions = set_condition(
            new.conditions,
            ConditionType.PROGRESSING,
            "True" if progressing else "False",
            new.history[-1].action if new.history else Reason.NEW_REVISION,
            new.history[-1].message if new.history else "",
            now=now,
            generation=generation,
        )
        if new.analysis is not None and new.analysis.verdict is not None:
            new.conditions = set_condition(
                new.conditions,
                ConditionType.ANALYSIS,
                "False" if new.analysis.verdict == "Fail" else "True",
                {"Pass": Reason.ANALYSIS_PASSED, "Fail": Reason.ANALYSIS_FAILED}.get(
                    new.analysis.verdict, Reason.ANALYSIS_INCONCLUSIVE
                ),
                observe.summary(new.analysis.verdict, new.analysis.metrics),
                now=now,
                generation=generation,
            )

    def _adapter_states(
        self,
        mdep: ModelDeployment,
        new: ModelDeploymentStatus,
        desired: str,
        resolved: Resolved,
        deployments: dict[str, Obj],
    ) -> None:
        """Adapters follow the rollout: canary while analysed, stable once promoted, retired after.

        ``deployments`` are the revisions seen at the start of the pass, so the one this pass
        removed (the old stable after a promotion) still says which Adapters to retire.
        """
        ns = mdep.metadata.namespace or "default"
        by_rev = {rev: _served(dep) for rev, dep in deployments.items()}
        by_rev.setdefault(desired, set(resolved.resources.values()))
        stable = by_rev.get(new.stable_revision or "", set())
        states: dict[str, str] = {}
        if new.canary_revision and new.canary_revision != new.stable_revision:
            for a in by_rev.get(new.canary_revision, set()) - stable:
                states[a] = "canary" if new.phase != "RolledBack" else "retired"
        for a in stable:
            states[a] = "stable"
        for rev, served in by_rev.items():
            if rev not in (new.stable_revision, new.canary_revision):
                for a in served - set(states):
                    states[a] = "retired"
        me = f"{ns}/{mdep.metadata.name}"
        for adapter, state in states.items():
            self._write_adapter_state(ns, adapter, state, me, resolved.objects.get(adapter))

    def _write_adapter_state(
        self, ns: str, adapter: str, state: str, me: str, current: Obj | None, attempts: int = 3
    ) -> None:
        """Record this ModelDeployment's view of one Adapter, keeping the others' views.

        ``status.deployments`` lists every ModelDeployment serving the Adapter; while another
        one still serves it, its state does not drop below what that one wrote (an Adapter
        retired here may be stable there). The patch carries the resourceVersion it was
        computed from, so two ModelDeployments writing at once retry instead of losing one.
        """
        url = kubeclient.path(API_VERSION, "Adapter", ns, adapter)
        for attempt in range(attempts):
            # the spec's Adapters were read by _resolve this pass; older revisions' are not
            if current is None or attempt > 0:
                current = self.kube.get(url)
            if current is None:
                return
            st = current.get("status") or {}
            others = [d for d in st.get("deployments") or [] if d != me]
            deps = sorted([*others, me] if state in ("canary", "stable") else others)
            wanted = state
            if others and STATE_RANK.get(str(st.get("state")), 0) > STATE_RANK[state]:
                wanted = str(st["state"])
            if st.get("state") == wanted and sorted(st.get("deployments") or []) == deps:
                return
            body: Obj = {"status": {"state": wanted, "deployments": deps}}
            version = (current.get("metadata") or {}).get("resourceVersion")
            if version:
                body["metadata"] = {"resourceVersion": version}
            try:
                self.kube.patch(url + "/status", body)
                return
            except kubeclient.ApiError as exc:
                if exc.status != 409 or attempt == attempts - 1:
                    raise
                log.info(
                    "adapter changed while writing its state; reading it again",
                    extra=logs.fields(adapter=adapter),
                )


FIELD_MANAGER = "kubetune-operator"


def fully_available(dep: Obj, replicas: int) -> bool:
    """Whether a Deployment runs ``replicas`` available pods of its current template."""
    spec, st = dep.get("spec") or {}, dep.get("status") or {}
    if int(spec.get("replicas") or 0) != replicas:
        return False  # being scaled this pass: its status is about the old size
    generation = (dep.get("metadata") or {}).get("generation")
    observed = st.get("observedGeneration")
    if generation is not None and observed is not None and int(observed) < int(generation):
        return False
    return int(st.get("availableReplicas") or 0) >= replicas


# an Adapter served by several ModelDeployments shows the most advanced state among them
STATE_RANK = {"retired": 0, "candidate": 1, "canary": 2, "stable": 3}


def _served(dep: Obj) -> set[str]:
    raw = ((dep.get("metadata") or {}).get("annotations") or {}).get(builders.ANNOTATION_ADAPTERS)
    try:
        return set(json.loads(raw).values()) if raw else set()
    except (ValueError, AttributeError):
        return set()


def _reason(status: ModelDeploymentStatus, type: str) -> str | None:
    cond = get_condition(status.conditions, type)
    return cond.reason if cond is not None else None


def _stored_status(obj: Obj) -> ModelDeploymentStatus:
    try:
        return ModelDeploymentStatus.model_validate(obj.get("status") or {})
    except ValidationError:
        return ModelDeploymentStatus()


class ForeignChild(Exception):
    """A child's name is taken by an object this ModelDeployment does not own."""


def _failed(
    status: ModelDeploymentStatus, message: str, now: datetime, generation: int | None
) -> ModelDeploymentStatus:
    new = status.model_copy(deep=True)
    new.phase = "Failed"
    new.observed_generation = generation
    new.conditions = set_condition(
        new.conditions,
        ConditionType.PROGRESSING,
        "False",
        "InvalidSpec",
        message,
        now=now,
        generation=generation,
    )
    return new


def _serving_fields(mdep: ModelDeployment) -> dict[str, str]:
    """The spec field or chart value that sets each amount of a serving pod."""
    res = mdep.spec.resources
    return refusals.spec_fields(res.cpu, res.memory, "serving", "spec.resources.gpus")
