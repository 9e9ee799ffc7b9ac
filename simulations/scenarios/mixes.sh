#!/usr/bin/env bash
# mixes.sh DIR - write synthetic variants of the openb default pod list into
# DIR (deterministic transforms by line number), for comparing policies
# beyond the published trace:
#   share.csv    every 2nd whole single-GPU pod becomes a 470/320/650 share
#   multi.csv    every 5th whole single-GPU pod asks for 2/4/8 GPUs (CPU scaled)
#   cpu2.csv     every pod asks for twice its CPU
#   cpuhalf.csv  every pod asks for half its CPU (at least 0.1 core)
#   no810.csv    the trace's most common share, 810, becomes 500
set -e
out=${1:?usage: mixes.sh DIR}
src=${OPENB_PODS:-$(dirname "$0")/../data/openb/openb_pod_list_default.csv}
mkdir -p "$out"
awk -F, -v OFS=, 'NR==1{print;next} {if($4==1 && $5==1000 && NR%2==0){k=NR%3; $5=(k==0?470:(k==1?320:650))} print}' "$src" > "$out/share.csv"
awk -F, -v OFS=, 'NR==1{print;next} {if($4==1 && $5==1000 && NR%5==0){k=NR%3; $4=(k==0?2:(k==1?4:8)); $2=$2*$4} print}' "$src" > "$out/multi.csv"
awk -F, -v OFS=, 'NR==1{print;next} {$2=$2*2; print}' "$src" > "$out/cpu2.csv"
awk -F, -v OFS=, 'NR==1{print;next} {$2=int($2/2); if($2<100)$2=100; print}' "$src" > "$out/cpuhalf.csv"
awk -F, -v OFS=, 'NR==1{print;next} {if($5==810)$5=500; print}' "$src" > "$out/no810.csv"
