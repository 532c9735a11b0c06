package catalog

import "context"

// Store is what a backend provides: transactions over images, versions and
// channel history. Rules (what may be promoted, where a rollback goes) are
// not the store's business; the Catalog applies them inside one transaction.
type Store interface {
	// Update runs fn in one read-write transaction: all of it is committed
	// or none. Writers to the same image are serialized (LockImage).
	Update(ctx context.Context, fn func(Tx) error) error
	// View runs fn in a read-only transaction with a consistent snapshot.
	View(ctx context.Context, fn func(Tx) error) error
	Close() error
}

// Tx is one transaction.
type Tx interface {
	// LockImage creates the image when missing and holds it against other
	// writers until the transaction ends.
	LockImage(name string) error
	Images() ([]Image, error)
	ImageExists(name string) (bool, error)

	InsertVersion(v *Version) error
	// InsertPlatform adds p to an existing version.
	InsertPlatform(image, version string, p *Platform) error
	// Version returns ErrNotFound (wrapped) when there is none; it fills
	// the version's Platforms.
	Version(image, version string) (*Version, error)
	// Versions lists an image's versions in registration order. With
	// withContent false, artifacts, packages and labels may be left empty
	// (the build's run UUID and name are there).
	Versions(image string, withContent bool) ([]*Version, error)
	// VersionsByImageID finds versions by content digest, in any image;
	// a version where it is another architecture's image comes as that
	// architecture's view (Version.ForArch).
	VersionsByImageID(imageID string) ([]*Version, error)
	// VersionsByImageIDPrefix finds versions whose image ID starts with prefix.
	VersionsByImageIDPrefix(prefix string) ([]*Version, error)
	// Children lists versions whose parent is imageID, in any image.
	Children(imageID string) ([]*Version, error)
	SetRevoked(image, version string, revoked bool, reason string, at int64) error
	// SetRevokedBy records who revoked a version ("" when restored).
	SetRevokedBy(image, version, actor string) error
	DeleteVersion(image, version string) error
	// SetArtifacts replaces a version's artifacts (AddRegistryRefs only:
	// a version's files never change).
	SetArtifacts(image, version string, artifacts []Artifact) error
	MaxSeq(image string) (int64, error)

	AppendChannelEntry(e *ChannelEntry) error
	// History lists a channel's entries oldest first.
	History(image, channel string) ([]ChannelEntry, error)
	// ChannelNames lists the image's channels that have any history.
	ChannelNames(image string) ([]string, error)

	// InsertEvidence records e on its version and sets e.ID.
	InsertEvidence(e *Evidence) error
	// Evidence lists a version's evidence, oldest first.
	Evidence(image, version string) ([]Evidence, error)
	// AppendPolicy adds an entry to a channel's policy history and sets
	// p.ID; the newest entry is the channel's policy.
	AppendPolicy(p *Policy) error
	// PolicyHistory lists the image's policy entries (of one channel, or
	// of all when channel is ""), oldest first.
	PolicyHistory(image, channel string) ([]Policy, error)

	// InsertToken records t (only its hash) and sets t.ID.
	InsertToken(t *Token) error
	// Tokens lists every token, oldest first.
	Tokens() ([]Token, error)
	// TokenByHash finds a token by the sha256 of its secret (ErrNotFound,
	// wrapped, when none has it).
	TokenByHash(hash string) (*Token, error)
	// RevokeToken marks token id revoked at (unix nanoseconds).
	RevokeToken(id int64, at int64) error
}
