#!/usr/bin/env bash
# The six published policies on the openb default trace, as the FGD paper
# evaluates them (inflation to 130% of the GPU capacity, seeds 42-51, mean
# allocation ratio at 130%), against the figures of the authors' own
# simulator (Weng et al., ATC'23, hkust-adsl/kubernetes-scheduler-simulator):
# each mean must be within 0.5 points of theirs.  The same command is the
# README's reproduction of the comparison.
. "$(dirname "$0")/common.sh"

out=$("$SIM" replay --nodes "$NODES" --pods "$PODS" --format openb \
      --policy random,dotprod,gpuclustering,gpupacking,bestfit,fgd \
      --inflate 1.3 --seeds 42-51 --json -q)
is "$?" 0 "the 60 runs complete and pass the accounting check"

published="random 87.47
dotprod 90.85
gpuclustering 91.88
gpupacking 92.00
bestfit 93.08
fgd 95.39"
while read -r pol ref; do
    line=$(printf '%s\n' "$out" | grep "\"policy\":\"$pol\"")
    got=$(field "$line" alloc_pct_130)
    awk -v g="$got" -v r="$ref" 'BEGIN { d = g - r; if (d < 0) d = -d; exit !(g != "" && d <= 0.5) }'
    ok $? "$pol: mean allocation at 130% $got, published $ref (within 0.5 points)"
done <<< "$published"

done_testing
