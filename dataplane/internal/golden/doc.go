// Package golden compares test output with files under testdata and rewrites
// them when tests run with -update. It is for tests only.
package golden
