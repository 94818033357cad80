package bench

// This file is for the layerfs hot-path micro-benchmarks, to be filled in by
// whoever merges the layerfs branch: layerfs's API did not exist when the
// harness was written, and a benchmark of a stand-in would measure nothing.
//
// What belongs here (issue 3, "Go benchmarks in bench/ for the hot path
// without the kernel"), each calling layerfs's node operations directly,
// with no FUSE mount, on the quick data set's layers (PrepareDataset with
// QuickSpec; both a directory-backed and a CAS-backed source):
//
//   BenchmarkLookup      one path component, lower layer, hit and miss
//                        (b.ReportAllocs; the issue expects one index probe)
//   BenchmarkGetattr     a lower regular file and a directory
//   BenchmarkReaddir     a 50-entry directory of the small-file tree
//   BenchmarkReadInline  a small file served from memory (b.SetBytes)
//   BenchmarkReadObject  1 MiB reads of the big file's object (b.SetBytes)
//
// Compare runs with benchstat:
//   go test -run '^$' -bench . -benchmem -count 10 ./bench/ > new.txt
//   benchstat old.txt new.txt
