// Written by scripts/build_pwa.py: the build the phone runs (sent as app_version).
export const APP_VERSION = "0.1.0+1d49d8f02a0d";
export const BUILD_ID = "1d49d8f02a0d";
