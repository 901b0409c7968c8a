// Written by scripts/build_pwa.py: the build the phone runs (sent as app_version).
export const APP_VERSION = "0.1.0+65607f884477";
export const BUILD_ID = "65607f884477";
