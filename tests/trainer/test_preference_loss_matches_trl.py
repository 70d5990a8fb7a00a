"""The preference losses equal TRL's (trl 1.16.0, a test-only dependency) on the same batch.

DPO (sigmoid) and IPO: TRL has no standalone loss function; the loss is computed inside
``DPOTrainer._compute_loss``, which this test calls on a real ``DPOTrainer`` built around the
tiny Llama, with the same token ids and completion mask as kubetune's batch. TRL computes the
reference log-probabilities itself (``precompute_ref_log_probs`` off): with a separate frozen
copy of the base model for full fine-tuning, and with the adapter disabled for LoRA, which is
what kubetune's precomputed base-model scores stand for. ORPO: TRL's
``ORPOTrainer.odds_ratio_loss`` (trl.experimental) on kubetune's per-token average log-probs.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import datasets  # test-only dependencies of the dev extra, with trl
import pytest
import trl

from kubetune.api.v1alpha1.preference import PreferenceSpec
from kubetune.trainer import formats, models
from kubetune.trainer.encoding import IGNORE
from kubetune.trainer.preference import data, logps, reference
from kubetune.trainer.records import Row

from .test_preference_tuning import preference_rows

torch = pytest.importorskip("torch")

CHAT_ROW = {
    "prompt": [{"role": "user", "content": "What does the owl say?"}],
    "chosen": [{"role": "assistant", "content": "The owl hoots."}],
    "rejected": [{"role": "assistant", "content": "The owl moos, it is the cow."}],
}
ROWS = [*preference_rows()[::11][:8], CHAT_ROW]


def _perturb(model: Any, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))


@pytest.fixture(scope="module")
def setup(tiny_model: Path) -> Any:
    tokenizer = models.load_tokenizer(tiny_model)
    base = models.load_model(tiny_model, "causal", pad_token_id=tokenizer.pad_token_id, seed=0)
    examples, problems = formats.parse(
        [Row("p.jsonl", i + 1, r) for i, r in enumerate(ROWS)], "preference", formats.Columns()
    )
    assert problems == []
    pairs = data.encode_pairs(tokenizer, examples, 64)
    scores = reference.score(base, pairs, tokenizer.pad_token_id, "cpu")
    return tokenizer, base, reference.attach(pairs, scores)


def _trainer(
    policy: Any,
    ref_model: Any,
    tokenizer: Any,
    loss_type: str,
    beta: float,
    tmp: Path,
    peft_config: Any = None,
) -> Any:
    config = trl.DPOConfig(
        output_dir=str(tmp),
        beta=beta,
        loss_type=[loss_type],
        report_to=[],
        use_cpu=True,
        bf16=False,  # TRL's default autocasts to bfloat16
        max_length=None,
        precompute_ref_log_probs=False,
    )
    rows = [{"prompt": "p", "chosen": "a", "rejected": "b"}]  # the trainer needs a dataset; unused
    return trl.DPOTrainer(
        model=policy,
        ref_model=ref_model,
        args=config,
        train_dataset=datasets.Dataset.from_list(rows),
        processing_class=tokenizer,
        peft_config=peft_config,
    )


def _trl_loss(trainer: Any, tokenizer: Any, pairs: Any) -> float:
    batch = logps.collate(pairs, tokenizer.pad_token_id)
    inputs = {
        "input_ids": batch["input_ids"],
        "attention_mask": batch["attention_mask"],
        "completion_mask": (batch["labels"] != IGNORE).long(),
    }
    trainer.model.eval()
    with torch.no_grad():
        return float(trainer._compute_loss(trainer.model, inputs, False))


def _ours(policy: Any, tokenizer: Any, pairs: Any, loss: str, beta: float) -> float:
    objective = logps.Objective(PreferenceSpec(loss=loss, beta=beta), tokenizer.pad_token_id)  # type: ignore[arg-type]
    policy.eval()
    with torch.no_grad():
        total = objective.loss_sum(policy, [[i] for i in range(len(pairs))], pairs, "cpu")
    return float(total) / len(pairs)


@pytest.mark.parametrize(("loss", "beta"), [("sigmoid", 0.1), ("sigmoid", 2.0), ("ipo", 0.5)])
def test_full_fine_tuning_loss_matches_trl(setup: Any, loss: str, beta: float, tmp_path: Path) -> None:
    tokenizer, base, pairs = setup
    policy = copy.deepcopy(base)
    _perturb(policy, seed=1)
    ours = _ours(policy, tokenizer, pairs, loss, beta)
    trainer = _trainer(policy, copy.deepcopy(base), tokenizer, loss, beta, tmp_path)
    theirs = _trl_loss(trainer, tokenizer, pairs)
    if loss == "sigmoid":
        assert abs(ours - math.log(2)) > 0.01  # the policy differs from the reference
    assert ours == pytest.approx(theirs, rel=1e-5, abs=1e-6)


def test_lora_loss_matches_trl_with_the_adapter_disabled_as_reference(setup: Any, tmp_path: Path) -> None:
    from peft import LoraConfig

    tokenizer, base, pairs = setup
    lora = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], lora_dropout=0.0)
    # a new adapter, as kubetune trains one: TRL's reference is then the model with it disabled
    trainer = _trainer(copy.deepcopy(base), None, tokenizer, "sigmoid", 0.1, tmp_path, peft_config=lora)
    policy = trainer.model
    assert "ref" not in policy.peft_config
    g = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for name, p in policy.named_parameters():
            if "lora_B" in name:
                p.copy_(0.5 * torch.randn(p.shape, generator=g))
    ours = _ours(policy, tokenizer, pairs, "sigmoid", 0.1)  # against kubetune's base-model scores
    theirs = _trl_loss(trainer, tokenizer, pairs)
    assert ours != pytest.approx(0.693147, abs=1e-3)
    assert ours == pytest.approx(theirs, rel=1e-5, abs=1e-6)


def test_orpo_odds_ratio_term_matches_trl(setup: Any) -> None:
    from trl.experimental.orpo import ORPOTrainer

    tokenizer, base, pairs = setup
    policy = copy.deepcopy(base)
    _perturb(policy, seed=3)
    batch = logps.collate(pairs, tokenizer.pad_token_id)
    with torch.no_grad():
        sums, counts = logps.answer_logps(policy, batch)
    chosen, rejected = sums.chunk(2)
    n_chosen, n_rejected = counts.chunk(2)
    beta = 0.25
    ours = logps.losses(
        PreferenceSpec(loss="orpo", beta=beta), chosen, rejected, None, None, n_chosen, n_rejected
    )
    stub = SimpleNamespace(beta=beta, accelerator=SimpleNamespace(device="cpu"))
    terms = ORPOTrainer.odds_ratio_loss(stub, chosen / n_chosen, rejected / n_rejected)[0]  # type: ignore[arg-type]
    nll = -chosen / n_chosen
    assert (ours - nll).tolist() == pytest.approx((-terms).tolist(), rel=1e-5, abs=1e-6)
    assert bool(torch.isfinite(ours).all())
