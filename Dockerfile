# The policybot image: one process, `policybot serve`, configured by environment variables.
# Build: docker build -t policybot .   Run and deploy: docs/deploy.md (compose file: deploy/compose.yaml).
# Linted by hadolint in the tests (tests/test_deploy.py), which also run its HEALTHCHECK and commands.

FROM python:3.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY bot ./bot
COPY adapters ./adapters
COPY knowledge ./knowledge
RUN python -m venv /opt/policybot \
    && /opt/policybot/bin/pip install --no-cache-dir .

FROM python:3.11-slim-bookworm
# A system user (uid 10001; USER below names it by number, which Kubernetes runAsNonRoot can check)
# without a shell or a home of its own: the server writes only its SQLite database (when DATABASE_URL
# is not set to PostgreSQL), in /var/lib/policybot, and the snapshots of the indexed knowledge base,
# in /var/cache/policybot (POLICYBOT_CACHE_DIR: without it, a home folder's cache it does not have).
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin policybot \
    && mkdir -p /var/lib/policybot /var/cache/policybot \
    && chown policybot /var/lib/policybot /var/cache/policybot \
    && chmod 700 /var/cache/policybot
COPY --from=build /opt/policybot /opt/policybot
ENV PATH=/opt/policybot/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PORT=3000 \
    DATABASE_URL=sqlite:////var/lib/policybot/policybot.db \
    POLICYBOT_CACHE_DIR=/var/cache/policybot
WORKDIR /var/lib/policybot
USER 10001
EXPOSE 3000
# /healthz answers 200 while the server runs (with the knowledge-base version it serves).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '3000'), timeout=4)"]
# The knowledge base HR edits: mount it at /knowledge and set POLICYBOT_KNOWLEDGE=/knowledge;
# without it the default guidelines installed with policybot are served.
CMD ["policybot", "serve"]
