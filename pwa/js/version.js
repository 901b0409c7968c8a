// Written by scripts/build_pwa.py: the build the phone runs (sent as app_version).
export const APP_VERSION = "0.1.0+ebc75e7af838";
export const BUILD_ID = "ebc75e7af838";
