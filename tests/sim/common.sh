# tests/sim/common.sh - what the simulator's shell tests share (sourced, not a test):
# the binary, the openb trace beside the repository, and small JSON/number checks.
. "$(dirname "$0")/../lib.sh"

SIM="$GP_BUILD/gpupool-sim"
OPENB="$GP_ROOT/simulations/data/openb"
NODES="$OPENB/openb_node_list_gpu_node.csv"
PODS="$OPENB/openb_pod_list_default.csv"
[ -x "$SIM" ] || bail_out "no $SIM (run make)"
[ -r "$PODS" ] || bail_out "no openb trace at $OPENB"

field() { # json key -> value
    printf '%s' "$1" | grep -o "\"$2\":[^,}]*" | head -1 | cut -d: -f2 | tr -d '"'
}
num_ge() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 >= b + 0) }'; }
num_gt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 > b + 0) }'; }
