"""The loop's defaults are the API's: a LoopConfig built without a value trains as an empty
spec would (its warm-up once defaulted to 0 where the API says 0.03)."""

from __future__ import annotations

from kubetune.api.contract import pod
from kubetune.api.v1alpha1.finetunejob import FineTuneJobSpec, Hyperparameters
from kubetune.trainer import loop
from kubetune.trainer.batching import Batching


def test_loop_defaults_are_the_api_defaults() -> None:
    cfg = loop.LoopConfig(
        total_steps=1, batches_per_epoch=1, batching=Batching(batch_size=1, seed=0, max_len=8), pad_id=0
    )
    hp = Hyperparameters()
    assert cfg.warmup_ratio == hp.warmup_ratio == 0.03
    assert (cfg.learning_rate, cfg.scheduler, cfg.weight_decay, cfg.max_grad_norm, cfg.accumulation) == (
        hp.learning_rate,
        hp.scheduler,
        hp.weight_decay,
        hp.max_grad_norm,
        hp.gradient_accumulation_steps,
    )
    assert cfg.checkpoint_every == FineTuneJobSpec.model_fields["checkpoint_every_steps"].default
    assert cfg.keep_checkpoints == pod.KEEP_CHECKPOINTS
