// Package layers holds no code: its tests assert the import graph's rules
// (pure cores stay pure as packages, leaves stay leaves, the HTTP surfaces
// do not import the composition root), with `go list -deps`.
package layers
