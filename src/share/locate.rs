//! Finding the share root: `--share DIR`, `CBR_SHARE`, or `cinder.conf`.
