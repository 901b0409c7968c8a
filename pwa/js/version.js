// Written by scripts/build_pwa.py: the build the phone runs (sent as app_version).
export const APP_VERSION = "0.1.0+27862f76a0fe";
export const BUILD_ID = "27862f76a0fe";
