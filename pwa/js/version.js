// Written by scripts/build_pwa.py: the build the phone runs (sent as app_version).
export const APP_VERSION = "0.1.0+e95252833748";
export const BUILD_ID = "e95252833748";
