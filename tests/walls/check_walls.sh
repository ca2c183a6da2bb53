#!/usr/bin/env bash
# check_walls.sh — proves that the layer walls of user/ hold (README "Working on h2steer").
#
# The architecture, lowest layer first; a layer may use the layers listed after its colon and
# nothing else. This is the rule; the Makefile's LAYERS / USES_<layer> (passed here as WALLS,
# the same form) is how the build carries it out, and must say the same.
RULE="common: kernel:common balance:kernel,common config:balance,kernel,common
      proxy:config,balance,kernel,common discovery:proxy,config,balance,kernel,common
      daemon:discovery,proxy,config,balance,kernel,common cli:kernel,common cni:kernel,common"
#
# Every layer is compiled with only its own folder and the folders it may use on the include
# path. So for every layer, each header of a folder it may not use must be impossible to
# include: each case is a probe compiled with that layer's flags, which must fail with "No such
# file". Header names are unique across user/, so that a bare #include means one file only.
set -u
cc=${CC:-cc}
build=${BUILD:-build}
pass=0
fail=0

bad() {
	echo "FAIL: $*"
	fail=$((fail + 1))
}

if [ "$(echo $RULE)" != "$(echo ${WALLS:?WALLS is set by make test-walls})" ]; then
	bad "the Makefile's layers ($WALLS) are not the architecture's ($(echo $RULE))"
else
	pass=$((pass + 1))
fi

dups=$(find user -name '*.h' -printf '%f\n' | sort | uniq -d)
if [ -n "$dups" ]; then
	bad "header names used in more than one folder: $dups"
else
	pass=$((pass + 1))
fi

# One probe: "LAYER HEADER INCLUDE-FLAGS..." -> OK, or a FAIL line.
probe() {
	local layer=$1 h=$2 out
	shift 2
	if out=$(printf '#include "%s"\n' "$(basename "$h")" |
		$cc -D_GNU_SOURCE -fsyntax-only "$@" -x c - 2>&1); then
		echo "FAIL: user/$layer/ can include $h"
	elif grep -q "No such file" <<<"$out"; then
		echo OK
	else
		echo "FAIL: user/$layer/ including $h failed for another reason: $out"
	fi
}
export -f probe
export cc

results=$(for spec in $WALLS; do
	layer=${spec%%:*}
	uses=${spec#*:}
	uses=${uses//,/ }
	inc="-Iinclude -I$build -Iuser/$layer"
	for u in $uses; do
		inc="$inc -Iuser/$u"
	done
	for dir in user/*/; do
		other=$(basename "$dir")
		case " $layer $uses " in *" $other "*) continue ;; esac
		for h in "$dir"*.h; do
			echo "$layer $h $inc"
		done
	done
done | xargs -P 4 -L 1 bash -c 'probe "$@"' _)

pass=$((pass + $(grep -c '^OK$' <<<"$results")))
while IFS= read -r line; do
	bad "${line#FAIL: }"
done < <(grep '^FAIL' <<<"$results")
echo "walls: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
