// Written by scripts/build_pwa.py: the build the phone runs (sent as app_version).
export const APP_VERSION = "0.1.0+eff60a7face8";
export const BUILD_ID = "eff60a7face8";
