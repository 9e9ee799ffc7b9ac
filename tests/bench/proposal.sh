#!/usr/bin/env bash
# What the leader's check of an agent's proposal (gp_placement_check_plan)
# costs per bid, with the references measured in the same run: parsing the
# proposal (paid per bid before the check existed) and the agent's own
# scoring of the node for the bid (tests/bench/proposal_check.c).
#
#   bench: proposal_parse_ns X        reference
#   bench: proposal_check_ns X        goal: small beside the parse
#   bench: proposal_score_node_ns X   reference
set -u
echo "# load: $(cut -d' ' -f1-3 /proc/loadavg)"
exec "$GP_BUILD/tests/bench/proposal_check"
