// Written by scripts/build_pwa.py: the build the phone runs (sent as app_version).
export const APP_VERSION = "0.1.0+bc521155eef8";
export const BUILD_ID = "bc521155eef8";
