// Written by scripts/build_pwa.py: the build the phone runs (sent as app_version).
export const APP_VERSION = "0.1.0+1b1e45650437";
export const BUILD_ID = "1b1e45650437";
