#!/bin/sh
# Entry point of the cloudhsm image (Dockerfile target cloudhsm; not built by selo's tests, see
# docs/containers.md): points AWS CloudHSM's PKCS#11 library (Client SDK 5) at the cluster, then
# becomes `node bin/selo.ts "$@"` (exec: Node is PID 1 and receives SIGTERM itself).
#   SELO_CLOUDHSM_HSM_IP        an HSM's ENI address (configure-pkcs11 -a); else the configuration
#                               already in /opt/cloudhsm/etc is used
#   SELO_CLOUDHSM_CUSTOMER_CA   the certificate that issued the cluster's HSM certificate (PEM),
#                               written to /opt/cloudhsm/etc/customerCA.crt
#   SELO_CLOUDHSM_SINGLE_HSM    "true" for a one-HSM cluster (--disable-key-availability-check)
set -eu
if [ -n "${SELO_CLOUDHSM_CUSTOMER_CA:-}" ]; then
  printf '%s\n' "$SELO_CLOUDHSM_CUSTOMER_CA" > /opt/cloudhsm/etc/customerCA.crt
fi
if [ -n "${SELO_CLOUDHSM_HSM_IP:-}" ]; then
  /opt/cloudhsm/bin/configure-pkcs11 -a "$SELO_CLOUDHSM_HSM_IP"
fi
if [ "${SELO_CLOUDHSM_SINGLE_HSM:-false}" = "true" ]; then
  /opt/cloudhsm/bin/configure-pkcs11 --disable-key-availability-check
fi
exec node /app/bin/selo.ts "$@"
