// Written by scripts/build_pwa.py: the build the phone runs (sent as app_version).
export const APP_VERSION = "0.1.0+2b2365783c03";
export const BUILD_ID = "2b2365783c03";
