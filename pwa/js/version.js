// Written by scripts/build_pwa.py: the build the phone runs (sent as app_version).
export const APP_VERSION = "0.1.0+aa318e3b343c";
export const BUILD_ID = "aa318e3b343c";
