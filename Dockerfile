# moviesd container image: a build stage with the -dev packages, and a runtime stage with
# only the shared libraries and CA certificates. Both install from deps/*.txt, the same lists
# scripts/install-deps.sh and CI use.
#
#   docker build -t moviesd .
#   docker run -d -p 8080:8080 --read-only --cap-drop=ALL \
#     --security-opt no-new-privileges --ulimit nofile=16384 moviesd
#
# --ulimit: one open file per API connection (max_connections, 8192 by default), one per
# upstream connection and spares; the daemon raises its soft limit to what its settings
# need, as far as the hard limit the engine gives lets it (and says so when it cannot).

FROM debian:bookworm-slim AS build
ARG DEBIAN_FRONTEND=noninteractive
COPY deps/build.txt /tmp/deps/build.txt
RUN apt-get update \
 && xargs -a /tmp/deps/build.txt apt-get install -y --no-install-recommends \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY CMakeLists.txt ./
COPY lib/ lib/
COPY daemon/ daemon/
COPY web/ web/
COPY config/ config/
COPY systemd/ systemd/
COPY docs/moviesd.8 docs/openapi.json docs/
COPY cmake/ cmake/
COPY LICENSE ./
# The build has no .git: the revision comes in as a build argument.
ARG REVISION=unknown
# The tests need Python and the test fixtures; the image needs neither.
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=/usr/local \
          -DBUILD_TESTING=OFF -DMOVIESD_REVISION="$REVISION" \
 && cmake --build /build -j"$(nproc)" \
 && DESTDIR=/out cmake --install /build --strip \
 && /out/usr/local/bin/moviesd --version

FROM debian:bookworm-slim
ARG DEBIAN_FRONTEND=noninteractive
COPY deps/runtime.txt /tmp/deps/runtime.txt
RUN apt-get update \
 && xargs -a /tmp/deps/runtime.txt apt-get install -y --no-install-recommends \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log /tmp/deps
COPY --from=build /out/usr/local/bin/moviesd /usr/local/bin/moviesd
COPY --from=build /out/usr/local/share/doc/moviesd/LICENSE /usr/local/share/doc/moviesd/LICENSE
# Fails the build if a library the binary links is missing from deps/runtime.txt.
RUN /usr/local/bin/moviesd --version

# VERSION, REVISION and SOURCE come from the build (tests/deploy/container.sh passes the
# project's version, the commit and the clone's origin).
ARG VERSION=unknown
ARG REVISION=unknown
ARG SOURCE=unknown
LABEL org.opencontainers.image.title="moviesd" \
      org.opencontainers.image.description="Movies coming soon per city, over HTTP" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.version="$VERSION" \
      org.opencontainers.image.revision="$REVISION" \
      org.opencontainers.image.source="$SOURCE"
# The poster cache: the one thing the daemon writes, in a volume of its own (the root
# stays read-only), kept across container restarts while the volume is.
RUN mkdir -p /var/cache/moviesd && chown 10001:10001 /var/cache/moviesd && chmod 0700 /var/cache/moviesd
VOLUME ["/var/cache/moviesd"]
# A numeric user with no entry in /etc/passwd: no shell, no home, and runtimes that check
# "non-root" can tell from the number alone.
USER 10001:10001
ENV MOVIESD_LISTEN=0.0.0.0:8080 \
    MOVIESD_POSTER_CACHE_DIR=/var/cache/moviesd
EXPOSE 8080
# SIGTERM drains the requests in flight, then the daemon exits 0.
STOPSIGNAL SIGTERM
# The daemon probes its own /healthz at MOVIESD_LISTEN: no curl in the image.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["/usr/local/bin/moviesd", "health"]
ENTRYPOINT ["/usr/local/bin/moviesd"]
