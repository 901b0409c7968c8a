// Written by scripts/build_pwa.py: the build the phone runs (sent as app_version).
export const APP_VERSION = "0.1.0+866c7a579bf8";
export const BUILD_ID = "866c7a579bf8";
