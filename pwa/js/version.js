// Written by scripts/build_pwa.py: the build the phone runs (sent as app_version).
export const APP_VERSION = "0.1.0+f42ed9ea3f0a";
export const BUILD_ID = "f42ed9ea3f0a";
