"""Evidence: photos and audio recorded on the crew's phone, stored by their
SHA-256 (api.media.store), each one sealed into its incident's hash chain."""
