"""The SMS fallback: an urgent record sent by SMS when there is GSM but no data,
verified with the device's SMS key and stored under the record's own id, so the
full record that syncs later is the same incident (see docs/sms.md)."""
