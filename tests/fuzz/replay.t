#!/usr/bin/env bash
# Every fuzz target (tests/fuzz/fuzz_*.c) over its corpus, built with the
# project's compiler (under ASan and UBSan in `make asan`): the seeds and
# every input a fuzzer once failed on are parsed without a crash, a leak or
# a sanitizer report.  `make fuzz` does the fuzzing itself (README).
. "$(dirname "$0")/../lib.sh"

here=$(cd "$(dirname "$0")" && pwd)
for t in uri jobspec wire config shimenv siminput watchmsg; do
    bin=$GP_BUILD/tests/fuzz/replay_$t
    [ -x "$bin" ] || bail_out "$bin not built (make check-tests)"
    n=$(find "$here/corpus/$t" -type f | wc -l)
    out=$("$bin" "$here/corpus/$t" 2>&1)
    is "$?" 0 "fuzz_$t: its corpus replays cleanly"
    is "$out" "replayed $n inputs" "fuzz_$t: all $n inputs ran"
done
done_testing
