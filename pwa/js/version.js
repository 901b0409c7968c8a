// Written by scripts/build_pwa.py: the build the phone runs (sent as app_version).
export const APP_VERSION = "0.1.0+73c29d64c6d1";
export const BUILD_ID = "73c29d64c6d1";
