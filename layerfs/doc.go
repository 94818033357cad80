// Package layerfs is fusebox's union filesystem, served with FUSE.
package layerfs
