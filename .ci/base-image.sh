#!/usr/bin/env bash
# Build a LOCAL stand-in for the official python:3.11-slim image (no container registry here):
#   debootstrap --variant=minbase bookworm + Debian's python3 python3-venv python3-pip ca-certificates,
#   slimmed, then `tar | docker import` as $BASE_IMAGE_TAG.
# Idempotent: a no-op when the image exists. The slimmed rootfs tarball is cached in $CACHE_DIR, so
# a fresh Docker engine re-imports it in seconds instead of re-running debootstrap.
#
#   .ci/base-image.sh              build/import the image if missing
#   .ci/base-image.sh --force      re-import from the cached rootfs (delete the tarball to redo debootstrap)
#   .ci/base-image.sh --selftest   also build a 2-stage test Dockerfile that pip-installs from PyPI
#                                  (docker CLI, classic builder + BuildKit, and the Docker SDK for Python)
set -euo pipefail

BASE_IMAGE_TAG=${BASE_IMAGE_TAG:-modelops-base:python3.11}
SUITE=bookworm
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
DEBIAN_SECURITY_MIRROR=${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
PACKAGES=python3,python3-venv,python3-pip,ca-certificates,python-is-python3
RECIPE=1   # bump when the recipe below changes: a new cache file name forces a new rootfs
CACHE_DIR=${MODELOPS_CACHE_DIR:-/var/cache/modelops}
ROOTFS_TAR="$CACHE_DIR/rootfs-$SUITE-python3-r$RECIPE.tar"
IMAGE_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
HOST_CA_BUNDLE=${HOST_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
TOOLS_PY=${TOOLS_PY:-/opt/modelops-tools/bin/python}   # venv with the docker SDK (install-system.sh)

force=0 selftest=0
for arg in "$@"; do
  case "$arg" in
    --force) force=1 ;;
    --selftest) selftest=1 ;;
    *) echo "usage: $0 [--force] [--selftest]" >&2; exit 2 ;;
  esac
done

now() { date +%s.%N; }
since() { awk -v s="$1" -v e="$(now)" 'BEGIN{printf "%.1f", e-s}'; }
image_size() { docker image inspect -f '{{.Size}}' "$BASE_IMAGE_TAG" | awk '{printf "%.0f MB", $1/1e6}'; }

timeout 10 docker info >/dev/null 2>&1 || { echo "base-image: no Docker engine answers (run .ci/start-docker.sh)" >&2; exit 1; }

