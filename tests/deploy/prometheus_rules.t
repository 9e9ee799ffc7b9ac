#!/usr/bin/env bash
# deploy/prometheus/: the alerting rules load, and each alert fires (and
# stays quiet) as gpupool.rules.test.yml says, under promtool's own rule
# evaluator; the example configuration is valid.
. "$(dirname "$0")/../lib.sh"

dir=$GP_ROOT/deploy/prometheus
out=$(promtool check rules "$dir/gpupool.rules.yml" 2>&1)
ok $? "promtool check rules accepts gpupool.rules.yml" || diag "$out"
like "$out" 'SUCCESS: 9 rules found' "all nine rules are there"
out=$(cd "$dir" && promtool test rules gpupool.rules.test.yml 2>&1)
ok $? "promtool test rules: every alert fires when, and only when, expected" || diag "$out"
for a in GpupoolRegionWithoutLeader GpupoolCoordinatorDown GpupoolCommitConflictsRising \
         GpupoolQueueOld GpupoolLeaseLost GpupoolAgentDown GpupoolSliceOverMemoryLimit \
         GpupoolSliceOverComputeLimit GpupoolStoreFull; do
    grep -q "alertname: $a\$" "$dir/gpupool.rules.test.yml"; ok $? "$a has a unit test"
done
# A rule file whose test fails must make promtool fail (the check can fail).
sed 's/> 900/> 90000/' "$dir/gpupool.rules.yml" >"$T_TMP/gpupool.rules.yml"
cp "$dir/gpupool.rules.test.yml" "$T_TMP/"
(cd "$T_TMP" && promtool test rules gpupool.rules.test.yml >/dev/null 2>&1)
isnt "$?" 0 "a rule changed under its test fails the test"
out=$(cd "$dir" && promtool check config prometheus.yml.example 2>&1)
ok $? "promtool check config accepts prometheus.yml.example" || diag "$out"
done_testing
