// Written by scripts/build_pwa.py: the build the phone runs (sent as app_version).
export const APP_VERSION = "0.1.0+cbe45af8b367";
export const BUILD_ID = "cbe45af8b367";
