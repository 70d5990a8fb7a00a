"""The Dockerfiles agree with what the operator's pods expect of the images: the user id and
working directory the training pods run with, the extras each image installs, the repositories
the chart and the settings name, and COPY sources that exist and are not docker-ignored. (No
Docker engine here, so the images themselves are not built by the tests.)"""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path

import pytest
import yaml

from kubetune.controllers import settings
from kubetune.controllers.finetunejob import builders

REPO = Path(__file__).resolve().parents[2]
IMAGES = {"trainer": REPO / "trainer-image" / "Dockerfile", "kubetune": REPO / "Dockerfile"}


def _lines(path: Path) -> list[str]:
    """Instructions with continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", path.read_text(encoding="utf-8"))
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


@pytest.mark.parametrize("image", sorted(IMAGES))
def test_image_runs_as_the_uid_and_in_the_directory_the_pods_use(image: str) -> None:
    lines = _lines(IMAGES[image])
    final = lines[max(i for i, line in enumerate(lines) if line.startswith("FROM ")) :]
    assert f"USER {builders.TRAINER_UID}:{builders.TRAINER_UID}" in final
    assert f"WORKDIR {builders.WORK_DIR}" in final
    assert any(f"--uid {builders.TRAINER_UID}" in line for line in final)


def test_trainer_image_installs_the_trainer_extra_and_the_kubetune_image_does_not() -> None:
    trainer = " ".join(_lines(IMAGES["trainer"]))
    kubetune = " ".join(_lines(IMAGES["kubetune"]))
    assert '".[trainer]"' in trainer and '"kubetune[trainer]"' in trainer
    assert "trainer]" not in kubetune
    for text in (trainer, kubetune):
        assert "-c requirements/constraints.txt" in text  # the versions CI tests


@pytest.mark.parametrize("image", sorted(IMAGES))
def test_copied_sources_exist_and_are_not_docker_ignored(image: str) -> None:
    ignored = [
        p.strip()
        for p in (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if p.strip() and not p.startswith("#")
    ]
    for line in _lines(IMAGES[image]):
        if not line.startswith("COPY ") or "--from=" in line:
            continue
        for source in line.split()[1:-1]:
            assert (REPO / source).exists(), f"{image}: COPY {source} does not exist"
            assert not any(fnmatch.fnmatch(source, pat) for pat in ignored), f"{source} is in .dockerignore"


def test_chart_and_operator_defaults_name_the_images_built_here() -> None:
    values = yaml.safe_load((REPO / "charts" / "kubetune" / "values.yaml").read_text(encoding="utf-8"))
    trainer_repo, _, _ = settings.DEFAULT_TRAINER_IMAGE.rpartition(":")
    kubetune_repo, _, _ = settings.DEFAULT_KUBETUNE_IMAGE.rpartition(":")
    assert values["trainerImage"]["repository"] == trainer_repo
    assert values["image"]["repository"] == kubetune_repo
    assert f"-t {settings.DEFAULT_TRAINER_IMAGE} " in IMAGES["trainer"].read_text(encoding="utf-8")
    assert f"-t {settings.DEFAULT_KUBETUNE_IMAGE} " in IMAGES["kubetune"].read_text(encoding="utf-8")
