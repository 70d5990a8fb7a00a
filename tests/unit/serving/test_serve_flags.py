"""Flags and env variables of `kubetune serve`, TGI's limit defaults, quantize and fault settings."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from kubetune.serving import config, faults, quantize


def parse(argv: list[str], env: dict[str, str] | None = None) -> config.ServeConfig:
    parser = argparse.ArgumentParser()
    config.add_arguments(parser)
    return config.from_namespace(parser.parse_args(argv), env or {})


def test_flags_win_over_env_and_env_over_defaults() -> None:
    cfg = parse(["--model-id", "m", "--port", "8080"], {"PORT": "80", "MAX_CONCURRENT_REQUESTS": "7"})
    assert (cfg.port, cfg.max_concurrent_requests, cfg.hostname) == (8080, 7, "0.0.0.0")
    assert parse([], {"MODEL_ID": "m"}).port == 3000


def test_fault_flags_read_kubetune_env() -> None:
    cfg = parse(["--model-id", "m"], {"KUBETUNE_FAULT_ERROR_RATE": "0.3", "KUBETUNE_FAULT_LATENCY_MS": "200"})
    assert (cfg.fault_error_rate, cfg.fault_latency_ms) == (0.3, 200.0)
    with pytest.raises(config.ConfigError, match="between 0 and 1"):
        parse(["--model-id", "m", "--fault-error-rate", "1.5"])


def test_model_id_is_required() -> None:
    with pytest.raises(config.ConfigError, match="--model-id"):
        parse([])


def test_bad_env_values_name_the_variable() -> None:
    with pytest.raises(config.ConfigError, match="PORT='eighty'"):
        parse(["--model-id", "m"], {"PORT": "eighty"})
    with pytest.raises(config.ConfigError, match="QUANTIZE='int4'"):
        parse(["--model-id", "m"], {"QUANTIZE": "int4"})


def test_lora_adapters_take_aliases_and_local_directories(tmp_path: Path) -> None:
    adapters = config.parse_adapters(f"a=/x/a, b = /x/b ,{tmp_path}")
    assert [(a.name, str(a.path)) for a in adapters] == [
        ("a", "/x/a"),
        ("b", "/x/b"),
        (str(tmp_path), str(tmp_path)),
    ]
    with pytest.raises(config.ConfigError, match="hub adapter ids cannot be downloaded"):
        config.parse_adapters("org/adapter@rev")
    with pytest.raises(config.ConfigError, match="given twice"):
        config.parse_adapters("a=/x,a=/y")


def test_limits_default_from_the_context_length() -> None:
    limits = config.resolve_limits(config.ServeConfig(model_id="m"), context_length=512)
    assert (limits.max_input_tokens, limits.max_total_tokens) == (511, 512)
    assert limits.max_batch_prefill_tokens == 561 and limits.max_batch_total_tokens == 512 * 32


def test_input_limit_must_be_below_the_total() -> None:
    with pytest.raises(config.ConfigError, match="`max_input_tokens` must be < `max_total_tokens`"):
        config.resolve_limits(
            config.ServeConfig(model_id="m", max_input_tokens=100, max_total_tokens=100), 512
        )
    with pytest.raises(config.ConfigError, match="exceeds the model's context length"):
        config.resolve_limits(config.ServeConfig(model_id="m", max_total_tokens=1000), 512)


def test_dtype_and_quantize_do_not_mix() -> None:
    with pytest.raises(config.ConfigError, match="--dtype cannot be combined with --quantize"):
        parse(["--model-id", "m", "--dtype", "bfloat16", "--quantize", "bitsandbytes"])


@pytest.mark.parametrize("value", [v for v in config.QUANTIZE_VALUES if v != "bitsandbytes"])
def test_gpu_only_quantize_values_are_refused_in_one_line(value: str) -> None:
    with pytest.raises(quantize.QuantizeError) as caught:
        quantize.check(value)
    assert "\n" not in str(caught.value) and str(caught.value).startswith(
        f"--quantize {value} needs GPU kernels"
    )


def test_bitsandbytes_and_no_quantize_are_accepted() -> None:
    quantize.check("bitsandbytes")
    quantize.check(None)


def test_pre_quantized_checkpoints_are_refused() -> None:
    class Cfg:
        quantization_config = {"quant_method": "gptq"}

    with pytest.raises(quantize.QuantizeError, match="pre-quantized \\(gptq\\)"):
        quantize.check_model_config(Cfg())


def test_fault_rates_are_exact_at_the_extremes() -> None:
    assert not any(faults.Faults(0.0).should_fail() for _ in range(100))
    assert all(faults.Faults(1.0).should_fail() for _ in range(100))
    draws = [faults.Faults(0.3, seed=1).should_fail() for _ in range(1)]
    seeded = faults.Faults(0.3, seed=1)
    assert [seeded.should_fail() for _ in range(200)].count(True) in range(40, 81)
    assert draws == [faults.Faults(0.3, seed=1).should_fail()]


def test_serve_registers_as_a_kubetune_subcommand() -> None:
    from kubetune.cli import serve
    from kubetune.serving import command

    parser = argparse.ArgumentParser(prog="kubetune")
    serve.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(
        ["serve", "--model-id", "m", "--lora-adapters", "a=/x", "--max-input-tokens", "8"]
    )
    assert args.func is command.run
    cfg = config.from_namespace(args, {})
    assert (cfg.model_id, cfg.lora_adapters[0].name, cfg.max_input_tokens) == ("m", "a", 8)


def test_a_gpu_only_quantize_value_fails_before_loading_anything(capsys: pytest.CaptureFixture[str]) -> None:
    from kubetune.serving import command

    assert command.main(["--model-id", "/nonexistent", "--quantize", "awq"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("kubetune serve: --quantize awq needs GPU kernels")
