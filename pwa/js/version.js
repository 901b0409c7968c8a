// Written by scripts/build_pwa.py: the build the phone runs (sent as app_version).
export const APP_VERSION = "0.1.0+01312115702a";
export const BUILD_ID = "01312115702a";
