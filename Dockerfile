# One image for both processes: `web` (default) and `worker`.
FROM python:3.11-slim AS base

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    FEATURE_CREW_HOME=/var/lib/feature-crew \
    PORT=8000

# git: the audit runs the target repository's own tooling, which often shells out to it.
# bubblewrap: the confinement that setup, audit and baseline run in (pipeline/sandbox.py).
RUN apt-get update \
    && apt-get install -y --no-install-recommends git ca-certificates tini bubblewrap \
    && rm -rf /var/lib/apt/lists/*

RUN useradd --create-home --uid 10001 crew \
    && mkdir -p /var/lib/feature-crew && chown crew /var/lib/feature-crew

WORKDIR /app
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY handlers ./handlers
COPY pipeline ./pipeline
COPY guardrails ./guardrails
COPY Procfile config.example.toml ./
RUN pip install .

USER crew
VOLUME ["/var/lib/feature-crew"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s \
    CMD python -c "import os, urllib.request; urllib.request.urlopen(f'http://127.0.0.1:{os.environ.get(\"PORT\", \"8000\")}/health', timeout=4)"
ENTRYPOINT ["tini", "--", "feature-crew"]
CMD ["web"]
