// Written by scripts/build_pwa.py: the build the phone runs (sent as app_version).
export const APP_VERSION = "0.1.0+c53e532a8a19";
export const BUILD_ID = "c53e532a8a19";
