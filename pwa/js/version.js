// Written by scripts/build_pwa.py: the build the phone runs (sent as app_version).
export const APP_VERSION = "0.1.0+181bc6664b17";
export const BUILD_ID = "181bc6664b17";
