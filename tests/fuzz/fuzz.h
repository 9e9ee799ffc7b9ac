/*
 * fuzz.h - what the fuzz targets share.
 *
 * Each fuzz_*.c defines LLVMFuzzerTestOneInput() for one parser.  Built with
 * clang -fsanitize=fuzzer (make fuzz) it is a libFuzzer binary; built with
 * the project's compiler and replay.c (make, make test) it replays the
 * inputs named on its command line (files or directories: the seed corpus
 * in tests/fuzz/corpus/<target>/ and any input a fuzzer once crashed on),
 * so that every input found stays a regression test.
 *
 * fuzz_memfile() gives parsers that read a path (the configuration, the
 * simulator's inputs) an in-memory file: no disk traffic per input.
 */
#ifndef GP_FUZZ_H
#define GP_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Replace the contents of one memfd with data[0..size) and return its path
 * (/proc/self/fd/N, valid until the next call); NULL if that fails. */
const char *fuzz_memfile(const uint8_t *data, size_t size);

#endif
