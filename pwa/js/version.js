// Written by scripts/build_pwa.py: the build the phone runs (sent as app_version).
export const APP_VERSION = "0.1.0+8b72aa6e65bc";
export const BUILD_ID = "8b72aa6e65bc";
