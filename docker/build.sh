#!/usr/bin/env bash
# Build the trpo-tf image from a wheelhouse (no package index inside the build) and smoke-run it.
#
#   docker/build.sh                   # base python:3.11-slim (needs a registry), tag localhost/trpo-tf
#   docker/build.sh --debootstrap     # base: Debian 12 made here with debootstrap (no registry needed; root)
#   docker/build.sh --base IMAGE      # any base with python3.11 + venv, Debian-like (apt-get)
#   options: --tag NAME  --no-smoke  --smoke "trpo demo"  --python PY (3.11, makes the wheelhouse)
#
# Steps: 1. wheels/ <- `pip wheel --wheel-dir wheels .` (the project and all its dependencies, ~870 MB;
# kept out of git by .gitignore); 2. the base image (with --debootstrap: `debootstrap --variant=minbase`
# + `podman import`, reused when it exists); 3. `podman build --isolation chroot` (or `docker build`) of
# the Dockerfile, which installs from wheels/ through a bind mount; 4. the smoke test: a second, throwaway
# build FROM the image whose only step is `RUN trpo demo` (runs the command inside the image without
# `podman run`, which needs cgroups these CI machines do not give), then deleted.
# Prints the time of each step and the image size.
set -euo pipefail
cd "$(dirname "$0")/.."

tag=localhost/trpo-tf
base=""
debootstrap=0
smoke="trpo demo"
python=""
while [ $# -gt 0 ]; do
  case "$1" in
    --base) base="$2"; shift 2 ;;
    --debootstrap) debootstrap=1; shift ;;
    --tag) tag="$2"; shift 2 ;;
    --smoke) smoke="$2"; shift 2 ;;
    --no-smoke) smoke=""; shift ;;
    --python) python="$2"; shift 2 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "docker/build.sh: error: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done

if command -v podman > /dev/null; then
  engine=(podman); build=(podman build --isolation chroot)
elif command -v docker > /dev/null; then
  engine=(docker); build=(docker build); export DOCKER_BUILDKIT=1
else
  echo "docker/build.sh: error: neither podman nor docker is installed" >&2; exit 2
fi

if [ -z "$python" ]; then
  if [ -x .venv/bin/python ]; then python=.venv/bin/python; else python=python3; fi
fi
if ! "$python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
  echo "docker/build.sh: error: $python is not Python 3.11 (the image's Python); pass --python" >&2; exit 2
fi

t_start=$(date +%s)
step() { echo "[docker/build.sh $(($(date +%s) - t_start)) s] $*"; }

step "wheelhouse: $python -m pip wheel --find-links wheels --wheel-dir wheels \".[ray]\""
"$python" -m pip wheel --quiet --find-links wheels --wheel-dir wheels ".[ray]"
step "wheels/: $(find wheels -name '*.whl' | wc -l) wheels, $(du -sh wheels | cut -f1)"

if [ "$debootstrap" = 1 ]; then
  base=localhost/bookworm-py
  if "${engine[@]}" image inspect "$base" > /dev/null 2>&1; then
    step "base $base exists, reused"
  else
    rootfs=$(mktemp -d)
    trap 'rm -rf "$rootfs"' EXIT
    step "debootstrap bookworm -> $rootfs"
    debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$rootfs" \
      > "$rootfs.log" 2>&1 || { tail -20 "$rootfs.log" >&2; exit 1; }
    tar -C "$rootfs" -c . | "${engine[@]}" import - "$base" > /dev/null
    rm -rf "$rootfs" "$rootfs.log"
    step "imported $base"
  fi
fi

build_args=()
[ -n "$base" ] && build_args=(--build-arg "BASE=$base")
step "${build[*]} ${build_args[*]} -t $tag ."
"${build[@]}" "${build_args[@]}" -t "$tag" .
size=$("${engine[@]}" image inspect --format '{{.Size}}' "$tag")
step "built $tag: $((size / 1000000)) MB"

if [ -n "$smoke" ]; then
  smoke_dir=$(mktemp -d)
  printf 'FROM %s\nRUN %s\n' "$tag" "$smoke" > "$smoke_dir/Dockerfile"
  step "smoke: RUN $smoke (in a throwaway build FROM $tag)"
  "${build[@]}" --no-cache -t "$tag-smoke" "$smoke_dir"
  "${engine[@]}" rmi "$tag-smoke" > /dev/null
  rm -rf "$smoke_dir"
  step "smoke passed"
fi
step "done"
