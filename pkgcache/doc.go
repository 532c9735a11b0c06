// Package pkgcache is the persistent apt package cache every build on the
// host shares: a store of blobs named by their sha256 (store.go), and one
// loopback HTTP proxy per build (Server) that mmdebstrap and the chroot's
// apt fetch through. server.go is the front (credentials, the allow-list,
// serving from the cache), upstream.go fetches and revalidates what the
// cache lacks, tunnel.go answers CONNECT for https sources, origins.go is
// the allow-list and verify.go the InRelease signature check. indexes.go
// keeps apt's lists, verified, per set of sources, architecture and
// InRelease digests for builds to start from, and preload.go readies a
// server for a build that starts from them.
//
// What it must never do:
//   - serve anyone but its own build: every request carries the build's
//     secret as proxy credentials, and other local users are not trusted;
//   - fetch what the build's apt sources do not name, or connect to a
//     loopback, link-local or private address no source names (origins);
//   - keep or serve an InRelease without a good signature from the build's
//     keyrings, or a file whose size and sha256 a verified index does not
//     give (pass-through files are left to apt's own checks, never cached);
//   - let a digest from an index, a record or a request name a path outside
//     the cache (CheckDigest), or let a reader see a partial blob (blobs
//     enter by rename after their check);
//   - name a package registry's host: mirrors come from the build host's
//     apt configuration or the template.
package pkgcache
