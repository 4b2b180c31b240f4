#!/bin/sh
# fuzz_smoke.sh - every libFuzzer target over its seed corpus plus a short
# run (FUZZ_SMOKE_SECONDS, default 4 s each: nine targets within make
# check's 25 minutes), so make check catches a parser regression; long
# runs are `make fuzz`.
exec sh "$(dirname "$0")/../fuzz/run.sh" "${FUZZ_SMOKE_SECONDS:-4}"
