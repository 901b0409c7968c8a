// Written by scripts/build_pwa.py: the build the phone runs (sent as app_version).
export const APP_VERSION = "0.1.0+40c6d68dc761";
export const BUILD_ID = "40c6d68dc761";
