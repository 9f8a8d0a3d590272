# BASE_IMAGE for deploy/Dockerfile where python:3.11-slim cannot be pulled: Debian's own
# Python 3.11 (the interpreter bookworm ships, as the official image's major.minor).
FROM carinho-local/debian:bookworm
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3.11 python3-venv ca-certificates \
 && ln -sf /usr/bin/python3.11 /usr/local/bin/python \
 && apt-get clean && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/cache/debconf/*-old \
    /usr/share/doc/* /usr/share/man/* /usr/share/locale/*
ENV LANG=C.UTF-8
CMD ["python3"]
