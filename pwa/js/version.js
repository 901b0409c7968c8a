// Written by scripts/build_pwa.py: the build the phone runs (sent as app_version).
export const APP_VERSION = "0.1.0+2d3e0d7a50d9";
export const BUILD_ID = "2d3e0d7a50d9";
