// Written by scripts/build_pwa.py: the build the phone runs (sent as app_version).
export const APP_VERSION = "0.1.0+6f24b2bd534e";
export const BUILD_ID = "6f24b2bd534e";
