// Written by scripts/build_pwa.py: the build the phone runs (sent as app_version).
export const APP_VERSION = "0.1.0+f7a42890a6b7";
export const BUILD_ID = "f7a42890a6b7";