# ---- rootfs tarball (debootstrap, cached) ------------------------------------------------------------
build_rootfs() {
  local dir log
  command -v debootstrap >/dev/null || { echo "base-image: debootstrap missing (run .ci/install-system.sh)" >&2; exit 1; }
  mkdir -p "$CACHE_DIR"
  dir=$(mktemp -d "$CACHE_DIR/rootfs.XXXXXX")
  log="$CACHE_DIR/debootstrap.log"
  trap 'rm -rf "$dir"' EXIT
  if ! debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$dir" "$DEBIAN_MIRROR" >"$log" 2>&1; then
    tail -n 30 "$log" >&2; echo "base-image: debootstrap failed (log $log)" >&2; exit 1
  fi

  # apt sources with updates + security, and the apt/dpkg settings of Debian's official images.
  cat >"$dir/etc/apt/sources.list" <<EOF
deb $DEBIAN_MIRROR $SUITE main
deb $DEBIAN_MIRROR $SUITE-updates main
deb $DEBIAN_SECURITY_MIRROR $SUITE-security main
EOF
  cat >"$dir/etc/dpkg/dpkg.cfg.d/modelops-slim" <<'EOF'
# keep images small: no docs, man pages or translations (copyright files are kept)
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF
  cat >"$dir/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
  printf 'Acquire::Languages "none";\n' >"$dir/etc/apt/apt.conf.d/docker-no-languages"
  printf 'Acquire::GzipIndexes "true";\n' >"$dir/etc/apt/apt.conf.d/docker-gzip-indexes"
  printf 'Apt::AutoRemove::SuggestsImportant "false";\n' >"$dir/etc/apt/apt.conf.d/docker-autoremove-suggests"
  printf 'APT::Install-Recommends "false";\n' >"$dir/etc/apt/apt.conf.d/docker-no-recommends"

  # security/point updates
  if ! { chroot "$dir" apt-get update -qq && DEBIAN_FRONTEND=noninteractive chroot "$dir" apt-get -y -qq upgrade; } >>"$log" 2>&1; then
    tail -n 30 "$log" >&2; echo "base-image: apt-get upgrade in the rootfs failed (log $log)" >&2; exit 1
  fi

  # slim down
  find "$dir/usr/share/doc" -mindepth 1 ! -name copyright ! -type d -delete
  find "$dir/usr/share/doc" -mindepth 1 -type d -empty -delete
  rm -rf "$dir"/usr/share/{man,groff,info,lintian,linda}/*
  find "$dir/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
  rm -rf "$dir"/var/lib/apt/lists/* "$dir"/var/cache/apt/*.bin "$dir"/var/cache/apt/archives/*.deb \
         "$dir"/var/cache/debconf/*-old "$dir"/var/lib/dpkg/*-old "$dir"/var/log/apt/* "$dir"/tmp/* "$dir"/root/.cache
  find "$dir/var/log" -type f -exec truncate -s 0 {} +
  : >"$dir/etc/resolv.conf"; rm -f "$dir/etc/hostname"
  # Like python:3.11-slim: `pip install` outside a venv is allowed, and python lives in /usr/local/bin too.
  rm -f "$dir"/usr/lib/python3.*/EXTERNALLY-MANAGED
  ln -sfn /usr/bin/python3 "$dir/usr/local/bin/python3"
  ln -sfn /usr/bin/python3 "$dir/usr/local/bin/python"

  tar -C "$dir" --numeric-owner -cf "$ROOTFS_TAR.tmp" .
  mv "$ROOTFS_TAR.tmp" "$ROOTFS_TAR"
  rm -rf "$dir"; trap - EXIT
}

# ---- image ----------------------------------------------------------------------------------------
have_recipe=$(docker image inspect -f '{{index .Config.Labels "modelops.base.recipe"}}' "$BASE_IMAGE_TAG" 2>/dev/null || true)
if [[ "$have_recipe" == "$RECIPE" ]] && ((!force)); then
  msg="base-image: $BASE_IMAGE_TAG already exists ($(image_size))"
else
  t0=$(now); how="cached rootfs $ROOTFS_TAR"
  if [[ ! -s "$ROOTFS_TAR" ]]; then
    build_rootfs
    how="debootstrap+upgrade+slim $(since "$t0")s, rootfs cached in $ROOTFS_TAR"
  fi
  t1=$(now)
  old_id=$(docker image inspect -f '{{.Id}}' "$BASE_IMAGE_TAG" 2>/dev/null || true)
  docker import \
    --change "ENV PATH=$IMAGE_PATH" \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["python3"]' \
    --change "LABEL modelops.base.recipe=$RECIPE" \
    --message "modelops stand-in for python:3.11-slim (debootstrap $SUITE, recipe $RECIPE)" \
    "$ROOTFS_TAR" "$BASE_IMAGE_TAG" >/dev/null
  docker run --rm "$BASE_IMAGE_TAG" sh -c 'python3 -c "import ssl" && python3 -m venv /tmp/v && /tmp/v/bin/pip --version' >/dev/null \
    || { echo "base-image: smoke test of $BASE_IMAGE_TAG failed" >&2; exit 1; }
  # drop the image this one replaced (fails harmlessly while other images or containers use it)
  if [[ -n "$old_id" && "$old_id" != "$(docker image inspect -f '{{.Id}}' "$BASE_IMAGE_TAG")" ]]; then
    docker image rm "$old_id" >/dev/null 2>&1 || true
  fi
  t_import=$(since "$t1"); t_total=$(since "$t0")
  msg="base-image: built $BASE_IMAGE_TAG in ${t_total}s ($how; import+smoke test ${t_import}s), size $(image_size)"
