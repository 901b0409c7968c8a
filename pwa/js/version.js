// Written by scripts/build_pwa.py: the build the phone runs (sent as app_version).
export const APP_VERSION = "0.1.0+d78dd099f104";
export const BUILD_ID = "d78dd099f104";
