# The job-template-run operator image: one statically linked binary, nothing
# else. The binary is built outside Docker (no base image can be pulled) by
# scripts/build-image.sh, which passes a build context holding only
# `job-template-run` (the x86_64-unknown-linux-musl release build).
#
#   bash scripts/build-image.sh
#
# Runs as a numeric non-root user, so `runAsNonRoot: true` can be verified by
# the kubelet. No CA bundle is needed: in the cluster, kube trusts the service
# account's ca.crt (a kubeconfig without a CA would need OS roots, which a
# scratch image does not have).
FROM scratch

ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown

LABEL org.opencontainers.image.title="job-template-run" \
      org.opencontainers.image.description="Kubernetes operator: reusable JobTemplates, JobRuns that override only what differs" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/hematoscope/job-template-run" \
      org.opencontainers.image.vendor="cellbytes"

# Mode 0555 is set by the build script (--chmod needs BuildKit).
COPY --chown=0:0 job-template-run /job-template-run

USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/job-template-run"]
CMD ["controller"]
