// Written by scripts/build_pwa.py: the build the phone runs (sent as app_version).
export const APP_VERSION = "0.1.0+aa02d50e1d09";
export const BUILD_ID = "aa02d50e1d09";