fi

if ((!selftest)); then
  echo "$msg"
  exit 0
fi

# ---- self-test: 2-stage build that pip-installs from PyPI ------------------------------------------------
# pip inside a build reaches PyPI directly (no proxy, no index mirror needed), but TLS to it is
# re-signed by this machine's egress CA, which only the host's CA bundle trusts. The bundle is
# copied into the BUILDER stage only and handed to pip with PIP_CERT; the runtime stage never sees it.
echo "$msg"
ctx=$(mktemp -d)
cleanup() { rm -rf "$ctx"; docker image prune -f --filter label=modelops.selftest=1 >/dev/null 2>&1 || true; }
trap cleanup EXIT
cp "$HOST_CA_BUNDLE" "$ctx/build-ca.crt"
cat >"$ctx/Dockerfile" <<'EOF'
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE} AS builder
LABEL modelops.selftest=1
# Extra CA bundle for pip in this stage only (machines whose TLS egress is intercepted).
COPY build-ca.crt /tmp/build-ca.crt
ENV PIP_CERT=/tmp/build-ca.crt PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python3 -m venv /opt/venv && /opt/venv/bin/pip install six==1.16.0

FROM ${BASE_IMAGE}
LABEL modelops.selftest=1
COPY --from=builder /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
RUN python -c "import six; print('six', six.__version__)" && test ! -e /tmp/build-ca.crt
CMD ["python", "-c", "import six; print('six', six.__version__)"]
EOF
check_image() {  # tag label
  local out
  out=$(docker run --rm "$1")
  [[ "$out" == "six 1.16.0" ]] || { echo "selftest $2: unexpected output: $out" >&2; exit 1; }
  docker run --rm "$1" sh -c 'test ! -e /tmp/build-ca.crt' || { echo "selftest $2: CA file leaked into runtime stage" >&2; exit 1; }
  docker image rm -f "$1" >/dev/null
}
quiet_build() {  # label command...: run a build, show its output only on failure
  local label=$1 log; shift
  log=$(mktemp)
  if ! "$@" >"$log" 2>&1; then
    cat "$log" >&2; rm -f "$log"; echo "base-image: selftest $label build failed" >&2; exit 1
  fi
  rm -f "$log"
}
results=()
t=$(now)
quiet_build classic env DOCKER_BUILDKIT=0 docker build --no-cache --build-arg "BASE_IMAGE=$BASE_IMAGE_TAG" \
  -t modelops-selftest:classic "$ctx"
check_image modelops-selftest:classic classic; results+=("classic builder $(since "$t")s")
# BuildKit through Debian's docker client (the client in /usr/local/bin has no buildx plugin).
if [[ -x /usr/bin/docker ]]; then
  t=$(now)
  quiet_build buildkit env DOCKER_BUILDKIT=1 /usr/bin/docker build --no-cache --build-arg "BASE_IMAGE=$BASE_IMAGE_TAG" \
    -t modelops-selftest:buildkit "$ctx"
  check_image modelops-selftest:buildkit buildkit; results+=("BuildKit $(since "$t")s")
fi
t=$(now)
quiet_build sdk "$TOOLS_PY" -c '
import sys, docker
ctx, base = sys.argv[1], sys.argv[2]
# default (bridge) network; network_mode="host" works as well but is not needed here
docker.from_env().images.build(path=ctx, buildargs={"BASE_IMAGE": base}, tag="modelops-selftest:sdk",
                               nocache=True, rm=True, forcerm=True)
' "$ctx" "$BASE_IMAGE_TAG"
check_image modelops-selftest:sdk sdk; results+=("Docker SDK $(since "$t")s")
printf -v summary '%s, ' "${results[@]}"
echo "base-image: selftest passed (2-stage pip build: ${summary%, })"
