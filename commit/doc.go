// Package commit turns a container's recorded changes into a new layer and
// image: the A/C/D change list, layer generation, the new config and history.
package commit
