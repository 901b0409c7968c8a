// Written by scripts/build_pwa.py: the build the phone runs (sent as app_version).
export const APP_VERSION = "0.1.0+ea248c6a4b43";
export const BUILD_ID = "ea248c6a4b43";
