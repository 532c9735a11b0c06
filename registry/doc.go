// Package registry moves images between the layer store and OCI registries
// (the distribution API, through go-containerregistry): Push uploads a
// stored image straight from the store, only the blobs a registry lacks;
// Pull fetches an image into the store, every blob checked against its
// digest and its layer's DiffID before it is stored. Credentials come from
// the Docker config and its credential helpers (auth.go); plain http only
// for the registries Options.Insecure names.
package registry
