#!/usr/bin/env bash
# The share table (GP_SLICE_COMPUTE_MODE=share, shim/share.c) gives each
# slice of a GPU a slot of its own, whatever the inode numbers of the
# slices' region files, and one slot to a slice whatever path its processes
# were given.  Two slices counted as one would each be paced as if the other
# were not there, and a third would be left less than its share.
. "$(dirname "$0")/common.sh"

# Regions of shares 20 and 30, made by the shim, are copied into files whose
# inode numbers differ only in their lowest bit (writing a file keeps its
# inode): the pair a filesystem hands out when it numbers files in order.
for p in 20 30; do
    in_slice "$T_TMP/t$p" GP_SLICE_COMPUTE=$p GP_SLICE_COMPUTE_MODE=share -- "$SHIMTEST" noop
    is "$?" 0 "a region of share $p made"
done
D=$T_TMP/regions; mkdir -p "$D"
(cd "$D" && touch f{0..31})
pair=$(cd "$D" && ls -i f* | sort -n | awk 'prev != "" && $1 == prev + 1 && prev % 2 == 0 { print pf, $2; exit }
                                          { prev = $1; pf = $2 }')
if [ -z "$pair" ]; then
    skip 3 "no two of 32 new files here have inode numbers differing in the last bit only"
    done_testing; exit 0
fi
set -- $pair; A=$D/$1; B=$D/$2
cat "$T_TMP/t20" >"$A"; cat "$T_TMP/t30" >"$B"
diag "regions $(stat -c '%n: inode %i' "$A" "$B" | sed "s|$D/||" | paste -sd ';')"
ln -s "$A" "$D/alias"

# burst REGION: launch for 100 ms in the slice (each launch marks it busy)
burst() {
    in_slice "$1" GP_SLICE_COMPUTE_MODE=share -- "$SHIMTEST" burst "$(in_slice "$1" -- "$SHIMTEST" now)" 0 100 1000 >/dev/null
}
burst "$A" && burst "$B" && burst "$D/alias"
is "$?" 0 "the three programs ran"

# the table's slots in use: KEY PERCENT (slot i at 64 + 64 i: key at +0,
# percent at +16)
table=$(ls "$D"/gpu-*.share)
slots() {
    for i in $(seq 0 62); do
        local o=$((64 + 64 * i)) key
        key=$(od -An -t u8 -j $o -N 8 "$table" | tr -d ' ')
        [ "$key" != 0 ] && echo "$key $(od -An -t u4 -j $((o + 16)) -N 4 "$table" | tr -d ' ')"
    done
}
got=$(slots | sort -k2n)
diag "slots: $(echo "$got" | paste -sd ';')"
is "$(echo "$got" | awk '{ print $2 }' | paste -sd ' ')" "20 30" \
    "two slices, two slots, with their shares (the third program ran in the first slice by another path)"
is "$(echo "$got" | awk '{ print $1 }' | sort -u | wc -l)" 2 "their keys differ"
done_testing
