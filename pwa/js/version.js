// Written by scripts/build_pwa.py: the build the phone runs (sent as app_version).
export const APP_VERSION = "0.1.0+4b486e70d372";
export const BUILD_ID = "4b486e70d372";
