// Written by scripts/build_pwa.py: the build the phone runs (sent as app_version).
export const APP_VERSION = "0.1.0+29ee56a602f3";
export const BUILD_ID = "29ee56a602f3";
