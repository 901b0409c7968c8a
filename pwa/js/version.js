// Written by scripts/build_pwa.py: the build the phone runs (sent as app_version).
export const APP_VERSION = "0.1.0+3b263e33a140";
export const BUILD_ID = "3b263e33a140";
