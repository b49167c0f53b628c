# selo's worker image: what an ECS Fargate task runs (`selo worker <names>`). See docs/containers.md.
#
#   docker build --network host --target softhsm  -t selo-worker:softhsm .   local use and the tests
#   docker build --network host --target stack    -t selo-worker:stack .     + the local stand-ins (compose's stack)
#   docker build --network host --target cloudhsm -t selo-worker:cloudhsm .  production: AWS CloudHSM
#
# Always name a target: the classic builder (Debian's docker.io) builds every stage before the one
# asked for, so cloudhsm (which downloads AWS's client) is the last stage. BASE_IMAGE is any
# Debian bookworm image with Node 24 and npm in /usr/local (binary, headers, npm) as the official
# image has them; scripts/containers.sh makes one locally when no registry can be reached.
ARG BASE_IMAGE=node:24-bookworm-slim

# ---- production dependencies (npm ci --omit=dev), built for this image's Node ----------------
FROM ${BASE_IMAGE} AS deps
# pkcs11js is a native N-API addon compiled at install: a compiler, make and python3 for
# node-gyp, and Node's headers from /usr/local/include/node (nodedir: else node-gyp downloads them
# from nodejs.org).
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
ENV npm_config_nodedir=/usr/local
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-fund --no-audit --loglevel=error \
 && npm cache clean --force

# ---- the application: production node_modules and the sources --------------------------------
FROM scratch AS app
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
# Node 24 runs the .ts files as they are (type stripping): no build step, the sources are the app.
COPY package.json package-lock.json tsconfig.json ./
COPY bin ./bin
COPY shared ./shared
COPY workers ./workers
COPY infra ./infra
COPY scripts ./scripts

# ---- what every target shares: the user and how the process runs ------------------------------
FROM ${BASE_IMAGE} AS runtime
# A fixed, unprivileged uid/gid: files on shared volumes (the SoftHSM token) keep one owner.
RUN groupadd --system --gid 10001 selo \
 && useradd --system --uid 10001 --gid selo --home-dir /app --no-create-home --shell /usr/sbin/nologin selo
WORKDIR /app
ENV NODE_ENV=production \
    SELO_HEALTH_PORT=8080
# /ready answers 200 only when the worker's dependencies answer (the HSM for sign): see
# shared/runtime/health-server.ts. Node itself asks it: the image has no curl.
HEALTHCHECK --interval=5s --timeout=3s --start-period=15s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.SELO_HEALTH_PORT || '8080') + '/ready').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# Node is PID 1 with its own SIGTERM handler (shared/runtime/shutdown.ts: stop polling, drain,
# flush, exit 0 within 28 s, inside Fargate's 30 s before SIGKILL); it spawns no children to reap.
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "/app/bin/selo.ts", "worker"]
CMD ["all"]

# ---- softhsm: SoftHSM2 as the HSM (local use and the container tests) ------------------------
FROM runtime AS softhsm
# softhsm2: the PKCS#11 module; libengine-pkcs11-openssl: TLS with an HSM-held key (transmit).
RUN apt-get update \
 && apt-get install -y --no-install-recommends softhsm2 libengine-pkcs11-openssl \
 && rm -rf /var/lib/apt/lists/*
# The token lives in /app/.selo/softhsm/tokens (a volume shared by the containers), not in the
# image; the configuration is outside /etc/softhsm, which Debian's package keeps from other users.
RUN printf '%s\n' 'directories.tokendir = /app/.selo/softhsm/tokens' 'objectstore.backend = file' 'log.level = ERROR' \
      'slots.removable = false' 'slots.mechanisms = ALL' 'library.reset_on_fork = false' > /etc/selo-softhsm2.conf \
 && mkdir -p /app/.selo/softhsm/tokens /app/.selo/pki \
 && chown -R selo:selo /app/.selo && chmod 0700 /app/.selo/softhsm/tokens
ENV SOFTHSM2_CONF=/etc/selo-softhsm2.conf \
    SELO_HSM_MODULE=/usr/lib/softhsm/libsofthsm2.so
COPY --from=app /app/ /app/
USER selo

# ---- the stand-ins' dependencies: fauxqs, kinesalite, dynalite -------------------------------
# Development dependencies of selo: only the stack target has them, at the versions
# package-lock.json pins; they are made production dependencies in this stage alone.
FROM deps AS stack-deps
RUN node -e "const fs = require('node:fs'); const p = JSON.parse(fs.readFileSync('package.json', 'utf8')); for (const n of ['fauxqs', 'kinesalite', 'dynalite']) p.dependencies[n] = p.devDependencies[n]; delete p.devDependencies; fs.writeFileSync('package.json', JSON.stringify(p, null, 2));" \
 && npm install --omit=dev --no-fund --no-audit --loglevel=error \
 && npm cache clean --force

# ---- stack: softhsm plus the local AWS stand-ins and the BCB simulator (`selo up`) -----------
FROM softhsm AS stack
COPY --from=stack-deps /app/node_modules ./node_modules
# No Java in this image: its stack runs dynalite, not DynamoDB Local (docs/local-stack.md).
ENV SELO_LOCAL_DYNAMODB=dynalite
ENTRYPOINT ["node", "/app/bin/selo.ts"]
CMD ["up", "--no-workers"]

# ---- cloudhsm: AWS CloudHSM's PKCS#11 library (Client SDK 5), the production image -----------
# Written from AWS's "Install the PKCS #11 library for AWS CloudHSM Client SDK 5"; NOT built by
# selo's tests (AWS's download cannot be reached from the machines they run on). AWS ships no
# Debian package: the Ubuntu 22.04 (Jammy) one is built against glibc 2.35, which bookworm's 2.36
# satisfies (Noble's needs 2.38). Configured at start by scripts/containers-cloudhsm-entrypoint.sh
# (SELO_CLOUDHSM_HSM_IP, SELO_CLOUDHSM_CUSTOMER_CA); the PIN is "<crypto user>:<password>".
FROM runtime AS cloudhsm
ARG CLOUDHSM_PKCS11_DEB=https://s3.amazonaws.com/cloudhsmv2-software/CloudHsmClient/Jammy/cloudhsm-pkcs11_latest_u22.04_amd64.deb
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates wget \
 && wget -q -O /tmp/cloudhsm-pkcs11.deb "$CLOUDHSM_PKCS11_DEB" \
 && apt-get install -y --no-install-recommends /tmp/cloudhsm-pkcs11.deb \
 && apt-get purge -y --auto-remove wget \
 && rm -rf /tmp/cloudhsm-pkcs11.deb /var/lib/apt/lists/* \
 && chown -R selo:selo /opt/cloudhsm/etc
ENV SELO_HSM_MODULE=/opt/cloudhsm/lib/libcloudhsm_pkcs11.so
COPY scripts/containers-cloudhsm-entrypoint.sh /usr/local/bin/selo-cloudhsm-entrypoint
COPY --from=app /app/ /app/
USER selo
ENTRYPOINT ["/usr/local/bin/selo-cloudhsm-entrypoint", "worker"]
CMD ["all"]
