# hep-ml in a container: every command, and the image `hep-ml k8s train` runs (docs/commands/k8s.md).
#
#   docker build -t ghcr.io/ORG/hep-ml:0.1.0 .
#   docker run --rm -v "$PWD:/work" -w /work ghcr.io/ORG/hep-ml:0.1.0 hep-ml ls file.root
#
# `npm ci` installs and builds (the "prepare" script: tsc → dist/ plus the GRU kernel's .wasm). The optional
# @tensorflow/tfjs-node downloads libtensorflow while installing; where that download is blocked it is
# skipped and `hep-ml train` uses the wasm engine (docs/commands/train.md).
FROM node:20-bookworm-slim

WORKDIR /opt/hep-ml
COPY . .
RUN npm ci --no-audit --no-fund \
 && ln -s /opt/hep-ml/bin/run.js /usr/local/bin/hep-ml \
 && hep-ml --version

# No entrypoint (the node image's docker-entrypoint.sh is dropped): Kubernetes runs the manifests'
# `sh -c` command as it is, and `docker run IMAGE hep-ml ...` runs hep-ml.
ENTRYPOINT []
CMD ["hep-ml", "--help"]
