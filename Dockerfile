# syntax=docker/dockerfile:1
# The kubetune image (ghcr.io/kubetune/kubetune): the operator (`kubetune operator run`, what the
# Helm chart deploys), and in ModelDeployment pods the adapter-pull init containers
# (`kubetune registry pull`) and the verifier sidecar (`kubetune verify-adapters`). No torch:
# training runs in trainer-image/. Build from the repository root:
#
#   docker build -t ghcr.io/kubetune/kubetune:0.1.0 .
ARG PYTHON=3.11

FROM python:${PYTHON}-slim AS wheels
WORKDIR /src
COPY requirements/constraints.txt requirements/constraints.txt
COPY pyproject.toml README.md ./
COPY operator operator
RUN pip wheel --no-cache-dir --wheel-dir /wheels -c requirements/constraints.txt .

FROM python:${PYTHON}-slim
RUN useradd --uid 1000 --user-group --no-create-home --home-dir /var/lib/kubetune kubetune \
 && install -d -o 1000 -g 1000 /var/lib/kubetune
RUN --mount=type=bind,from=wheels,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links /wheels kubetune
ENV PYTHONUNBUFFERED=1
USER 1000:1000
WORKDIR /var/lib/kubetune
ENTRYPOINT ["kubetune"]
CMD ["operator", "run"]
