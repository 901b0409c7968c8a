// Written by scripts/build_pwa.py: the build the phone runs (sent as app_version).
export const APP_VERSION = "0.1.0+b70f0f267feb";
export const BUILD_ID = "b70f0f267feb";
