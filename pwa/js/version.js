// Written by scripts/build_pwa.py: the build the phone runs (sent as app_version).
export const APP_VERSION = "0.1.0+7d1aae9b5e7a";
export const BUILD_ID = "7d1aae9b5e7a";
