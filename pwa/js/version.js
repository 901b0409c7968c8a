// Written by scripts/build_pwa.py: the build the phone runs (sent as app_version).
export const APP_VERSION = "0.1.0+975178dbe3ec";
export const BUILD_ID = "975178dbe3ec";
