#!/usr/bin/env bash
# Install the Debian packages that building, testing, the demo and the benchmark need.
# Idempotent: does nothing (and needs no network) when everything is already installed.
set -euo pipefail

packages=(
	# build: BPF objects, skeletons, daemon, CLI
	clang llvm bpftool libbpf-dev libelf-dev zlib1g-dev pkg-config make gcc
	libnghttp2-dev libcyaml-dev libjansson-dev libc-ares-dev
	# tests
	libcriterion-dev python3-grpcio python3-pytest python3-h2 iproute2 dnsmasq-base
	# gRPC test peer (Go, built offline against Debian's grpc-go)
	golang-go golang-google-grpc-dev
	# benchmark
	nghttp2-client
)

missing=()
for p in "${packages[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing+=("$p")
	fi
done
if [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "deps: missing packages: ${missing[*]}; run 'sudo make deps'" >&2
	exit 1
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=300 update -q
apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends "${missing[@]}"
