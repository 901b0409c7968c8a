// Written by scripts/build_pwa.py: the build the phone runs (sent as app_version).
export const APP_VERSION = "0.1.0+e45582dd86a5";
export const BUILD_ID = "e45582dd86a5";
