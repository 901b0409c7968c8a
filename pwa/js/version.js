// Written by scripts/build_pwa.py: the build the phone runs (sent as app_version).
export const APP_VERSION = "0.1.0+cc3b74477751";
export const BUILD_ID = "cc3b74477751";
