#!/usr/bin/env bash
# Install the Debian packages that building, testing, the demo and the benchmark need.
# Idempotent: does nothing (and needs no network) when everything is already installed.
set -euo pipefail

# Usage: deps.sh [build]   (build: only what compiling h2steerd and h2steer needs: the image)
build=(
	# BPF objects, skeletons, daemon, CLI
	clang llvm bpftool libbpf-dev libelf-dev zlib1g-dev pkg-config make gcc
	libnghttp2-dev libcyaml-dev libyaml-dev libjansson-dev libc-ares-dev libmicrohttpd-dev
	# the Kubernetes discovery source: HTTPS to the API server on the event loop
	libcurl4-openssl-dev
)
rest=(
	# tests
	libcriterion-dev python3-grpcio python3-pytest python3-h2 iproute2 dnsmasq-base
	# the fuzz harnesses (tests/fuzz): libFuzzer, clang's runtime (clang itself is a build dep)
	libclang-rt-14-dev
	# a client that is not gRPC: plain HTTP/2 requests through a service (test_hostile)
	curl
	# pods: the CNI chain (bridge, host-local) h2steer-cni is tested behind
	containernetworking-plugins
	# TLS through an l4 or spliced service: the test makes a self-signed certificate
	openssl
	# gRPC test peer (Go, built offline against Debian's grpc-go)
	golang-go golang-google-grpc-dev
	# the Kubernetes manifests' offline checks
	yamllint python3-kubernetes
	# benchmark: the load (h2load), the balancers it compares with, the plot
	nghttp2-client nginx haproxy nghttp2-proxy python3-matplotlib
	# make profile: perf (stat, record) and valgrind (callgrind)
	linux-perf valgrind
)
packages=("${build[@]}")
if [ "${1:-all}" != build ]; then
	packages+=("${rest[@]}")
fi

missing=()
for p in "${packages[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing+=("$p")
	fi
done
if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "deps: missing packages: ${missing[*]}; run 'sudo make deps'" >&2
		exit 1
	fi
	echo "deps: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get -o DPkg::Lock::Timeout=300 update -q
	# Installing nginx or haproxy would start their system services; the benchmark runs its own
	# instances and needs none, so a policy-rc.d that refuses every start (exit 101) stands
	# during the install (unless the machine already has one), and goes away after it.
	(
		policy=/usr/sbin/policy-rc.d
		if [ ! -e "$policy" ]; then
			trap 'rm -f "$policy"' EXIT
			printf '#!/bin/sh\n# written by h2steer tools/deps.sh for one apt-get install\nexit 101\n' \
				>"$policy"
			chmod 755 "$policy"
		fi
		apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends "${missing[@]}"
	)
fi

[ "${1:-all}" = build ] && exit 0

# promtool, the Prometheus metrics linter the tests run on /metrics: taken out of Debian's
# prometheus package without installing it (the package would also install and start a server).
promtool="$(cd "$(dirname "$0")/.." && pwd)/build/deps/promtool"
if [ ! -x "$promtool" ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "deps: promtool missing; run 'sudo make deps'" >&2
		exit 1
	fi
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	(cd "$tmp" && { apt-get -o DPkg::Lock::Timeout=300 download prometheus >/dev/null 2>&1 ||
		{ apt-get -o DPkg::Lock::Timeout=300 update -q >/dev/null &&
		  apt-get -o DPkg::Lock::Timeout=300 download prometheus >/dev/null; }; })
	dpkg-deb -x "$tmp"/prometheus_*.deb "$tmp/x"
	mkdir -p "$(dirname "$promtool")"
	cp "$tmp/x/usr/bin/promtool" "$promtool"
	echo "deps: promtool $("$promtool" --version 2>&1 | head -1)"
fi
