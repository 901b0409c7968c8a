// Written by scripts/build_pwa.py: the build the phone runs (sent as app_version).
export const APP_VERSION = "0.1.0+f7bc79cedd01";
export const BUILD_ID = "f7bc79cedd01";
