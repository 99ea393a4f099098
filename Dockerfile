# The operator's image: one ES module bundled from the TypeScript source (src/build/bundle.ts,
# ADR 0017), the ledger's migrations and the bundled packages' licences, on distroless Node 24.
# docs/image.md says what it contains and how test/integration/image/ checks it without a
# container engine (e2e/image/bundle.ts carries out this file's build stage, reading this file and
# .dockerignore, and runs the result under runc).
#
# Builder: the official Node image of the runtime's Debian release (12, bookworm). Its exact
# version is the one the tests run on (e2e/toolchain/node), which runs src/build/bundle.ts by type
# stripping. Runtime: distroless, so there is no shell, no npm and no package manager to exploit,
# and its `nonroot` user is 65532. Distroless tags Node by major version only; pin both images by
# digest (`image:tag@sha256:...`) where a registry can resolve them.
ARG BUILDER_IMAGE=node:24.21.0-bookworm-slim
ARG RUNTIME_IMAGE=gcr.io/distroless/nodejs24-debian12:nonroot

FROM ${BUILDER_IMAGE} AS build
WORKDIR /build
COPY package.json package-lock.json ./
# Every dependency, exactly as locked: the bundler, esbuild, is a devDependency. No install
# scripts: esbuild finds its binary through its platform package without its postinstall.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY src ./src
RUN node src/build/bundle.ts

FROM ${RUNTIME_IMAGE}
ENV NODE_ENV=production
WORKDIR /app
# Owned by root and not writable by the numeric user below, so the process cannot change its
# own code even where the root filesystem is not mounted read-only. No node_modules: the bundle
# holds every package the operator runs.
COPY --from=build /build/dist ./
# Numeric, so that Kubernetes' runAsNonRoot can verify it (it cannot resolve a user name).
USER 65532:65532
EXPOSE 8080 8081
# Node directly (no npm, no shell), so SIGTERM reaches the operator itself. Nothing is written at
# run time: readOnlyRootFilesystem needs no writable volume.
ENTRYPOINT ["/nodejs/bin/node", "bin/ssj-operator.mjs"]
