// Written by scripts/build_pwa.py: the build the phone runs (sent as app_version).
export const APP_VERSION = "0.1.0+7c9c085d1da3";
export const BUILD_ID = "7c9c085d1da3";
