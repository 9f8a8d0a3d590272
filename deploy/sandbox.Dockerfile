# The sandbox (simulators of Z-API and the seven internal systems, plus an SMTP mailbox)
# for the compose file's `sandbox` profile: never part of a deployment, so it is its own
# image. Built by deploy/build-image.sh --sandbox after the hub's image; its first
# layers are the hub's builder's (the same instructions), so only the last ones build.
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
RUN python3 -m venv /opt/venv
COPY deploy/.build/requirements.txt /build/requirements.txt
COPY deploy/.build/wheels /build/wheels
RUN /opt/venv/bin/pip install --no-index --find-links /build/wheels -r /build/requirements.txt
COPY deploy/.build/requirements-sandbox.txt deploy/.build/project deploy/.build/sandbox /build/sandbox/
RUN /opt/venv/bin/pip install --no-index --find-links /build/wheels -r /build/sandbox/requirements-sandbox.txt \
 && /opt/venv/bin/pip install --no-index --no-deps /build/sandbox/*.whl
COPY deploy/image/sandbox_serve.py /opt/carinho/
ENV PATH=/opt/venv/bin:$PATH LANG=C.UTF-8 PYTHONIOENCODING=utf-8 PYTHONUNBUFFERED=1 PYTHONWARNINGS=ignore
RUN mkdir -p /opt/sandbox/mailbox && chown -R 10001:10001 /opt/sandbox
USER 10001
WORKDIR /opt/sandbox
HEALTHCHECK --interval=10s --timeout=5s --retries=20 CMD ["python", "/opt/carinho/sandbox_serve.py", "--check"]
ENTRYPOINT ["python", "/opt/carinho/sandbox_serve.py"]
