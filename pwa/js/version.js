// Written by scripts/build_pwa.py: the build the phone runs (sent as app_version).
export const APP_VERSION = "0.1.0+ea816b1a35ef";
export const BUILD_ID = "ea816b1a35ef";
