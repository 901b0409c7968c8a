// Written by scripts/build_pwa.py: the build the phone runs (sent as app_version).
export const APP_VERSION = "0.1.0+b43e31961889";
export const BUILD_ID = "b43e31961889";
