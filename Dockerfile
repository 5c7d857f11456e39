# syntax=docker/dockerfile:1
# The infisical-reloader image: the CLI, its production dependencies, the JSON Schema, the
# shipped templates and the TLS pair check, under /opt/infisical-reloader.
#
#   docker build -t ghcr.io/example/infisical-reloader:0.1.0 .
#   docker run --rm ghcr.io/example/infisical-reloader:0.1.0 --help
#
# Node 24 (the active LTS) in the image; the package itself supports Node >= 20 (CI runs the
# suite on Node 20 and on Node 24).
# test/examples/dockerfile.test.ts performs these steps without a Docker engine.
ARG NODE_IMAGE=node:24-bookworm-slim

# ---- build: compile the TypeScript, then drop the dev dependencies ----
FROM ${NODE_IMAGE} AS build
WORKDIR /build
COPY package.json package-lock.json ./
# No dependency needs an install script (esbuild's, pulled by the dev tool tsx, is not needed).
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
COPY src/ ./src/
# The build also writes a precompiled validator of the spec schema (dist/src/config/).
COPY schema/ ./schema/
RUN npm run build
RUN npm prune --omit=dev --ignore-scripts --no-audit --no-fund

# ---- runtime ----
FROM ${NODE_IMAGE}
# tini as PID 1 (or, with shareProcessNamespace, as a subreaper: -s): it forwards SIGTERM and
# SIGHUP to the reloader and reaps orphans of check and reload commands, which Node does not.
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/infisical-reloader
COPY --from=build /build/package.json ./
COPY --from=build /build/node_modules/ ./node_modules/
COPY --from=build /build/dist/src/ ./dist/src/
COPY schema/ ./schema/
COPY templates/ ./templates/
COPY scripts/check-tls-pair.mjs ./scripts/
RUN chmod 0755 dist/src/main.js scripts/check-tls-pair.mjs \
 && ln -s /opt/infisical-reloader/dist/src/main.js /usr/local/bin/infisical-reloader \
 && ln -s /opt/infisical-reloader/scripts/check-tls-pair.mjs /usr/local/bin/infisical-reloader-check-tls
ENV NODE_ENV=production
# A numeric uid, so that Kubernetes can verify runAsNonRoot. 1000 is the image's `node` user;
# a sidecar overrides it with the app's uid (runAsUser), because signalling the app needs the
# same uid: 101 next to nginx-unprivileged, 70 next to edoburu/pgbouncer.
USER 1000:1000
EXPOSE 8080
ENTRYPOINT ["/usr/bin/tini", "-s", "--", "infisical-reloader"]
CMD ["run"]
