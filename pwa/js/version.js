// Written by scripts/build_pwa.py: the build the phone runs (sent as app_version).
export const APP_VERSION = "0.1.0+cdc3e8426139";
export const BUILD_ID = "cdc3e8426139";
