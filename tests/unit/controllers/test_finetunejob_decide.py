"""The FineTuneJob state machine, as a pure function of the job and its observed children."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from kubetune.api.contract.result import RunResult, Training
from kubetune.api.v1alpha1 import FineTuneJob
from kubetune.cli import status as status_cli
from kubetune.controllers.finetunejob import builders, decide, observe
from kubetune.controllers.settings import Settings

NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
SETTINGS = Settings(default_registry="oci://registry.test/ml")
SINCE = {"lastTransitionTime": "2026-01-01T11:00:00Z"}
DIGEST = "oci://registry.test/ml/bot@sha256:" + "a" * 64


def run(fields: dict[str, Any]) -> RunResult:
    """A trainer result.json with ``fields`` (the trainer always writes job, outcome, exitCode)."""
    return RunResult.model_validate({"job": "bot", "outcome": "Succeeded", "exitCode": 0, **fields})


def job(status: dict[str, Any] | None = None, **spec: Any) -> FineTuneJob:
    body: dict[str, Any] = {
        "apiVersion": "kubetune.io/v1alpha1",
        "kind": "FineTuneJob",
        "metadata": {"name": "bot", "namespace": "ml", "uid": "u1", "generation": 2},
        "spec": {
            "baseModel": {"uri": "pvc://data/model"},
            "dataset": {"uri": "pvc://data/train.jsonl"},
            **spec,
        },
    }
    if status is not None:
        body["status"] = status
    return FineTuneJob.model_validate(body)


def k8s_job(condition: str | None = None, reason: str = "", suspend: bool = False) -> dict[str, Any]:
    conds = [{"type": condition, "status": "True", "reason": reason}] if condition else []
    return {"spec": {"suspend": suspend}, "status": {"conditions": conds}}


def pod(
    exit_code: int | None = None, message: str = "", running: bool = False, **status: Any
) -> dict[str, Any]:
    state: dict[str, Any] = {}
    if exit_code is not None:
        state = {"terminated": {"exitCode": exit_code, "message": message}}
    elif running:
        state = {"running": {}}
    return {
        "metadata": {"name": "p", "creationTimestamp": "2026-01-01T11:00:00Z"},
        "spec": {"nodeName": "gpu-node-0"} if running or exit_code is not None else {},
        "status": {"containerStatuses": [{"name": "trainer", "state": state, "restartCount": 0}], **status},
    }


def passed_preflight() -> dict[str, Any]:
    return {"preflight_job": k8s_job("Complete")}


def test_new_job_creates_children_and_validates() -> None:
    d = decide.decide(job(), decide.Observed(), SETTINGS, NOW)
    assert d.actions == ["create_children"]
    assert d.status.phase == "Validating" and d.status.observed_generation == 2
    assert [e.reason for e in d.events] == ["PreflightRunning", "PhaseValidating"]


def test_failed_preflight_fails_with_the_line_numbered_reason_and_never_trains() -> None:
    message = "train.jsonl:7: not valid JSON (Expecting ',' delimiter)"
    seen = decide.Observed(
        preflight_job=k8s_job("Failed", "BackoffLimitExceeded"),
        preflight_pods=[
            {
                "metadata": {"name": "p"},
                "status": {
                    "containerStatuses": [
                        {
                            "name": "preflight",
                            "state": {"terminated": {"exitCode": 1, "message": message + "\n"}},
                        }
                    ]
                },
            }
        ],
    )
    d = decide.decide(job({"phase": "Validating"}), seen, SETTINGS, NOW)
    assert d.status.phase == "Failed"
    cond = next(c for c in d.status.conditions if c.type == "PreflightPassed")
    assert (cond.status, cond.reason, cond.message) == ("False", "PreflightFailed", message)
    assert "create_training" not in d.actions
    assert any(e.type == "Warning" and e.reason == "PreflightFailed" for e in d.events)


def test_unschedulable_gpu_pod_is_insufficient_gpu_and_nothing_is_recreated() -> None:
    unsched = pod(
        conditions=[
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": "0/3 nodes are available: 3 Insufficient nvidia.com/gpu.",
            }
        ]
    )
    seen = decide.Observed(**passed_preflight(), training_job=k8s_job(), training_pods=[unsched])
    d = decide.decide(job({"phase": "Pending"}, resources={"gpusPerNode": 8}), seen, SETTINGS, NOW)
    cond = next(c for c in d.status.conditions if c.type == "Scheduled")
    assert (cond.status, cond.reason) == ("False", "InsufficientGPU")
    assert d.status.phase == "Pending" and d.actions == []
    again = decide.decide(job(d.status.to_wire(), resources={"gpusPerNode": 8}), seen, SETTINGS, NOW)
    assert not [e for e in again.events if e.reason == "InsufficientGPU"]  # one event per transition


def cond_of(d: decide.Decision, type: str) -> tuple[str, str, str]:
    found = next(c for c in d.status.conditions if c.type == type)
    return found.status, found.reason, found.message


def test_suspend_while_training_suspends_the_job_and_resume_unsuspends_it() -> None:
    ckpt = {"checkpointStorage": {"claimName": "ckpt"}}
    seen = decide.Observed(**passed_preflight(), training_job=k8s_job(), training_pods=[pod(running=True)])
    d = decide.decide(
        job({"phase": "Training", "checkpoints": [{"step": 8, "path": "/c/8"}]}, suspend=True, **ckpt),
        seen,
        SETTINGS,
        NOW,
    )
    assert d.actions == ["suspend_training"] and d.status.phase == "Suspended"
    assert cond_of(d, "Suspended")[2].startswith("checkpointing")  # the pod is still stopping
    assert cond_of(d, "Training")[:2] == ("False", "Suspended")
    seen = decide.Observed(**passed_preflight(), training_job=k8s_job(suspend=True))
    gone = decide.decide(job(d.status.to_wire(), suspend=True, **ckpt), seen, SETTINGS, NOW)
    assert gone.actions == [] and gone.status.phase == "Suspended"
    status, reason, message = cond_of(gone, "Suspended")
    assert (status, reason) == ("True", "Suspended") and "GPUs freed" in message
    assert "PVC ckpt" in message and "step 8" in message
    r = decide.decide(job(gone.status.to_wire(), suspend=False, **ckpt), seen, SETTINGS, NOW)
    assert r.actions == ["resume_training"]
    status, reason, message = cond_of(r, "Suspended")
    assert (status, reason) == ("False", "Resumed") and "last complete checkpoint" in message
    assert [e.reason for e in r.events].count("Resumed") == 1


def test_resumed_run_reports_the_checkpoint_step_it_loaded() -> None:
    ckpt = {"checkpointStorage": {"claimName": "ckpt"}}
    status = {
        "phase": "Pending",
        "attempts": 1,
        "conditions": [
            {
                "type": "Suspended",
                "status": "False",
                "reason": "Resumed",
                "message": "resumed; soon",
                **SINCE,
            },
            {
                "type": "Training",
                "status": "False",
                "reason": "Suspended",
                "message": "suspended at step 9",
                **SINCE,
            },
        ],
    }
    log = observe.TrainerLog(resumed_from_step=9)
    seen = decide.Observed(
        **passed_preflight(), training_job=k8s_job(), training_pods=[pod(running=True)], training_log=log
    )
    d = decide.decide(job(status, **ckpt), seen, SETTINGS, NOW)
    assert d.status.phase == "Training" and d.status.attempts == 1
    assert cond_of(d, "Suspended") == ("False", "Resumed", "resumed from checkpoint at step 9")
    assert cond_of(d, "Training") == ("True", "Resumed", "resumed from checkpoint at step 9")
    # Later the resume line has left the log tail: the conditions keep the step.
    seen.training_log = observe.TrainerLog()
    later = decide.decide(job(d.status.to_wire(), **ckpt), seen, SETTINGS, NOW)
    assert (
        cond_of(later, "Suspended")[2] == cond_of(later, "Training")[2] == "resumed from checkpoint at step 9"
    )
    assert later.events == []


def test_suspend_without_a_checkpoint_claim_says_training_restarts_from_zero() -> None:
    seen = decide.Observed(**passed_preflight(), training_job=k8s_job(suspend=True))
    d = decide.decide(job({"phase": "Training"}, suspend=True), seen, SETTINGS, NOW)
    message = cond_of(d, "Suspended")[2]
    assert "emptyDir" in message and "step 0" in message and "spec.checkpointStorage.claimName" in message


def test_a_deleted_pod_still_terminating_is_not_counted_twice() -> None:
    # The Job already counts the terminating pod as failed; its replacement is the second attempt.
    terminating = pod(running=True)
    terminating["metadata"]["deletionTimestamp"] = "2026-01-01T11:59:00Z"
    training = k8s_job()
    training["status"]["failed"] = 1
    seen = decide.Observed(**passed_preflight(), training_job=training, training_pods=[terminating, pod()])
    d = decide.decide(job({"phase": "Training", "attempts": 1}), seen, SETTINGS, NOW)
    assert d.status.attempts == 2


def test_retry_says_which_checkpoint_it_resumed_from_until_the_end() -> None:
    log = observe.TrainerLog(resumed_from_step=20)
    crashed = pod(running=True)
    crashed["status"]["containerStatuses"][0]["restartCount"] = 1
    seen = decide.Observed(
        **passed_preflight(), training_job=k8s_job(), training_pods=[crashed], training_log=log
    )
    d = decide.decide(job({"phase": "Training", "attempts": 1}), seen, SETTINGS, NOW)
    assert d.status.attempts == 2
    assert cond_of(d, "Training") == ("True", "Retrying", "attempt 2 resumed from checkpoint at step 20")
    seen.training_log = observe.TrainerLog()  # the resume line scrolled out of the tail
    again = decide.decide(job(d.status.to_wire()), seen, SETTINGS, NOW)
    assert cond_of(again, "Training")[2] == "attempt 2 resumed from checkpoint at step 20"
    result = run(
        {
            "gate": {"passed": True, "message": "ok"},
            "training": {"steps": 40, "resumedFromStep": 20},
            "pushed": {"ref": DIGEST, "tag": "t"},
        }
    )
    seen = decide.Observed(
        **passed_preflight(),
        training_job=k8s_job("Complete"),
        training_log=observe.TrainerLog(result=result),
    )
    done = decide.decide(job(again.status.to_wire()), seen, SETTINGS, NOW)
    assert done.status.phase == "Succeeded"
    status, reason, message = cond_of(done, "Training")
    assert (status, reason) == ("False", "Succeeded")
    assert message == "training finished in 2 attempts; the last attempt resumed from checkpoint at step 20"


def test_gate_not_met_fails_without_registering_and_stops_retries() -> None:
    seen = decide.Observed(
        **passed_preflight(),
        training_job=k8s_job(),
        training_pods=[pod(2, "gate not met: loss improved 0.01 < 0.1")],
    )
    d = decide.decide(job({"phase": "Training"}), seen, SETTINGS, NOW)
    assert d.status.phase == "Failed" and "stop_training" in d.actions and "create_adapter" not in d.actions
    gate = next(c for c in d.status.conditions if c.type == "GatePassed")
    assert (gate.status, gate.reason) == ("False", "GateNotMet")


def test_success_registers_an_adapter_only_with_a_pushed_digest() -> None:
    log = observe.TrainerLog(
        result=run(
            {
                "gate": {"passed": True, "message": "ok"},
                "pushed": {"ref": DIGEST, "tag": "t"},
                "metrics": [{"name": "loss", "base": 2.0, "tuned": 1.0, "delta": 1.0}],
            }
        )
    )
    seen = decide.Observed(**passed_preflight(), training_job=k8s_job("Complete"), training_log=log)
    d = decide.decide(job({"phase": "Exporting"}), seen, SETTINGS, NOW)
    assert d.status.phase == "Succeeded" and d.actions == ["create_adapter"] and d.adapter_ref == DIGEST
    assert d.status.adapter is not None and d.status.adapter.ref == DIGEST
    assert d.status.metrics[0].tuned == 1.0


def test_a_completed_training_without_a_pushed_digest_fails_instead_of_succeeding() -> None:
    seen = decide.Observed(
        **passed_preflight(),
        training_job=k8s_job("Complete"),
        training_log=observe.TrainerLog(result=run({"gate": {"passed": True, "message": "ok"}})),
    )
    d = decide.decide(job({"phase": "Exporting"}), seen, SETTINGS, NOW)
    assert d.status.phase == "Failed" and d.actions == [] and d.status.adapter is None
    failed = cond_of(d, "Failed")
    assert failed[:2] == ("True", "NotRegistered") and "no pushed digest" in failed[2]


def test_a_new_job_with_nowhere_to_push_fails_before_any_child_is_created() -> None:
    d = decide.decide(job(), decide.Observed(), Settings(), NOW)
    assert d.actions == [] and d.status.phase == "Failed"
    failed = cond_of(d, "Failed")
    assert failed[:2] == ("True", "NoRegistry")
    assert "spec.output.repository" in failed[2] and "registry.default" in failed[2]
    local = decide.decide(job(output={"repository": "/srv/layout"}), decide.Observed(), Settings(), NOW)
    assert local.actions == [] and cond_of(local, "Failed")[1] == "NoRegistry"
    assert "oci://HOST/PATH" in cond_of(local, "Failed")[2]
    # a dry run pushes nothing; a job naming its own registry needs no default
    assert decide.decide(job(dryRun=True), decide.Observed(), Settings(), NOW).actions == ["create_children"]
    own = job(output={"repository": "oci://registry.test/team/bot"})
    assert decide.decide(own, decide.Observed(), Settings(), NOW).actions == ["create_children"]


def test_the_default_registry_is_a_prefix_per_namespace_and_job() -> None:
    settings = Settings(default_registry="oci://registry.test/ml/adapters")
    assert settings.registry_target(None, "team-a", "bot") == "oci://registry.test/ml/adapters/team-a/bot"
    assert settings.registry_target(None, "team-b", "bot") == "oci://registry.test/ml/adapters/team-b/bot"
    assert settings.registry_target("oci://other/x", "team-a", "bot") == "oci://other/x"
    assert Settings().registry_target(None, "team-a", "bot") is None


def adapter_of(uid: str) -> dict[str, Any]:
    return {"spec": {"ref": DIGEST, "sourceJob": {"name": "bot", "namespace": "ml", "uid": uid}}}


def test_an_adapter_left_by_a_deleted_job_of_the_same_name_stops_the_job_before_training() -> None:
    seen = decide.Observed(**passed_preflight(), adapter=adapter_of("old-uid"))
    d = decide.decide(job({"phase": "Validating"}), seen, SETTINGS, NOW)
    assert "create_training" not in d.actions and d.status.phase == "Failed"
    failed = cond_of(d, "Failed")
    assert failed[:2] == ("True", "AdapterNameTaken")
    assert "old-uid" in failed[2] and "kubectl delete adapter bot -n ml" in failed[2]
    mine = decide.Observed(**passed_preflight(), adapter=adapter_of("u1"))
    assert "create_training" in decide.decide(job({"phase": "Validating"}), mine, SETTINGS, NOW).actions


def test_an_adapter_name_taken_while_training_fails_the_job_and_names_the_pushed_digest() -> None:
    pushed = "oci://registry.test/ml/bot@sha256:" + "b" * 64
    log = observe.TrainerLog(
        result=run({"gate": {"passed": True, "message": "ok"}, "pushed": {"ref": pushed, "tag": "t"}})
    )
    seen = decide.Observed(
        **passed_preflight(), training_job=k8s_job("Complete"), training_log=log, adapter=adapter_of("x")
    )
    d = decide.decide(job({"phase": "Exporting"}), seen, SETTINGS, NOW)
    assert d.status.phase == "Failed" and "create_adapter" not in d.actions and d.status.adapter is None
    failed = cond_of(d, "Failed")
    assert failed[1] == "AdapterNameTaken" and pushed in failed[2] and DIGEST in failed[2]


def test_a_registration_that_loses_the_race_for_the_name_is_reported_not_succeeded() -> None:
    log = observe.TrainerLog(
        result=run({"gate": {"passed": True, "message": "ok"}, "pushed": {"ref": DIGEST, "tag": "t"}})
    )
    seen = decide.Observed(**passed_preflight(), training_job=k8s_job("Complete"), training_log=log)
    d = decide.decide(job({"phase": "Exporting"}), seen, SETTINGS, NOW)
    assert d.status.phase == "Succeeded"
    taken = decide.foreign_adapter(job(), adapter_of("other"))
    assert taken is not None
    decide.refuse_registration(job({"phase": "Exporting"}), d, "AdapterNameTaken", taken, NOW)
    assert d.status.phase == "Failed" and d.status.adapter is None
    assert cond_of(d, "Failed")[1] == "AdapterNameTaken"
    assert all(c.type != "Succeeded" for c in d.status.conditions)
    assert "PhaseFailed" in [e.reason for e in d.events]


def test_deadline_exceeded_is_its_own_reason() -> None:
    seen = decide.Observed(**passed_preflight(), training_job=k8s_job("Failed", "DeadlineExceeded"))
    d = decide.decide(job({"phase": "Training"}, activeDeadlineSeconds=60), seen, SETTINGS, NOW)
    assert d.status.phase == "Failed"
    assert next(c for c in d.status.conditions if c.type == "Failed").reason == "DeadlineExceeded"


def test_no_step_for_longer_than_the_stall_timeout_is_stalled() -> None:
    status = {
        "phase": "Training",
        "progress": {"step": 5, "totalSteps": 50, "updateTime": "2026-01-01T11:00:00Z"},
    }
    seen = decide.Observed(**passed_preflight(), training_job=k8s_job(), training_pods=[pod(running=True)])
    d = decide.decide(job(status, stallTimeoutSeconds=600), seen, SETTINGS, NOW)
    stalled = next(c for c in d.status.conditions if c.type == "TrainingStalled")
    assert (stalled.status, stalled.reason) == ("True", "Stalled")
    # a stalled run may recover: kstatus must not read it as failed for good
    assert not [c for c in d.status.conditions if c.type == "Stalled"]
    assert cond_of(d, "Reconciling")[0] == "True"


def test_time_spent_suspended_is_not_a_stall() -> None:
    status = {
        "phase": "Training",
        "progress": {"step": 5, "totalSteps": 50, "updateTime": "2026-01-01T10:00:00Z"},
        "conditions": [
            {
                "type": "Suspended",
                "status": "False",
                "reason": "Resumed",
                "message": "resumed from checkpoint at step 5",
                "lastTransitionTime": "2026-01-01T11:59:00Z",
            }
        ],
    }
    seen = decide.Observed(**passed_preflight(), training_job=k8s_job(), training_pods=[pod(running=True)])
    d = decide.decide(job(status, stallTimeoutSeconds=600), seen, SETTINGS, NOW)
    assert not [c for c in d.status.conditions if c.type == "TrainingStalled"]
    later = datetime(2026, 1, 1, 12, 20, 0, tzinfo=UTC)
    stalled = decide.decide(job(status, stallTimeoutSeconds=600), seen, SETTINGS, later)
    assert cond_of(stalled, "TrainingStalled")[:2] == ("True", "Stalled")


def test_trainer_log_lines_fold_into_preflight_progress_checkpoints_and_resume() -> None:
    text = "\n".join(
        [
            '{"event": "phase", "phase": "preflight", "passed": true, "preflight": {"passed": true, "rows": 9}}',
            '{"event": "phase", "phase": "training", "message": "resumed", "checkpoint": "/c/4", "step": 4}',
            '{"event": "progress", "step": 6, "total_steps": 12, "epoch": 0.5, "loss": 1.5, "learning_rate": 0.1, "tokens_per_second": 10, "eta_seconds": 3}',
            '{"event": "phase", "phase": "checkpoint", "message": "c", "step": 6, "path": "/c/6"}',
            "not json",
            '{"event": "phase", "phase": "result", "result": {"job": "bot", "outcome": "Terminated", "exitCode": 143, "checkpoints": [{"step": 7, "path": "/c/7"}]}}',
        ]
    )
    log = observe.parse_log(text)
    assert log.preflight is not None and log.preflight.rows == 9
    assert log.progress is not None and log.progress.summary == "6/12 (50%)"
    # The checkpoint resumed from and those a stopped run's result lists are complete ones too.
    assert [c.step for c in log.checkpoints] == [4, 6, 7] and log.resumed_from_step == 4
    assert observe.resumed_from(log) == 4
    finished = RunResult(job="bot", outcome="Succeeded", exit_code=0, training=Training(resumed_from_step=3))
    assert observe.resumed_from(observe.TrainerLog(result=finished)) == 3


def test_status_command_renders_phase_progress_metrics_and_adapter() -> None:
    obj = job(
        {
            "phase": "Succeeded",
            "progress": {"step": 10, "totalSteps": 10, "summary": "10/10 (100%)"},
            "metrics": [{"name": "loss", "base": 2.0, "tuned": 1.5, "delta": 0.5}],
            "adapter": {"name": "bot", "ref": DIGEST},
        }
    ).model_dump(mode="json", by_alias=True, exclude_none=True)
    text = status_cli.render(obj)
    assert "Phase:       Succeeded" in text and "10/10 (100%)" in text and DIGEST in text and "loss" in text


def test_status_lists_only_the_checkpoints_the_trainer_keeps_on_disk() -> None:
    lines = [
        f'{{"event": "phase", "phase": "checkpoint", "message": "c", "step": {s}, "path": "/c/{s}"}}'
        for s in (5, 10, 15, 20, 25)
    ]
    seen = decide.Observed(
        **passed_preflight(),
        training_job=k8s_job(),
        training_pods=[pod(running=True)],
        training_log=observe.parse_log("\n".join(lines)),
    )
    d = decide.decide(
        job({"phase": "Training", "checkpoints": [{"step": 1, "path": "/c/1"}]}), seen, SETTINGS, NOW
    )
    assert [c.step for c in d.status.checkpoints] == [15, 20, 25]
    # the same number the builders pass to the trainer as --keep-checkpoints
    args = builders.training_job(job(), SETTINGS)["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--keep-checkpoints") + 1] == str(SETTINGS.keep_checkpoints) == "3"


def test_a_multi_node_failure_names_the_pod_that_failed() -> None:
    def ranked(name: str, exit_code: int | None, message: str = "", finished: str = "") -> dict[str, Any]:
        p = pod(exit_code, message, running=exit_code is None)
        p["metadata"]["name"] = name
        if exit_code is not None:
            p["status"]["containerStatuses"][0]["state"]["terminated"]["finishedAt"] = finished
        return p

    wide = job({"phase": "Training"}, resources={"numNodes": 2})
    data_error = "spec.dataset.uri pvc://data/train.jsonl: no such file (/mnt/pvc/data/train.jsonl)"
    seen = decide.Observed(
        **passed_preflight(),
        training_job=k8s_job(),
        training_pods=[
            ranked("bot-train-0-a", None),
            ranked("bot-train-1-b", 1, data_error, "2026-01-01T11:59:00Z"),
        ],
    )
    d = decide.decide(wide, seen, SETTINGS, NOW)
    assert cond_of(d, "Failed") == ("True", "TrainingFailed", f"pod bot-train-1-b exited 1: {data_error}")

    crashed = decide.Observed(
        **passed_preflight(),
        training_job=k8s_job("Failed", "BackoffLimitExceeded"),
        training_pods=[
            ranked("bot-train-0-a", 3, "internal error: RuntimeError: gloo timeout", "2026-01-01T11:58:00Z"),
            ranked("bot-train-1-b", 137, "", "2026-01-01T11:59:00Z"),
            ranked("bot-train-1-c", 0, "", "2026-01-01T11:59:30Z"),
        ],
    )
    d = decide.decide(wide, crashed, SETTINGS, NOW)
    message = cond_of(d, "Failed")[2]
    assert message.endswith(": pod bot-train-1-b exited 137"), message  # the latest failure, by time
