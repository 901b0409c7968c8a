// Written by scripts/build_pwa.py: the build the phone runs (sent as app_version).
export const APP_VERSION = "0.1.0+58e61bc5f796";
export const BUILD_ID = "58e61bc5f796";
