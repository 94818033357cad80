// Package bench measures fusebox's I/O hot path side by side with kernel
// overlayfs and fuse-overlayfs. Product code never imports it.
package bench
