// Written by scripts/build_pwa.py: the build the phone runs (sent as app_version).
export const APP_VERSION = "0.1.0+3cfcac77b312";
export const BUILD_ID = "3cfcac77b312";
