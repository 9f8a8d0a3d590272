# Where redis:7 cannot be pulled: Debian's redis-server (7.0), same command line.
FROM carinho-local/debian:bookworm
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server \
 && apt-get clean && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/cache/debconf/*-old \
    /usr/share/doc/* /usr/share/man/* /usr/share/locale/* \
 && mkdir -p /data && chown redis:redis /data
WORKDIR /data
VOLUME /data
USER redis
CMD ["redis-server"]
