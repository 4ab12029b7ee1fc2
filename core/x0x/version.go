package x0x

// Version is the version of this x0x release: the same MAJOR.MINOR.PATCH
// number for the Go module, the npm packages (x0x and @x0x/core-*), the
// PyPI distribution agent-x0x and the VERSION file at the repository root.
// Its MAJOR.MINOR is the C ABI version of include/x0x.h
// (X0X_ABI_VERSION_MAJOR.X0X_ABI_VERSION_MINOR), so a release that changes
// the ABI bumps the minor (or major) version and one that does not bumps
// only the patch. The Go module's version comes from the git tag
// "v" + Version; version_test.go fails if any of these disagree.
const Version = "0.7.0"
