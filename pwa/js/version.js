// Written by scripts/build_pwa.py: the build the phone runs (sent as app_version).
export const APP_VERSION = "0.1.0+db1fb94ddc26";
export const BUILD_ID = "db1fb94ddc26";
