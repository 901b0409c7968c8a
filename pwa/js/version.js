// Written by scripts/build_pwa.py: the build the phone runs (sent as app_version).
export const APP_VERSION = "0.1.0+bdff356436d6";
export const BUILD_ID = "bdff356436d6";
