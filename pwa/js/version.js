// Written by scripts/build_pwa.py: the build the phone runs (sent as app_version).
export const APP_VERSION = "0.1.0+ec84c0fc0774";
export const BUILD_ID = "ec84c0fc0774";
