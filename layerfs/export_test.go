package layerfs

// PassthroughMin is passthroughMin, for the tests of package layerfs_test.
const PassthroughMin = passthroughMin
