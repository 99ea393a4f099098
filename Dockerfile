# The operator runs its TypeScript source directly on Node.js 24 (type stripping, ADR 0001): there
# is no build step, so the image is the production dependencies, package.json and src/.
# docs/image.md says what it contains and how test/integration/image/ checks it without a
# container engine (e2e/image/bundle.ts installs the same tree, reading this file and
# .dockerignore, and runs it under runc).
#
# Builder: the official Node image of the runtime's Debian release (12, bookworm), so anything
# npm unpacks is built for the same glibc. Its exact version is the one the tests run on
# (e2e/toolchain/node). Runtime: distroless, so there is no shell, no npm and no package manager
# to exploit, and its `nonroot` user is 65532. Distroless tags Node by major version only; pin both
# images by digest (`image:tag@sha256:...`) where a registry can resolve them.
ARG BUILDER_IMAGE=node:24.21.0-bookworm-slim
ARG RUNTIME_IMAGE=gcr.io/distroless/nodejs24-debian12:nonroot

FROM ${BUILDER_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# Production dependencies only, exactly as locked. No install scripts: no production dependency
# needs one, and none then runs at build time.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

FROM ${RUNTIME_IMAGE}
ENV NODE_ENV=production
WORKDIR /app
# Owned by root and not writable by the numeric user below, so the process cannot change its
# own code even where the root filesystem is not mounted read-only. .dockerignore keeps tests
# and the development-only generators out of src/.
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY src ./src
# Numeric, so that Kubernetes' runAsNonRoot can verify it (it cannot resolve a user name).
USER 65532:65532
EXPOSE 8080 8081
# Node directly (no npm, no shell), so SIGTERM reaches the operator itself. Nothing is written at
# run time: readOnlyRootFilesystem needs no writable volume.
ENTRYPOINT ["/nodejs/bin/node", "src/main.ts"]
